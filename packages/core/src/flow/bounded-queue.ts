/** A task the queue starts when a slot is free. */
export type QueuedTask = () => Promise<void>;

/**
 * The slots of one flow, shared by its queue in every engine: after a reload the old engine's
 * runs still hold theirs, so the new engine's runs of the flow wait for them instead of raising
 * how many run at once past `concurrency` (a flow set to 1 to act on one node at a time).
 */
export class SharedSlots {
  /** Tasks running over every queue sharing these slots. */
  running = 0;
  /**
   * Tasks that may run at once: the concurrency of the newest queue, that of the configuration
   * in force (a reload that raised it must not leave the old queue's backlog at the old one).
   */
  limit = Number.POSITIVE_INFINITY;
  /** Queues with tasks waiting for a slot, oldest first; a queue leaves once it has none. */
  readonly queues = new Set<BoundedQueue>();

  /** Starts waiting tasks while a slot is free, the oldest queue's first. */
  startWaiting(): void {
    for (const queue of this.queues) {
      if (!queue.startWaiting()) return;
      this.queues.delete(queue);
    }
  }
}

/** The shared slots of each flow, by name, kept across reloads as held bytes are. */
export class FlowSlots {
  private readonly byFlow = new Map<string, SharedSlots>();

  of(flow: string): SharedSlots {
    let slots = this.byFlow.get(flow);
    if (!slots) this.byFlow.set(flow, (slots = new SharedSlots()));
    return slots;
  }
}

/**
 * Runs at most `concurrency` tasks at once (over every queue sharing its
 * slots, the newest queue's `concurrency`) and holds at most `capacity` more. `offer` says no instead of growing
 * without bound, so a caller can count the overflow rather than lose it.
 */
export class BoundedQueue {
  private readonly waiting: QueuedTask[] = [];
  private head = 0;
  private running = 0;
  private idleWaiters: Array<() => void> = [];

  /** @param slots shared with the queues of the same flow in other engines; this queue's `concurrency` becomes their limit. */
  constructor(
    concurrency: number,
    private readonly capacity: number,
    private readonly slots = new SharedSlots(),
  ) {
    slots.limit = concurrency;
  }

  /**
   * Starts or queues the task; false when the queue is full. `force` queues it
   * even then: for a run that was accepted earlier (resumed, retried) and must not be lost.
   */
  offer(task: QueuedTask, options?: { force?: boolean }): boolean {
    // Behind tasks already waiting for these slots, here or in another engine's queue.
    if (this.startsNow) {
      this.start(task);
      return true;
    }
    if (this.depth >= this.capacity && !options?.force) return false;
    this.waiting.push(task);
    this.slots.queues.add(this);
    // Slots free behind waiting tasks: a reload raised the limit. They go to the oldest waiting first.
    if (this.slots.running < this.slots.limit) this.slots.startWaiting();
    return true;
  }

  /** Whether {@link offer} would take a task now (start or queue it), without `force`. */
  get hasRoom(): boolean {
    return this.startsNow || this.depth < this.capacity;
  }

  /** A slot is free and no task waits for these slots, here or in another engine's queue. */
  private get startsNow(): boolean {
    return this.slots.running < this.slots.limit && this.slots.queues.size === 0;
  }

  /** Starts waiting tasks while a slot is free; true once none waits (see {@link SharedSlots.startWaiting}). */
  startWaiting(): boolean {
    while (this.depth > 0 && this.slots.running < this.slots.limit) this.start(this.next()!);
    return this.depth === 0;
  }

  /** Tasks waiting for a slot. */
  get depth(): number {
    return this.waiting.length - this.head;
  }

  /** Tasks running now. */
  get active(): number {
    return this.running;
  }

  /** Resolves when nothing runs or waits. */
  idle(): Promise<void> {
    if (this.running === 0 && this.depth === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private start(task: QueuedTask): void {
    this.running++;
    this.slots.running++;
    // Tasks record their own failures; the queue only needs to go on. One handler for both
    // ends, not catch() then finally(): no two promises more per task.
    void task().then(this.finished, this.finished);
  }

  private readonly finished = (): void => {
    this.running--;
    this.slots.running--;
    this.slots.startWaiting();
    if (this.running === 0 && this.depth === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  };

  private next(): QueuedTask | undefined {
    if (this.head >= this.waiting.length) return undefined;
    const task = this.waiting[this.head++];
    // Compact now and then instead of shift(), which is O(n) per call on a long queue.
    if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting.splice(0, this.head);
      this.head = 0;
    }
    return task;
  }
}
