import { Code, PluginError } from '@hollowtrees/grpcplugin';
import { ApiException, type V1Node, type V1Taint } from '@kubernetes/client-node';
import type { Deadline } from './deadline.js';
import type { KubeApi } from './kube-api.js';
import type { PluginLogger as Logger } from '@hollowtrees/grpcplugin';
import type { NodeMarks, Taint } from './node-marks.js';
import type { Backoff } from '@hollowtrees/grpcplugin';
import { hasPoolCordonRecord, heldForNewerSurge, poolCordonRecord, POOL_CORDON_ANNOTATION, recordedPoolCordon, type PoolClaim, type PoolResolution } from './pool-cordon-record.js';
import type { PoolCordon } from './pool-registry.js';
import { withRetries } from './retry.js';

const sameSlot = (a: V1Taint, b: Taint): boolean => a.key === b.key && a.effect === b.effect;

/** Whether `node` is cordoned and carries the plugin's taint and label. */
export function isMarked(node: V1Node, marks: NodeMarks): boolean {
  const { taint, label } = marks;
  const tainted = (node.spec?.taints ?? []).some((t) => sameSlot(t, taint) && (t.value ?? '') === taint.value);
  return node.spec?.unschedulable === true && tainted && node.metadata?.labels?.[label.key] === label.value;
}

/**
 * The merge patch that cordons and marks `node`, or undefined when it already
 * is. The patch carries the node's `resourceVersion`, so a concurrent change
 * to the taints answers 409 instead of being overwritten. A pool drain's cordon
 * (`claim`: the pool's key and its surge's time) records itself on the node ({@link POOL_CORDON_ANNOTATION}),
 * and takes over a cordon an older surge's drain of the pool recorded (so that surge's resolution leaves it);
 * any other cordon takes the node over from a pool drain, so it removes that record,
 * even from a node already cordoned: no resolution may undo it any more.
 */
export function cordonPatch(node: V1Node, marks: NodeMarks, claim?: PoolClaim): object | undefined {
  const annotation = recordChange(node, marks, claim);
  if (isMarked(node, marks) && annotation === undefined) return undefined;
  const { taint, label } = marks;
  const taints = node.spec?.taints ?? [];
  return {
    metadata: { resourceVersion: node.metadata?.resourceVersion, labels: { [label.key]: label.value }, ...(annotation === undefined ? {} : { annotations: { [POOL_CORDON_ANNOTATION]: annotation } }) },
    spec: { unschedulable: true, taints: [...taints.filter((t) => !sameSlot(t, taint)), { ...taint }] },
  };
}

/** The pool cordon record a cordon for `claim` writes (a string), removes (null) or leaves as it is (undefined). */
function recordChange(node: V1Node, marks: NodeMarks, claim: PoolClaim | undefined): string | null | undefined {
  if (claim === undefined) return hasPoolCordonRecord(node) ? null : undefined;
  if (!isMarked(node, marks)) return poolCordonRecord(claim, node);
  // Cordoned already: by an older surge's drain of this pool, the record moves to this surge (with the state before
  // that first cordon); by anyone else (a per-instance drain, another pool's drain), it is not this drain's to undo.
  const earlier = recordedPoolCordon(node, claim.pool);
  return earlier !== undefined && (earlier.surgeAt ?? -Infinity) < claim.surgeAt ? poolCordonRecord(claim, node, earlier.wasUnschedulable) : undefined;
}

/** What {@link cordonNode} did. */
export interface CordonResult {
  /** False when the node was already cordoned and marked. */
  changed: boolean;
  /** Whether the node was unschedulable before, as it was when the cordon went through (read again after a conflict). */
  wasUnschedulable: boolean;
}

/**
 * Sends a node patch; `lost()` is told when it failed with its outcome unknown (a dropped
 * connection, a timeout, a 5xx: anything but the API server refusing it below 500), so it may
 * have been applied, and the next try may find it done.
 */
async function sendPatch(api: KubeApi, name: string, patch: object, signal: AbortSignal, lost: () => void): Promise<void> {
  try {
    await api.mergePatchNode(name, patch, signal);
  } catch (err) {
    if (!(err instanceof ApiException && err.code < 500)) lost();
    throw err;
  }
}

/**
 * Cordons and marks the node, re-reading it after a conflict. A try whose
 * answer was lost (a dropped connection, a timeout, a 5xx) may have been
 * applied: when the next try finds the node cordoned, the cordon counts as
 * this call's. A patch that only changes a pool drain's record (see
 * {@link cordonPatch}) does not count as a cordon. In dry-run it logs the patch it would send.
 */
