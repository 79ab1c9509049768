/**
 * The ids of the notices each part of the metadata service listed at its last successful read, so
 * that a notice seen at every poll is queued once, and one that left and came back is queued again.
 * Bounded by what the metadata service lists now: an id is kept only while its part lists it.
 */
export class ListedNotices {
  private readonly byPart = new Map<string, Set<string>>();

  /** Takes `ids` as the part's whole list now; returns those its last read did not list (new, or back). */
  relist(part: string, ids: readonly string[]): string[] {
    const before = this.byPart.get(part);
    const now = new Set(ids);
    this.byPart.set(part, now);
    return [...now].filter((id) => !before?.has(id));
  }

  /** Whether a part's last read listed the id. */
  lists(id: string): boolean {
    for (const ids of this.byPart.values()) if (ids.has(id)) return true;
    return false;
  }

  /** Forgets an id, so that the next read listing it offers it again (a notice that could not be queued). */
  forget(part: string, id: string): void {
    this.byPart.get(part)?.delete(id);
  }
}
