import { Code, forEachBounded, PluginError, wallTimeOf, type Backoff, type Clock, type CloudEvent, type PluginLogger as Logger } from '@hollowtrees/grpcplugin';
import type { V1Node } from '@kubernetes/client-node';
import { Deadline, DeadlineReachedError, DrainStoppedError } from './deadline.js';
import { isUnevictablePod } from './api-errors.js';
import { DrainIncompleteError } from './drain-incomplete-error.js';
import type { PoolCordonLoss } from './cordon.js';
import type { NodeDrainer, NodeRetry } from './node-drain.js';
import { nothingToDrain } from './pod-filter.js';
import type { PoolSettings } from './pool-options.js';
import { heldForNewerSurge, recordedPoolCordon, rememberRecordedCordon, type PoolClaim, type PoolResolution } from './pool-cordon-record.js';
import type { PoolMemory } from './pool-registry.js';

/** Cordons (and uncordons, and the pod listings of nodes found cordoned) of a pool sent at once; the call gate caps the calls in flight anyway. */
const PATCH_CONCURRENCY = 16;

/** What {@link drainPool} is asked to do. */
export interface PoolDrainRun {
  /** The pool's nodes, in the order they are drained. */
  nodes: readonly V1Node[];
  /** The surge event, named in the nodes' Kubernetes Events. */
  event: CloudEvent;
  /** The pool's key, recorded on each node this drain cordons (its `hollowtrees.io/pool-cordon` annotation). */
  pool: string;
  /**
   * Epoch milliseconds on the wall clock: the time of the latest surge the drain is for (a newer one may join it while it runs), recorded
   * with the pool's key on the nodes it cordons and kept in `memory` for those it leaves: only a resolution as late undoes them.
   */
  surgeAt(): number;
  settings: Pick<PoolSettings, 'maxUnavailable' | 'minIntervalMs'>;
  /** Epoch milliseconds on `clock` when the whole drain must have answered. */
  at: number;
  /** The call's signal: cancels everything. */
  signal: AbortSignal;
  /** Aborts when a resolution stops the drain. */
  stop: AbortSignal;
  /** The resolution that stopped the drain (its time, and its call's deadline if it gave one); read once `stop` has aborted. */
  stoppedBy(): { resolvedAt: number; deadline: Deadline | undefined };
  /**
   * Runs once every cordon has landed, before any eviction: it may stop the drain (aborting `stop`), when a resolution
   * was taken meanwhile elsewhere (whose listing of the pool missed the cordons still on their way).
   */
  afterCordons(): Promise<void>;
  /**
   * Shared by the pool's drains: the drain adds its cordons to `cordoned` and
   * removes what it drains or uncordons (so a retry's drain can undo the cordons
   * of the call before it; a per-instance drain removes the node it takes over),
   * and paces from `lastStart` and updates it.
   */
  memory: PoolMemory;
  /** Longest drain of one node. */
  maxNodeDrainMs: number;
  backoff: Backoff;
  clock: Clock;
  logger: Logger;
}

/** What a pool drain did. */
export interface PoolDrainOutcome {
  selected: number;
  /** Nodes this drain cordoned (the others already were). */
  newlyCordoned: number;
  /** Nodes with nothing left to evict: drained now, before, or gone from the cluster. */
  drained: string[];
  /** Nodes not drained: the deadline came, the drain was stopped, or a pod of theirs can never be evicted (`unevictable`). */
  left: string[];
  /**
   * Nodes not drained because their cordon was no longer this drain's when their drain began, or when it ended
   * undone (e.g. a resolution another plugin process took uncordoned them), each with why: no retry is due for them.
   */
  released: Array<{ node: string; why: PoolCordonLoss }>;
  /** The nodes left for a pod no eviction can move (two budgets select it), each with its error. */
  unevictable: Array<{ node: string; error: PluginError }>;
  /** Nodes this drain cordoned and, stopped before draining them, uncordoned. */
  uncordoned: string[];
  /** Pods evicted, over all nodes. */
  evicted: number;
  /** A resolution stopped the drain with nodes left. */
  stopped: boolean;
  /**
   * Epoch milliseconds: the oldest surge a cordon of this drain was held for when someone else undid it (a node released
   * as `uncordoned since`), or undefined when none was. A newer surge that joined the drain is not cordoned for by it.
   */
  undoneFor: number | undefined;
}

