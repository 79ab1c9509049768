import type { HandleResult } from '@hollowtrees/grpcplugin';
import type { Deadline } from './deadline.js';

/** A pool drain in progress. */
export interface PoolRun {
  /** Epoch milliseconds of the latest surge event the drain is for: the one that started it, or a newer one that joined it. */
  readonly since: number;
  /**
   * A surge of time `surgeAt` joins the drain: when it is newer, the drain is for it from now on, so a resolution
   * older than it (the late resolution of the surge that started the drain) does not stop it.
   */
  adopt(surgeAt: number): void;
  /** Settles once the drain has ended (and, when stopped, uncordoned what it leaves). */
  readonly outcome: Promise<HandleResult>;
  /** Whether a resolution has stopped it: until its outcome settles it is only undoing its cordons, and a newer surge must not take its answer. */
  readonly stopped: boolean;
  /**
   * Once its outcome has settled: the oldest surge (epoch milliseconds) a cordon of it was held for when someone else
   * undid it (see `PoolDrainOutcome.undoneFor`), or undefined. A newer surge that joined it must not take its answer.
   */
  readonly undoneFor: number | undefined;
  /**
   * Asks the drain to stop: no node starts after this; drains in flight stop at their next step.
   * `resolvedAt` is the stopping resolution's time: cordons held for a later surge stay. `by` is the
   * stopping call's deadline: the uncordons the stop makes may run until it, when it ends after the drain's own call.
   */
  stop(resolvedAt: number, by?: Deadline): void;
}

/** A node a pool drain cordoned. */
export interface PoolCordon {
  /** The node object's uid: a node deleted and created anew under its name (the cloud reuses names) is another node. */
  readonly uid: string | undefined;
  /** Whether it was unschedulable before the cordon (someone else's cordon, kept when it is undone). */
  readonly wasUnschedulable: boolean;
  /**
   * Epoch milliseconds of the latest surge whose drain cordoned the node or found it so cordoned: a resolution older
   * than it must leave the cordon (the surge it ends is not this one). Absent when an earlier version's record gave none.
   */
  readonly surgeAt?: number;
  /**
   * Set when the cordon was known from the node's record of it (made before this process began): the key of the pool
   * it names. It is undone only while the node still carries that record (a per-instance drain may have taken it over).
   */
  readonly recordedFor?: string;
}

/** What the drains of one pool share across calls (a retry's drain goes on where the call before it stopped). */
export interface PoolMemory {
  /** The nodes the pool's drains cordoned and did not drain or uncordon yet, by name. */
  readonly cordoned: Map<string, PoolCordon>;
  /**
   * The nodes the pool's drains are done with, by name: drained, or released because their cordon was undone elsewhere
   * (see `PoolDrainOutcome.released`), with the node object's uid and the surge the drain was for (for a cordon undone
   * elsewhere, the surge it was held for then). A retry of that surge's drain that finds one uncordoned (a resolution in
   * another plugin process undid it) does not cordon it again; a newer surge's drain does.
   */
  readonly done: Map<string, { readonly uid: string | undefined; readonly surgeAt: number }>;
  /** The uncordons of those nodes in flight (past their check of `cordoned`), each settling when it has landed or failed. */
  readonly uncordoning: Map<string, Promise<void>>;
  /** Epoch milliseconds when the pool's last node drain started, so `minInterval` holds across calls too. */
  lastStart: number | undefined;
}

/** What {@link PoolRegistry.resolve} found. */
export type Resolution = { stopped: PoolRun } | { newer: PoolRun } | { none: true };

/**
 * What this plugin process remembers per pool: the drain in progress (so two
 * surge calls share one), the time of the latest resolution (so a surge
 * that is older than it, e.g. one still waiting behind its replacement when
 * the price fell back, drains nothing), and what its drains share
 * ({@link PoolMemory}: the nodes they cordoned and left, so a resolution undoes
 * the cordons of a drain that ran out of time; when the last node drain started).
 * Pools are keyed by {@link Pool.key}.
 */
