import { steadyClock } from '@hollowtrees/grpcplugin';

/**
 * A map whose entries expire `ttlMs` after they were set (by `now`, default the steady clock, which a step of the wall clock does not move). Entries are kept in
 * the order they were set, so expired ones are dropped from the front on every
 * write and the map stays the size of what the last `ttlMs` brought.
 */
export class ExpiringMap<K, V> {
  private readonly entries = new Map<K, { value: V; at: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = () => steadyClock.now(),
  ) {}

  get(key: K): V | undefined {
    const entry = this.entries.get(key);
    return entry && this.now() - entry.at < this.ttlMs ? entry.value : undefined;
  }

  set(key: K, value: V): void {
    const now = this.now();
    for (const [k, entry] of this.entries) {
      if (now - entry.at < this.ttlMs) break;
      this.entries.delete(k);
    }
    this.entries.delete(key);
    this.entries.set(key, { value, at: now });
  }
}