interface NodeState {
  readonly node: V1Node;
  readonly name: string;
  /** This drain cordoned it. */
  readonly changed: boolean;
  /** The node records the drain's pool cordon (made or moved by it): without the record, it was taken over. */
  readonly claimed: boolean;
  drained: boolean;
  /** Why the drain left it, its cordon no longer the drain's (see {@link PoolDrainOutcome.released}). */
  released?: PoolCordonLoss;
  /** Released as `uncordoned since`: the surge its cordon was held for when it was undone. */
  undoneFor?: number;
}

const outOfTime = (err: unknown): boolean => err instanceof DeadlineReachedError || (err instanceof PluginError && err.code === Code.DeadlineExceeded);

/**
 * Drains a pool: cordons every node first (so the pods evicted from one do not
 * land on another about to go), then drains them `maxUnavailable` at a time,
 * starting one at least `minIntervalMs` after the one before (a node with
 * nothing to evict takes no turn), each through the per-node drain (Eviction
 * API, budgets retried until the node's deadline). When `stop` aborts, no node
 * starts, the drains in flight stop at their next step, and the nodes the pool's
 * drains cordoned, did not drain and still remember are uncordoned. A node with a pod no eviction
 * can move is left (in `unevictable`), and the others drain.
 * @throws PluginError when a Kubernetes call fails for good (e.g. PERMISSION_DENIED).
 */