export class PoolRegistry {
  private readonly runs = new Map<string, PoolRun>();
  private readonly resolutions = new Map<string, number>();
  private readonly memories = new Map<string, PoolMemory>();

  /**
   * @param maxResolutions pools whose resolution is kept, and whose memory is kept while it holds
   * no cordon; past it the oldest remembered is forgotten (pools come from events: a sender could
   * name any number of them).
   */
  constructor(private readonly maxResolutions = 10_000) {}

  /** What the pool's drains share; the drains keep it current. */
  memory(key: string): PoolMemory {
    let memory = this.memories.get(key);
    // Re-inserted, so the map's order is the order of use.
    this.memories.delete(key);
    this.memories.set(key, (memory ??= { cordoned: new Map(), done: new Map(), uncordoning: new Map(), lastStart: undefined }));
    if (this.memories.size > this.maxResolutions) this.forgetIdleMemories();
    return memory;
  }

  /** Forgets the least recently used memories that hold no cordon, no uncordon in flight and no drain, down to the limit. */
  private forgetIdleMemories(): void {
    for (const [key, memory] of this.memories) {
      if (this.memories.size <= this.maxResolutions) return;
      if (memory.cordoned.size === 0 && memory.uncordoning.size === 0 && !this.runs.has(key)) this.memories.delete(key);
    }
  }

  /**
   * Forgets `node` in every pool's memory of the nodes its drains cordoned: a per-instance drain
   * has taken it over (its instance is going away), so no resolution may uncordon it. Answers, when
   * an uncordon of it is in flight already, what settles once that has landed (or failed).
   */
  forgetNode(node: string): Promise<void> | undefined {
    const landing: Array<Promise<void>> = [];
    for (const memory of this.memories.values()) {
      memory.cordoned.delete(node);
      const uncordon = memory.uncordoning.get(node);
      if (uncordon) landing.push(uncordon);
    }
    return landing.length === 0 ? undefined : Promise.all(landing).then(() => {});
  }

  /** Epoch milliseconds of the pool's latest resolution, if any. */
  resolvedAt(key: string): number | undefined {
    return this.resolutions.get(key);
  }

  /**
   * The drain in progress for the pool, which a surge of time `surgeAt` joins (see {@link PoolRun.adopt};
   * not one a resolution has stopped), or a new one from `start()`: the check
   * and the start are one synchronous step, so two calls never start two drains.
   */
  startOrJoin(key: string, surgeAt: number, start: () => PoolRun): { run: PoolRun; joined: boolean } {
    const running = this.runs.get(key);
    if (running) {
      // In the same step as the join: a resolution between them would stop a drain this surge relies on.
      if (!running.stopped) running.adopt(surgeAt);
      return { run: running, joined: true };
    }
    const run = start();
    this.runs.set(key, run);
    const forget = (): void => {
      if (this.runs.get(key) === run) this.runs.delete(key);
    };
    run.outcome.then(forget, forget);
    return { run, joined: false };
  }

  /**
   * Records a resolution of the pool at `at` and stops the drain in progress
   * if its surge is not newer than the resolution; `by` is the resolution call's deadline (see {@link PoolRun.stop}).
   */
  resolve(key: string, at: number, by?: Deadline): Resolution {
    const latest = Math.max(at, this.resolutions.get(key) ?? -Infinity);
    // Re-inserted, so the map's order is the order of the latest resolutions.
    this.resolutions.delete(key);
    this.resolutions.set(key, latest);
    if (this.resolutions.size > this.maxResolutions) this.resolutions.delete(this.resolutions.keys().next().value!);
    const run = this.runs.get(key);
    if (!run) return { none: true };
    if (run.since > at) return { newer: run };
    run.stop(at, by);
    return { stopped: run };
  }
}
