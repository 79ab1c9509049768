import { hash } from 'node:crypto';
import type { CloudEvent } from '@hollowtrees/grpcplugin';
import { readEventField } from './event-fields.js';

/**
 * The longest group key kept as written. A key is kept with its run: in the journal, and twice in a
 * Kubernetes Lease's annotations, which the API server bounds at 256 KiB in all. Label values are bounded
 * by the receiver's `maxLabelLength`, but `groupBy` may also read an annotation or a CloudEvent's data.
 */
export const MAX_GROUP_KEY_CHARS = 8_192;

/**
 * Builds a group key: the flow name plus the values of its `groupBy` keys,
 * written like Alertmanager's (`spot:{instance_id="i-1"}`). When none of the
 * keys is present the event id stands in, so unrelated events never share a group.
 * A key longer than {@link MAX_GROUP_KEY_CHARS} is written as the SHA-256 of it
 * (`spot:{sha256="…"}`): the same values still make the same key, and any
 * backend can keep it.
 */
export function compileGroupKey(flow: string, groupBy: readonly string[]): (event: CloudEvent) => string {
  return (event) => {
    const values = groupBy.map((key) => readEventField(event, key));
    // Joined, not concatenated: `+` and template literals make a tree of string pieces, which every group
    // (its Map entry, its state) would hold as such, three pieces and three joints an alert; join() makes one string.
    const key = values.every((v) => v === undefined)
      ? [flow, ':{id=', JSON.stringify(event.id), '}'].join('')
      : [flow, ':{', groupBy.map((name, i) => [name, '=', JSON.stringify(values[i] ?? '')].join('')).join(','), '}'].join('');
    return key.length <= MAX_GROUP_KEY_CHARS ? key : `${flow}:{sha256="${hash('sha256', key)}"}`;
  };
}
