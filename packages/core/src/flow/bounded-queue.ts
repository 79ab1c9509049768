/** A task the queue starts when a slot is free. */
export type QueuedTask = () => Promise<void>;

/**
 * Runs at most `concurrency` tasks at once and holds at most `capacity` more.
 * `offer` says no instead of growing without bound, so a caller can count
 * the overflow rather than lose it.
 */
export class BoundedQueue {
  private readonly waiting: QueuedTask[] = [];
  private head = 0;
  private running = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly concurrency: number,
    private readonly capacity: number,
  ) {}

  /**
   * Starts or queues the task; false when the queue is full. `force` queues it
   * even then: for a run that was accepted earlier (resumed, retried) and must not be lost.
   */
  offer(task: QueuedTask, options?: { force?: boolean }): boolean {
    if (this.running < this.concurrency) {
      this.start(task);
      return true;
    }
    if (this.depth >= this.capacity && !options?.force) return false;
    this.waiting.push(task);
    return true;
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
    // Tasks record their own failures; the queue only needs to go on. One handler for both
    // ends, not catch() then finally(): no two promises more per task.
    void task().then(this.finished, this.finished);
  }

  private readonly finished = (): void => {
    this.running--;
    const next = this.next();
    if (next) this.start(next);
    else if (this.running === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
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
