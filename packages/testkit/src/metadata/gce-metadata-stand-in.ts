import { createHash } from 'node:crypto';
import { MetadataFaults, scheduleChange, standInBase, startMetadataServer, type MetadataStandInBase, type MetadataAnswer, type ScheduleOptions } from './metadata-server.js';

/** The instance a Google Compute Engine metadata stand-in describes. */
export interface GceInstance {
  /** Numeric instance id, as a string. */
  id: string;
  name: string;
  /** `projects/<number>/zones/<zone>`. */
  zone: string;
  /** `projects/<number>/machineTypes/<type>`. */
  machineType: string;
}

/** The values `instance/maintenance-event` takes. */
export type GceMaintenanceEvent = 'NONE' | 'MIGRATE_ON_HOST_MAINTENANCE' | 'TERMINATE_ON_HOST_MAINTENANCE';

/** Options of {@link startGceMetadataStandIn}. */
export interface GceMetadataStandInOptions {
  instance?: Partial<GceInstance>;
  /** Answer without an `ETag`, as a proxy that strips it would. */
  withoutEtag?: boolean;
}

/** A running Compute Engine metadata server stand-in; its `url` is the base that `/computeMetadata/v1/...` is under. */
export interface GceMetadataStandIn extends MetadataStandInBase {
  readonly instance: GceInstance;
  /** `instance/preempted` turns `TRUE`. */
  preempt(options?: ScheduleOptions): void;
  /** Sets `instance/maintenance-event`. */
  setMaintenanceEvent(value: GceMaintenanceEvent, options?: ScheduleOptions): void;
  /** Hanging GETs waiting now. */
  readonly waiting: number;
}

const PREFIX = '/computeMetadata/v1/instance/';
const etagOf = (value: string): string => createHash('sha256').update(value).digest('hex').slice(0, 16);

/**
 * Starts a Compute Engine metadata stand-in, faithful where the watcher depends on it: every
 * request needs `Metadata-Flavor: Google` (else 403) and is refused when it carries
 * `X-Forwarded-For`; answers carry `Metadata-Flavor: Google` and an `ETag`;
 * `?wait_for_change=true` hangs until the value changes, answering at once when `last_etag` is
 * not the current one, and with the unchanged value after `timeout_sec`.
 */
export async function startGceMetadataStandIn(options: GceMetadataStandInOptions = {}): Promise<GceMetadataStandIn> {
  const instance: GceInstance = {
    id: '4567890123456789012',
    name: 'gke-pool-1-abcd',
    zone: 'projects/123456789012/zones/europe-west1-b',
    machineType: 'projects/123456789012/machineTypes/e2-standard-4',
    ...options.instance,
  };
  const values = new Map<string, string>([
    ['id', instance.id],
    ['name', instance.name],
    ['zone', instance.zone],
    ['machine-type', instance.machineType],
    ['preempted', 'FALSE'],
    ['maintenance-event', 'NONE'],
  ]);
  const waiters = new Set<{ key: string; wake: () => void }>();
  const timers = new Set<NodeJS.Timeout>();
  const faults = new MetadataFaults();

  const set = (key: string, value: string): void => {
    if (values.get(key) === value) return;
    values.set(key, value);
    for (const w of [...waiters]) if (w.key === key) w.wake();
  };
  const current = (key: string): MetadataAnswer => {
    const value = values.get(key)!;
    return { status: 200, body: value, headers: { 'metadata-flavor': 'Google', ...(options.withoutEtag ? {} : { etag: etagOf(value) }), 'content-type': 'application/text' } };
  };
  const change = (key: string, timeoutSec: number, signal: AbortSignal): Promise<MetadataAnswer> =>
    new Promise((resolve) => {
      const waiter = { key, wake: () => done() };
      const timer = setTimeout(() => done(), timeoutSec * 1_000);
      const done = (): void => {
        clearTimeout(timer);
        waiters.delete(waiter);
        resolve(current(key));
      };
      waiters.add(waiter);
      signal.addEventListener('abort', done, { once: true });
    });

  const server = await startMetadataServer((req) => {
    if (req.headers['metadata-flavor'] !== 'Google' || req.headers['x-forwarded-for'] !== undefined) return { status: 403, body: 'Missing required header: "Metadata-Flavor"' };
    if (req.method !== 'GET') return { status: 405 };
    const key = req.path.startsWith(PREFIX) ? req.path.slice(PREFIX.length) : undefined;
    if (key === undefined || !values.has(key)) return { status: 404, body: 'Not Found' };
    if (req.query.get('wait_for_change') !== 'true') return current(key);
    const lastEtag = req.query.get('last_etag');
    if (lastEtag !== null && lastEtag !== etagOf(values.get(key)!)) return current(key);
    const timeoutSec = Number(req.query.get('timeout_sec') ?? '3600');
    if (!Number.isFinite(timeoutSec) || timeoutSec <= 0) return { status: 400, body: 'timeout_sec must be a positive number' };
    return change(key, timeoutSec, req.signal);
  }, faults);

  return {
    ...standInBase(server, faults, timers),
    instance,
    preempt: (o) => scheduleChange(timers, o?.inMs, () => set('preempted', 'TRUE')),
    setMaintenanceEvent: (value, o) => scheduleChange(timers, o?.inMs, () => set('maintenance-event', value)),
    get waiting() {
      return waiters.size;
    },
  };
}
