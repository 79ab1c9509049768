/**
 * Ids of notices already queued, so the same notice seen at every poll is sent once. Bounded:
 * beyond `capacity` the oldest id is forgotten (a notice that old has long left the metadata
 * service, and a re-send would carry the same id, which core deduplicates).
 */
export class SeenNotices {
  private readonly ids = new Set<string>();

  constructor(private readonly capacity = 1_024) {}

  /** True the first time an id is offered, false after. */
  firstTime(id: string): boolean {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > this.capacity) this.ids.delete(this.ids.values().next().value!);
    return true;
  }

  /** Forgets an id, so that the next offer of it is a first time again (a notice that could not be queued). */
  forget(id: string): void {
    this.ids.delete(id);
  }
}
