/** Bytes counted for every value besides its characters: V8's object, number and pointer overhead, roughly. */
const VALUE_OVERHEAD = 16;

/**
 * Approximately how many bytes an event holds in memory: its strings' lengths
 * plus a fixed overhead per value. Cheap (one walk, no serialisation), and close
 * enough to bound what queued runs hold by bytes rather than by count, so a
 * flood of half-megabyte alerts cannot exhaust the heap before a count limit.
 */
export function approximateBytes(value: unknown): number {
  if (typeof value === 'string') return VALUE_OVERHEAD + value.length;
  if (typeof value !== 'object' || value === null) return VALUE_OVERHEAD;
  if (value instanceof Uint8Array) return VALUE_OVERHEAD + value.byteLength;
  let bytes = VALUE_OVERHEAD;
  if (Array.isArray(value)) {
    for (const item of value) bytes += approximateBytes(item);
    return bytes;
  }
  for (const key in value) bytes += key.length + approximateBytes((value as Record<string, unknown>)[key]);
  return bytes;
}
