/**
 * A list of shared state read again only when a read needs it fresher than the last: reads that accept the last
 * list's age share it, and reads that come while a list is in flight wait for the one begun after them (the one in
 * flight may have been answered before the write they follow). One list at a time, however many reads come.
 */
export class FreshList {
  /** When the last list that ended began (monotonic ms). */
  private listedAt = -Infinity;
  /** The list in flight, and when it began; and the one that follows it, which reads that came meanwhile wait for. */
  private listing: { startedAt: number; done: Promise<void> } | undefined;
  private next: Promise<void> | undefined;

  /** `list` never rejects; `elapsed` is a monotonic clock in ms. */
  constructor(
    private readonly list: () => Promise<void>,
    private readonly elapsed: () => number,
  ) {}

  /** Resolves once a list begun at most `maxAgeMs` before the call has ended. */
  fresh(maxAgeMs: number): Promise<void> {
    const asked = this.elapsed() - maxAgeMs;
    if (this.listedAt >= asked) return Promise.resolve();
    if (!this.listing) return this.start();
    if (this.listing.startedAt >= asked) return this.listing.done;
    return (this.next ??= this.listing.done.then(() => {
      this.next = undefined;
      return this.start();
    }));
  }

  private start(): Promise<void> {
    const startedAt = this.elapsed();
    const done = this.list().then(() => {
      this.listedAt = Math.max(this.listedAt, startedAt);
      if (this.listing?.done === done) this.listing = undefined;
    });
    this.listing = { startedAt, done };
    return done;
  }
}