export async function drainPool(drainer: NodeDrainer, r: PoolDrainRun): Promise<PoolDrainOutcome> {
  // Cordons and uncordons run on the call's time; node drains also end when the drain is stopped.
  const call = new Deadline(r.at, r.signal, r.clock);
  const work = new Deadline(r.at, call.signal, r.clock);
  const onStop = (): void => work.abort(new DrainStoppedError(wallTimeOf(r.clock, r.clock.now())));
  if (r.stop.aborted) onStop();
  else r.stop.addEventListener('abort', onStop, { once: true });
  try {
    // Stopped before it began: nothing to cordon, but what the pool's earlier drains left is still undone below.
    const states = r.stop.aborted ? r.nodes.map(notCordoned) : await cordonAll(drainer, r, call);
    if (!r.stop.aborted) await r.afterCordons();
    let evicted = 0;
    let fatal: unknown;
    const unevictable: PoolDrainOutcome['unevictable'] = [];
    const inFlight = new Set<Promise<void>>();
    for (const s of states) {
      if (s.drained) continue;
      while (inFlight.size >= r.settings.maxUnavailable) await Promise.race(inFlight);
      if (work.signal.aborted) break;
      const { lastStart } = r.memory;
      const wait = lastStart === undefined ? 0 : lastStart + r.settings.minIntervalMs - r.clock.now();
      if (wait > 0) {
        try {
          await work.sleep(wait);
        } catch {
          break;
        }
      }
      const started = r.clock.now();
      const deadline = new Deadline(Math.min(r.at, started + r.maxNodeDrainMs), work.signal, r.clock);
      const retry = { deadline, backoff: r.backoff };
      let plan;
      try {
        plan = await drainer.plan(s.name, retry);
        // Checked just before the evictions: another plugin process may have undone the cordon while earlier nodes drained.
        if (!nothingToDrain(plan) && (await releaseIfLost(drainer, r, s, retry))) {
          deadline.dispose();
          continue;
        }
      } catch (err) {
        deadline.dispose();
        if (!outOfTime(err)) {
          fatal ??= err;
          work.abort(err);
        }
        break;
      }
      if (nothingToDrain(plan)) {
        s.drained = true;
        doneWith(r, s.node);
        r.memory.cordoned.delete(s.name);
        deadline.dispose();
        continue;
      }
      r.memory.lastStart = started;
      const attributes = (podsEvicted: number, remaining: number): Record<string, string> => ({
        node: s.name,
        pods_evicted: String(podsEvicted),
        pods_remaining: String(remaining),
        duration_ms: String(r.clock.now() - started),
      });
      // A budget may hold an eviction for long: each retry first checks the cordon is still the drain's, else stops the node.
      const beforeRetry = async (): Promise<void> => {
        if (await releaseIfLost(drainer, r, s, retry)) deadline.abort(new DrainStoppedError(wallTimeOf(r.clock, r.clock.now())));
      };
      const drain: Promise<void> = drainer
        .evict(s.node, plan, retry, attributes, { beforeRetry })
        .then(
          (result) => {
            s.drained = true;
            doneWith(r, s.node);
            r.memory.cordoned.delete(s.name);
            evicted += Number(result.attributes.pods_evicted);
          },
          (err: unknown) => {
            // Stopped by its check before a retry (the cordon is no longer the drain's): the other nodes go on.
            if (s.released !== undefined || s.drained) return;
            if (err instanceof DrainIncompleteError && deadline.at >= r.at) {
              // It ran out of the pool's own time (its timer may fire a moment before the pool's): no node starts after it.
              work.abort(new DeadlineReachedError(wallTimeOf(r.clock, r.at)));
              return;
            }
            if (!(err instanceof DrainIncompleteError) && !isUnevictablePod(err)) {
              fatal ??= err;
              // The pool fails: the other nodes' evictions stop too.
              work.abort(err);
              return;
            }
            // Left by its own drain (out of maxDrainMs, or one pod that can never be evicted holds it, not the pool): a node
            // whose cordon went meanwhile is released, not left for a retry that would cordon it again; else the answer names it.
            return releaseIfLost(drainer, r, s, { deadline: work, backoff: r.backoff }).then(
              (released) => {
                if (!released && isUnevictablePod(err)) unevictable.push({ node: s.name, error: err as PluginError });
              },
              () => {
                if (isUnevictablePod(err)) unevictable.push({ node: s.name, error: err as PluginError });
              },
            );
          },
        )
        .finally(() => {
          deadline.dispose();
          inFlight.delete(drain);
        });
      inFlight.add(drain);
    }
    await Promise.all(inFlight);

    const undrained = states.filter((s) => !s.drained);
    // A newer surge may have joined since the cordons: the ones left are held for it.
    for (const s of undrained) holdFor(r.memory, s.name, r.surgeAt());
    let uncordoned: string[] = [];
    if (r.stop.aborted) {
      // On this drain's call's time, or the stopping resolution's when that ends later: this call's may be all but spent.
      const { resolvedAt, deadline: by } = r.stoppedBy();
      const undo = { deadline: by !== undefined && by.at > call.at ? by : call, backoff: r.backoff, logger: r.logger };
      // Cordons made by a drain of this pool before the plugin restarted (it found them made) are as much this pool's to undo.
      await recallRecordedCordons(drainer, undrained.map((s) => s.node), r.pool, r.memory, undo);
      uncordoned = await uncordonNodes(drainer, undrained.map((s) => s.name), r.memory, { ...undo, resolution: { pool: r.pool, resolvedAt } });
    }
    if (fatal) throw fatal;
    return {
      selected: r.nodes.length,
      newlyCordoned: states.filter((s) => s.changed).length,
      drained: states.filter((s) => s.drained).map((s) => s.name),
      left: undrained.filter((s) => s.released === undefined).map((s) => s.name),
      released: undrained.flatMap((s) => (s.released === undefined ? [] : [{ node: s.name, why: s.released }])),
      unevictable: unevictable.sort((a, b) => a.node.localeCompare(b.node)),
      uncordoned,
      evicted,
      stopped: r.stop.aborted && undrained.length > 0,
      undoneFor: undrained.reduce<number | undefined>((oldest, s) => (s.undoneFor === undefined ? oldest : Math.min(s.undoneFor, oldest ?? Infinity)), undefined),
    };
  } finally {
    r.stop.removeEventListener('abort', onStop);
    work.dispose();
    call.dispose();
  }
}