export async function cordonNode(
  api: KubeApi,
  node: V1Node,
  marks: NodeMarks,
  run: { deadline: Deadline; backoff: Backoff; dryRun: boolean; logger: Logger },
  claim?: PoolClaim,
): Promise<CordonResult> {
  const name = node.metadata?.name ?? '';
  // The node's `unschedulable` before a patch that was sent and may have been applied.
  let unanswered: boolean | undefined;
  return withRetries(
    async (attempt) => {
      const current = attempt === 1 ? node : await api.readNode(name);
      // Read again by name: a node deleted and created anew under it (the cloud reuses names) is another instance's.
      if (current.metadata?.uid !== node.metadata?.uid && node.metadata?.uid !== undefined) {
        throw new PluginError(Code.NotFound, `cordoning node "${name}": it was deleted and another node created under its name since it was read`);
      }
      const patch = cordonPatch(current, marks, claim);
      const wasUnschedulable = current.spec?.unschedulable === true;
      const done = unanswered === undefined ? { changed: false, wasUnschedulable } : { changed: true, wasUnschedulable: unanswered };
      if (!patch) return done;
      if (isMarked(current, marks)) {
        // Only the pool drain's record changes (goes, or names a newer surge): the cordon was there already.
        if (!run.dryRun) await sendPatch(api, name, patch, run.deadline.signal, () => {});
        return done;
      }
      if (run.dryRun) {
        run.logger.info('dry run: would cordon and taint node', { node: name, patch });
        return { changed: true, wasUnschedulable };
      }
      await sendPatch(api, name, patch, run.deadline.signal, () => (unanswered ??= wasUnschedulable));
      run.logger.info('cordoned and tainted node', { node: name, taint: marks.taint, label: marks.label });
      return { changed: true, wasUnschedulable };
    },
    { deadline: run.deadline, backoff: run.backoff, doing: `cordoning node "${name}"` },
  );
}

/**
 * Moves the node's record of an older surge's cordon by a drain of `claim`'s pool to `claim`'s surge (see
 * {@link cordonPatch}), so that older surge's late resolution, in any plugin process, leaves it. A node that is no
 * longer cordoned and marked, is another node object than `uid`, or records anyone else's cordon is left as it is.
 * Re-reads the node at each try. Answers whether the node is still cordoned and marked (in dry-run, always): when not,
 * the cordon is not held for `claim`'s surge, and no memory may say it is.
 */
export function recordNewerSurge(
  api: KubeApi,
  name: string,
  uid: string | undefined,
  marks: NodeMarks,
  claim: PoolClaim,
  run: { deadline: Deadline; backoff: Backoff; dryRun: boolean },
): Promise<boolean> {
  return withRetries(
    async () => {
      const current = await api.readNode(name);
      // Not marked: undone meanwhile, and a cordon here would make it again.
      if (current.metadata?.uid !== uid || !isMarked(current, marks)) return run.dryRun;
      const patch = cordonPatch(current, marks, claim);
      if (patch && !run.dryRun) await sendPatch(api, name, patch, run.deadline.signal, () => {});
      return true;
    },
    { deadline: run.deadline, backoff: run.backoff, doing: `recording a newer surge on node "${name}"` },
  );
}

/** Why a pool drain leaves a node it cordoned undrained when its turn comes (see {@link checkPoolCordon}). */
export type PoolCordonLoss = 'gone' | 'uncordoned since' | 'taken over by an interruption drain' | 'held for a newer surge by another drain';

/** The pool cordon a drain holds on a node, as {@link checkPoolCordon} checks it. */
export interface HeldPoolCordon {
  /** The key of the drain's pool. */
  readonly pool: string;
  /** Epoch milliseconds: the latest surge the drain is for, read when the node's answer comes (a newer one may join meanwhile). */
  surgeAt(): number;
  /** The node recorded the drain's cordon (made or moved by it): without the record, it was taken over. */
  readonly claimed: boolean;
}

/**
 * Whether the node still carries the pool cordon a drain of `held.pool` made or found (undefined), or why not: it is gone
 * (or another node object than `uid`), no longer cordoned and marked (a resolution in another plugin process undid it,
 * or someone by hand), its record names a surge of the pool newer than `held.surgeAt()` (another process's drain holds it), or its record
 * is gone while the drain held one (`claimed`: a per-instance drain took it over). Reads the node from the API
 * server: another process's change is seen nowhere else. Only reads, so a concurrent change cannot make it fail.
 */
