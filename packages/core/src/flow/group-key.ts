import type { CloudEvent } from '@hollowtrees/grpcplugin';
import { readEventField } from './event-fields.js';

/**
 * Builds a group key: the flow name plus the values of its `groupBy` keys,
 * written like Alertmanager's (`spot:{instance_id="i-1"}`). When none of the
 * keys is present the event id stands in, so unrelated events never share a group.
 */
export function compileGroupKey(flow: string, groupBy: readonly string[]): (event: CloudEvent) => string {
  return (event) => {
    const values = groupBy.map((key) => readEventField(event, key));
    if (values.every((v) => v === undefined)) return `${flow}:{id=${JSON.stringify(event.id)}}`;
    return `${flow}:{${groupBy.map((key, i) => `${key}=${JSON.stringify(values[i] ?? '')}`).join(',')}}`;
  };
}