/** Holds the pool's remembered cordon of `name`, if any, for the surge of `surgeAt` when that is newer than the one it is held for. */
function holdFor(memory: PoolMemory, name: string, surgeAt: number): void {
  const cordon = memory.cordoned.get(name);
  if (cordon !== undefined && (cordon.surgeAt ?? -Infinity) < surgeAt) memory.cordoned.set(name, { ...cordon, surgeAt });
}

/**
 * A newer surge (of time `claim.surgeAt`) has joined the pool's drain: the cordons `memory` holds for older surges are
 * held for it, here and in the nodes' records (which a resolution in another plugin process, or after a restart, reads),
 * so the older surges' late resolutions leave them. A record that cannot be moved is logged: that cordon stays held for
 * the older surge until this surge's retry cordons the node again.
 */
export async function holdForSurge(drainer: NodeDrainer, memory: PoolMemory, claim: PoolClaim, run: NodeRetry & { logger: Logger }): Promise<void> {
  const older = [...memory.cordoned].filter(([, cordon]) => (cordon.surgeAt ?? -Infinity) < claim.surgeAt);
  await forEachBounded(older, PATCH_CONCURRENCY, async ([name, cordon]) => {
    try {
      // Uncordoned meanwhile (an older surge's resolution in another process): not held for this surge, here either.
      const still = await drainer.recordSurge(name, cordon.uid, claim, run);
      // The same node object still: the memory may have forgotten it (uncordoned) or learnt another under its name meanwhile.
      if (still && memory.cordoned.get(name)?.uid === cordon.uid) holdFor(memory, name, claim.surgeAt);
    } catch (err) {
      run.logger.warn('could not record the newer surge on a node its pool drain cordoned: an older surge\'s resolution in another plugin process would undo it', { node: name, err });
    }
  });
}

/** A node not cordoned by this drain (stopped before it began): the pool's memory says whether to undo an earlier cordon. */
function notCordoned(node: V1Node): NodeState {
  return { node, name: node.metadata?.name ?? '', changed: false, claimed: false, drained: false };
}

/**
 * Reads the node of `s` again (see {@link NodeDrainer.poolCordonLoss}): when its cordon is no longer the drain's, the
 * node is released (or, gone from the cluster, drained) and forgotten by the pool's memory, so nothing is evicted
 * from it and no resolution here undoes it. Answers whether it was.
 */
async function releaseIfLost(drainer: NodeDrainer, r: PoolDrainRun, s: NodeState, retry: NodeRetry): Promise<boolean> {
  const loss = await drainer.poolCordonLoss(s.name, s.node.metadata?.uid, { pool: r.pool, surgeAt: r.surgeAt, claimed: s.claimed }, retry);
  if (loss === undefined) return false;
  if (loss === 'gone') s.drained = true;
  else s.released = loss;
  const remembered = r.memory.cordoned.get(s.name);
  const mine = remembered?.uid === s.node.metadata?.uid;
  if (loss === 'uncordoned since') {
    // Undone while held for that surge: a newer surge's drain cordons it again (see undoneElsewhere).
    s.undoneFor = (mine ? remembered?.surgeAt : undefined) ?? r.surgeAt();
    doneWith(r, s.node, s.undoneFor);
  }
  if (mine) r.memory.cordoned.delete(s.name);
  r.logger.info('pool drain leaves the node: its cordon is no longer this drain\'s', { node: s.name, why: loss });
  return true;
}

