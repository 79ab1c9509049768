/**
 * A first-in, first-out queue of entries by id, where an entry can also be looked up and taken
 * out by its id, each in constant time: the ids are kept in a list in arrival order, the entries
 * in a map, and an id taken out of the middle is skipped when the list reaches it. Ids are numbers,
 * or bigints where they may pass 2^53.
 */
export class Backlog<T, Id extends number | bigint = number> {
  private readonly order: Id[] = [];
  private head = 0;
  private readonly entries = new Map<Id, T>();

  /** Entries waiting. */
  get size(): number {
    return this.entries.size;
  }

  /** Adds `entry` under `id`, after every entry waiting; `id` must not be waiting already. */
  push(id: Id, entry: T): void {
    this.entries.set(id, entry);
    this.order.push(id);
  }

  has(id: Id): boolean {
    return this.entries.has(id);
  }

  /** Takes the entry of `id` out; false when it was not waiting. */
  delete(id: Id): boolean {
    return this.entries.delete(id);
  }

  /** Takes out the entry that has waited longest. */
  shift(): { id: Id; entry: T } | undefined {
    while (this.head < this.order.length) {
      const id = this.order[this.head++]!;
      const entry = this.entries.get(id);
      if (entry === undefined) continue;
      this.entries.delete(id);
      this.compact();
      return { id, entry };
    }
    return undefined;
  }

  clear(): void {
    this.entries.clear();
    this.order.length = 0;
    this.head = 0;
  }

  /** Drops the ids already passed once they are half the list, so it does not grow for ever. */
  private compact(): void {
    if (this.head === this.order.length) this.clear();
    else if (this.head > 1_024 && this.head * 2 > this.order.length) {
      this.order.splice(0, this.head);
      this.head = 0;
    }
  }
}
