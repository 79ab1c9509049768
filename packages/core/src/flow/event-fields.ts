import type { CloudEvent } from '@hollowtrees/grpcplugin';

const ATTRIBUTES = new Set(['id', 'source', 'specversion', 'type', 'time', 'subject', 'datacontenttype', 'dataschema']);

/**
 * Reads a key of a flow's `filters` or `groupBy`: a CloudEvent attribute
 * (`type`, `source`, ...), a dotted path into `data` (`annotations.summary`), or
 * else a label (`instance_id`). Returns undefined when absent or not a scalar.
 */
export function readEventField(event: CloudEvent, key: string): string | undefined {
  if (ATTRIBUTES.has(key)) {
    const value = event[key as keyof CloudEvent];
    return typeof value === 'string' ? value : undefined;
  }
  let node: unknown = event.data;
  const path = key.includes('.') ? key.split('.') : ['labels', key];
  for (const part of path) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return typeof node === 'string' ? node : typeof node === 'number' || typeof node === 'boolean' ? String(node) : undefined;
}