/**
 * Whether the pool's memory holds a cordon of `node` for this drain's surge (or a newer one), or says a drain for it was
 * done with the node (see {@link PoolMemory.done}), and the node, as listed, is no longer cordoned: core's retry of a
 * drain that ran out of time, after a resolution in another plugin process (or someone by hand) undid the cordon.
 * Cordoned again, it would stay so: the resolution that would undo it has come and gone. Answers the surge that cordon
 * was held for when it was undone, or undefined when it was not.
 */
function undoneElsewhere(drainer: NodeDrainer, r: PoolDrainRun, node: V1Node): number | undefined {
  const name = node.metadata?.name ?? '';
  const earlier = r.memory.cordoned.get(name) ?? r.memory.done.get(name);
  const heldFor = earlier?.surgeAt ?? -Infinity;
  return earlier !== undefined && earlier.uid === node.metadata?.uid && heldFor >= r.surgeAt() && drainer.uncordoned(node) ? heldFor : undefined;
}

/** Records in the pool's memory that a drain for the surge of `surgeAt` (by default the current one) is done with `node` (see {@link PoolMemory.done}). */
function doneWith(r: PoolDrainRun, node: V1Node, surgeAt = r.surgeAt()): void {
  r.memory.done.set(node.metadata?.name ?? '', { uid: node.metadata?.uid, surgeAt });
}

/** Cordons every node, but those {@link undoneElsewhere} (released); a node gone from the cluster counts as drained. */
async function cordonAll(drainer: NodeDrainer, r: PoolDrainRun, deadline: Deadline): Promise<NodeState[]> {
  const states: NodeState[] = [];
  let failure: unknown;
  await forEachBounded(r.nodes, PATCH_CONCURRENCY, async (node) => {
    const name = node.metadata?.name ?? '';
    const undoneFor = undoneElsewhere(drainer, r, node);
    if (undoneFor !== undefined) {
      r.memory.cordoned.delete(name);
      doneWith(r, node, undoneFor);
      r.logger.info('pool drain leaves the node: the cordon it made for this surge was undone since', { node: name });
      states.push({ node, name, changed: false, claimed: false, drained: false, released: 'uncordoned since', undoneFor });
      return;
    }
    try {
      const retry = { deadline, backoff: r.backoff };
      let surgeAt = r.surgeAt();
      const { changed, wasUnschedulable } = await drainer.cordon(node, r.event, retry, { pool: r.pool, surgeAt });
      const uid = node.metadata?.uid;
      // A newer surge that joined while the patch was on its way did not find this cordon to move (see holdForSurge).
      // Uncordoned meanwhile (that older surge's resolution, in another process): the cordon stays held for the surge it
      // was made for, so the newer surge's drain cordons the node anew.
      while (r.surgeAt() > surgeAt) {
        const newer = r.surgeAt();
        if (!(await drainer.recordSurge(name, uid, { pool: r.pool, surgeAt: newer }, retry))) break;
        surgeAt = newer;
      }
      // As the node was when the cordon went through (after a 409, as read again), unless an earlier drain cordoned
      // this same node first: one remembered under its name that has been deleted since is another node. That earlier
      // cordon is this surge's now (as the cordon patch moved its record): the older surge's resolution must leave it.
      const earlier = r.memory.cordoned.get(name);
      if (earlier !== undefined && earlier.uid === uid) holdFor(r.memory, name, surgeAt);
      else if (changed) r.memory.cordoned.set(name, { uid, wasUnschedulable, surgeAt });
      else {
        // Found cordoned by a drain of the pool this process does not remember (before a restart): remembered as this
        // drain's, so a newer surge that joins it moves that record too (see holdForSurge), and the older surge's
        // resolution here leaves it.
        rememberRecordedCordon(r.memory, node, r.pool);
        holdFor(r.memory, name, surgeAt);
      }
      states.push({ node, name, changed, claimed: r.memory.cordoned.get(name)?.uid === uid, drained: false });
    } catch (err) {
      if (!(err instanceof PluginError && err.code === Code.NotFound)) failure ??= err;
      else {
        r.memory.cordoned.delete(name);
        states.push({ node, name, changed: false, claimed: false, drained: true });
      }
    }
  });
  if (failure) throw failure;
  // Drained in the order the nodes were given, not the order the cordons came back.
  const order = new Map(r.nodes.map((n, i) => [n, i]));
  return states.sort((a, b) => order.get(a.node)! - order.get(b.node)!);
}

