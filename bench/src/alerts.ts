/** Alert bodies for `POST /api/v2/alerts` (Alertmanager's `postableAlert`), the same bytes for both targets. */

/** The alertname the bench's flows take. */
export const BENCH_ALERTNAME = 'SpotInstanceTerminating';

const STARTS_AT = new Date().toISOString();
const ENDS_AT = new Date(Date.now() + 6 * 3600_000).toISOString();

/**
 * One alert, about instance `instanceId` (its group key): about 430 bytes of JSON, its keys in the
 * order Prometheus 2.42 sends them (`shared/fixtures`: Go sorts a label set, and writes the fields
 * of a postable alert in this order), so the receiver reads what it reads in production.
 */
export function alertJson(instanceId: string): string {
  return (
    `{"annotations":{"summary":"spot instance ${instanceId} will be reclaimed"},"endsAt":"${ENDS_AT}","startsAt":"${STARTS_AT}",` +
    `"generatorURL":"http://prometheus:9090/graph","labels":{"alertname":"${BENCH_ALERTNAME}","availability_zone":"eu-west-1a",` +
    `"cluster_name":"bench","instance_action":"terminate","instance_id":"${instanceId}","instance_type":"m5.large","node":"ip-10-0-${instanceId}.ec2.internal"}}`
  );
}

/** A JSON array of `count` alerts for instances `${prefix}${first}` .. `${prefix}${first + count - 1}`. */
export function alertsBody(prefix: string, first: number, count: number): string {
  const parts = new Array<string>(count);
  for (let i = 0; i < count; i++) parts[i] = alertJson(`${prefix}${first + i}`);
  return `[${parts.join(',')}]`;
}

/** `count` alerts as bodies of at most `batch` alerts each, as Prometheus sends a wave: instances `${prefix}0` onwards. */
export function alertBatches(prefix: string, count: number, batch: number): string[] {
  return Array.from({ length: Math.ceil(count / batch) }, (_, i) => alertsBody(prefix, i * batch, Math.min(batch, count - i * batch)));
}