export async function checkPoolCordon(
  api: KubeApi,
  name: string,
  uid: string | undefined,
  marks: NodeMarks,
  held: HeldPoolCordon,
  run: { deadline: Deadline; backoff: Backoff },
): Promise<PoolCordonLoss | undefined> {
  let current: V1Node;
  try {
    current = await withRetries(() => api.readNode(name), { ...run, doing: `reading node "${name}" before its drain` });
  } catch (err) {
    if (err instanceof PluginError && err.code === Code.NotFound) return 'gone';
    throw err;
  }
  if (uid !== undefined && current.metadata?.uid !== uid) return 'gone';
  if (!isMarked(current, marks)) return 'uncordoned since';
  const recorded = recordedPoolCordon(current, held.pool);
  // The drain's surge as of the answer, not the ask: a newer surge that joined the drain meanwhile moved the record.
  if (recorded !== undefined && heldForNewerSurge(recorded, held.surgeAt())) return 'held for a newer surge by another drain';
  if (recorded === undefined && held.claimed) return 'taken over by an interruption drain';
  return undefined;
}

/**
 * The merge patch that undoes {@link cordonPatch}: removes the taint and the
 * label (and a pool drain's record of it) and, unless the node was unschedulable before the cordon
 * (`keepUnschedulable`), makes it schedulable again. Undefined when the node no
 * longer carries the label: someone else has changed it since, so it is left alone.
 */
export function uncordonPatch(node: V1Node, marks: NodeMarks, keepUnschedulable: boolean): object | undefined {
  const { taint, label } = marks;
  if (node.metadata?.labels?.[label.key] !== label.value) return undefined;
  return {
    // A label set to null is removed by a merge patch.
    metadata: { resourceVersion: node.metadata?.resourceVersion, labels: { [label.key]: null }, ...(hasPoolCordonRecord(node) ? { annotations: { [POOL_CORDON_ANNOTATION]: null } } : {}) },
    spec: { ...(keepUnschedulable ? {} : { unschedulable: false }), taints: (node.spec?.taints ?? []).filter((t) => !sameSlot(t, taint)) },
  };
}

/**
 * Uncordons a node this plugin cordoned (see {@link uncordonPatch}), reading it
 * first and again after a conflict. Answers whether it changed the node: not
 * when it is gone from the cluster (its instance reclaimed), as there is nothing to undo,
 * nor when the node of that name now has another `uid` than the one cordoned (it was
 * deleted and created anew), nor, for a pool's cordon (`cordon.recordedFor`, or `resolution`'s pool), when the node no
 * longer records it (a per-instance drain took it over, in any plugin process), nor when its record says a drain of
 * `resolution`'s pool (in another process, say) holds it for a surge later than the resolution; yes when a try whose
 * answer was lost is found applied by the next.
 */
export function uncordonNode(
  api: KubeApi,
  name: string,
  marks: NodeMarks,
  keepUnschedulable: boolean,
  run: { deadline: Deadline; backoff: Backoff; dryRun: boolean; logger: Logger },
  cordon?: Pick<PoolCordon, 'uid' | 'recordedFor'>,
  resolution?: PoolResolution,
): Promise<boolean> {
  const { uid, recordedFor } = cordon ?? {};
  let unanswered = false;
  return withRetries(
    async () => {
      const current = await api.readNode(name);
      if (uid !== undefined && current.metadata?.uid !== uid) {
        run.logger.info('node deleted and created anew under its name: nothing to uncordon', { node: name });
        return unanswered;
      }
      // The node's record is what every plugin process shares: gone, the cordon was taken over (a per-instance drain, in
      // this process or another: its instance is going away) or undone; naming a later surge, another drain holds it for that.
      const pool = recordedFor ?? resolution?.pool;
      const recorded = pool !== undefined && !unanswered ? recordedPoolCordon(current, pool) : undefined;
      if (pool !== undefined && !unanswered && recorded === undefined) {
        run.logger.info('node no longer records the pool drain\'s cordon (taken over, or undone): left as it is', { node: name });
        return false;
      }
      if (resolution && recorded && heldForNewerSurge(recorded, resolution.resolvedAt)) {
        run.logger.info('node cordoned for a surge newer than the resolution: left cordoned', { node: name, surgeAt: new Date(recorded.surgeAt!).toISOString() });
        return false;
      }
      const patch = uncordonPatch(current, marks, keepUnschedulable);
      if (!patch) return unanswered;
      if (run.dryRun) {
        run.logger.info('dry run: would uncordon node', { node: name, patch });
        return true;
      }
      await sendPatch(api, name, patch, run.deadline.signal, () => (unanswered = true));
      run.logger.info('uncordoned node', { node: name });
      return true;
    },
    { deadline: run.deadline, backoff: run.backoff, doing: `uncordoning node "${name}"` },
  ).catch((err: unknown) => {
    if (!(err instanceof PluginError && err.code === Code.NotFound)) throw err;
    run.logger.info('node gone from the cluster: nothing to uncordon', { node: name });
    return false;
  });
}