/**
 * Adds to `memory` the cordons the pool's nodes record (see {@link rememberRecordedCordon}) that it
 * lacks: those made by drains of the pool before this process began. A node with nothing left to
 * evict is not added: its drain emptied it, and a drained node stays cordoned, as one drained in
 * this process does (its pool is about to be reclaimed). So is one whose pods cannot be listed (logged).
 * Those `memory` knows only from their records (a drain here found them so cordoned) are weighed again.
 */
export async function recallRecordedCordons(
  drainer: NodeDrainer,
  nodes: readonly V1Node[],
  pool: string,
  memory: PoolMemory,
  run: NodeRetry & { logger: Logger },
): Promise<void> {
  const madeHere = (name: string): boolean => {
    const cordon = memory.cordoned.get(name);
    return cordon !== undefined && cordon.recordedFor === undefined;
  };
  const unknown = nodes.filter((node) => !madeHere(node.metadata?.name ?? '') && recordedPoolCordon(node, pool) !== undefined);
  await forEachBounded(unknown, PATCH_CONCURRENCY, async (node) => {
    const name = node.metadata?.name ?? '';
    try {
      if (!nothingToDrain(await drainer.plan(name, run))) rememberRecordedCordon(memory, node, pool);
      else memory.cordoned.delete(name);
    } catch (err) {
      memory.cordoned.delete(name);
      run.logger.warn('could not list the pods of a node an earlier pool drain cordoned: it stays cordoned', { node: name, err });
    }
  });
}

/**
 * Uncordons those of `names` that pool drains cordoned for surges `run.resolution` ends, as `memory.cordoned`
 * remembers them (with whether each was unschedulable before), and forgets them there; one held for a later
 * surge stays cordoned and remembered; one that fails is logged, stays cordoned and is remembered. Each uncordon
 * in flight is in `memory.uncordoning`. Answers the names uncordoned.
 */
export async function uncordonNodes(
  drainer: NodeDrainer,
  names: readonly string[],
  memory: PoolMemory,
  run: { deadline: Deadline; backoff: Backoff; logger: Logger; resolution: PoolResolution },
): Promise<string[]> {
  const done: string[] = [];
  await forEachBounded(names, PATCH_CONCURRENCY, async (name) => {
    // Read at its turn: a per-instance drain may have taken the node over meanwhile.
    const cordon = memory.cordoned.get(name);
    if (cordon === undefined || heldForNewerSurge(cordon, run.resolution.resolvedAt)) return;
    const uncordon = drainer.uncordon(name, cordon, { deadline: run.deadline, backoff: run.backoff }, run.resolution);
    // Known from the check on: a per-instance drain taking the node over from now waits for it to land, then cordons again.
    const landing = uncordon.then(() => {}, () => {});
    memory.uncordoning.set(name, landing);
    try {
      if (await uncordon) done.push(name);
      memory.cordoned.delete(name);
    } catch (err) {
      run.logger.warn('could not uncordon node after its pool drain was stopped', { node: name, err });
    } finally {
      if (memory.uncordoning.get(name) === landing) memory.uncordoning.delete(name);
    }
  });
  return done.sort();
}
