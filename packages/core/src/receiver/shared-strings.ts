import type { CloudEvent } from '@hollowtrees/grpcplugin';
import { isObject } from '../json-object.js';

/** Field names whose last value a {@link SharedStrings} remembers: an alert's labels, annotations and fields, and more. */
export const SHARED_STRINGS_FIELDS = 256;

/** Longer values, and values of fields with longer names, are not remembered: rarely repeated, and kept after their events are gone. */
export const SHARED_STRING_MAX_LENGTH = 256;

/**
 * Gives events the same copy of a string value the event before them had in the same
 * field. A parsed body's events each hold their own copy of every string (`JSON.parse`
 * makes a new one per value), though most of them, the alert name, the cluster, the
 * zone, the status, the times, the source, are the same for a whole batch. An event
 * waits in its flow's queue long enough to outlive two young-generation collections,
 * and each copies every object it holds: with these strings shared, a queued alert
 * holds about 380 of its 1,670 bytes fewer (bench/README.md). Only the last value of
 * each field name is kept, so a value seen once (an instance id) replaces it instead of
 * growing a table, and an equal value costs one comparison, not a hash.
 */
export class SharedStrings {
  private readonly last = new Map<string, string>();

  constructor(
    private readonly fields = SHARED_STRINGS_FIELDS,
    private readonly maxLength = SHARED_STRING_MAX_LENGTH,
  ) {}

  /** The copy of `value` this field had last, when equal; otherwise `value`, remembered for the field. */
  share(field: string, value: string): string {
    const last = this.last.get(field);
    if (last === value) return last;
    // The field name is kept as the map's key: a CloudEvent's data takes keys as long as its body.
    if (value.length <= this.maxLength && field.length <= this.maxLength && (last !== undefined || this.last.size < this.fields)) this.last.set(field, value);
    return value;
  }

  /**
   * Replaces, in place, the string attributes of a freshly parsed `event` and the string
   * values of its `data`, `data.labels` and `data.annotations` with shared copies. Equal
   * strings: nothing a reader can see changes.
   */
  shareEvent(event: CloudEvent): void {
    this.shareValues(event as unknown as Record<string, unknown>);
    const { data } = event;
    // Binary data holds no strings, and reading it key by key would walk every byte.
    if (!isObject(data) || data instanceof Uint8Array) return;
    this.shareValues(data);
    if (isObject(data.labels)) this.shareValues(data.labels);
    if (isObject(data.annotations)) this.shareValues(data.annotations);
  }

  private shareValues(record: Record<string, unknown>): void {
    for (const key in record) {
      const value = record[key];
      if (typeof value === 'string') record[key] = this.share(key, value);
    }
  }
}
