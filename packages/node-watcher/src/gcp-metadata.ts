import { wallTimeOf, type Backoff, type Clock } from '@hollowtrees/grpcplugin/without-grpc';
import { instanceIdBody, metadataRequest, MetadataError, okBody } from './metadata-request.js';
import { PartialCheckError, settleParts, type Monitor, type MonitorSink } from './monitor.js';
import { OccurrenceFile, type OccurrenceState } from './occurrence-file.js';
import { noticeId, type InstanceIdentity, type Notice } from './notice.js';
import { pollLoop } from './poll-loop.js';

/** The metadata server's name on every Compute Engine instance. */
export const GCP_METADATA_URL = 'http://metadata.google.internal';

/**
 * Shortest time between two GETs of one value, unless the first came back changed or with an ETag
 * the next can hang on: a server (or a proxy in between) that answers a hanging GET at once, or
 * sends no ETag, must not turn the watch into a busy loop.
 */
const MIN_ROUND_MS = 1_000;

/** Warning Compute Engine gives a preempted (spot) VM before it stops it. */
const PREEMPTION_NOTICE_MS = 30_000;

/** Options of {@link GcpMetadataMonitor}. */
export interface GcpMetadataOptions {
  /** Default {@link GCP_METADATA_URL}. */
  baseUrl?: string;
  /** How long one hanging GET waits on the server before it answers unchanged. Default 60 s. */
  hangSeconds?: number;
  backoff: Backoff;
  clock: Clock;
  /**
   * The running kernel's boot id (see `readBootId`), part of every notice id: a preemption or a host
   * maintenance that terminates the VM ends its boot, so one seen in a later boot is a new one, even
   * by a watcher that never saw the first. Undefined (not Linux): ids name the instance alone, and
   * such a notice within its group's cooldown is taken for the first one.
   */
  bootId?: string;
  /**
   * A file where each watched value's occurrences are kept, so that a watcher restarted in the same
   * boot during a maintenance that came back (the VM was not stopped for the first) still sends
   * that occurrence's id. Undefined: kept in memory, and such a restart sends the first one's id.
   */
  stateFile?: string;
}

/**
 * What a watched value is: Compute Engine writes upper-case words (`TRUE`, `NONE`,
 * `TERMINATE_ON_HOST_MAINTENANCE`). Anything else (a proxy's page, an empty answer) is no reading of
 * the value: taken for one, it would end a notice that stands, and its return would be sent again
 * as a new maintenance.
 */
const WATCHED_VALUE = /^[A-Z][A-Z_]*$/;

/** Who reads a watched value: the instance, and the boot of it (see {@link GcpMetadataOptions.bootId}). */
interface Reader {
  readonly identity: InstanceIdentity;
  readonly bootId: string | undefined;
}

/** The id of a notice of `reader`'s instance: its parts, and the boot when it is known. */
const readerNoticeId = (reader: Reader, ...parts: string[]): string => noticeId(reader.identity.instanceId, ...parts, ...(reader.bootId === undefined ? [] : [reader.bootId]));

/** The two values watched, and the notice each value that matters becomes. */
const WATCHED: Readonly<Record<string, (value: string, reader: Reader, now: number) => Notice | undefined>> = {
  preempted: (value, reader, now) =>
    value === 'TRUE' ? { kind: 'preemption', id: readerNoticeId(reader, 'preemption'), terminationTime: new Date(now + PREEMPTION_NOTICE_MS).toISOString(), detail: { preempted: value } } : undefined,
  'maintenance-event': (value, reader) =>
    value === 'TERMINATE_ON_HOST_MAINTENANCE' ? { kind: 'host-maintenance', id: readerNoticeId(reader, 'host-maintenance', value), detail: { maintenanceEvent: value } } : undefined,
};

/**
 * Ids for the occurrences of one watched value's notice. A value has no id of its own: the first
 * occurrence this watcher sees keeps the stable id, which names the boot (a watcher restarted in
 * the same boot sends it again under the same id, which core deduplicates while its group cools
 * down; one in the next boot, after the VM was stopped, sends a new id); one that comes back after a
 * read showed it gone without the VM stopping is a new occurrence, and its id names when it came
 * back, so that core runs it instead of taking it for a re-send of the first.
 */
class Occurrences {
  private state: OccurrenceState;

  /** Starts from `saved` (what a watcher before a restart saw in this boot), and tells `save` of each change. */
  constructor(
    saved: OccurrenceState | undefined,
    private readonly save: (state: OccurrenceState) => void,
  ) {
    this.state = saved ?? { present: false, seen: 0 };
  }

  /** The notice a successful read found (undefined: none), with the id of its occurrence. */
  of(found: Notice | undefined, now: number): Notice | undefined {
    const { present, seen, returnedAt } = this.state;
    if (!found) {
      if (present) this.change({ present: false, seen, ...(returnedAt !== undefined && { returnedAt }) });
      return undefined;
    }
    if (!present) this.change(seen === 0 ? { present: true, seen: 1 } : { present: true, seen: seen + 1, returnedAt: new Date(now).toISOString() });
    const at = this.state.returnedAt;
    return at === undefined ? found : { ...found, id: noticeId(found.id, at) };
  }

  private change(state: OccurrenceState): void {
    this.state = state;
    this.save(state);
  }
}

/** The last path segment of `projects/123/zones/europe-west1-b`. */
const lastSegment = (path: string): string => path.slice(path.lastIndexOf('/') + 1);

/**
 * Google Cloud: hanging GETs (`wait_for_change=true` with the last ETag) on `instance/preempted` and
 * `instance/maintenance-event`, each re-armed after every answer and, after a backoff, after every error.
 */
export class GcpMetadataMonitor implements Monitor {
  readonly cloud = 'gcp';

  constructor(private readonly options: GcpMetadataOptions) {}

  private reader(identity: InstanceIdentity): Reader {
    return { identity, bootId: this.options.bootId };
  }

  private url(key: string): string {
    return `${this.options.baseUrl ?? GCP_METADATA_URL}/computeMetadata/v1/instance/${key}`;
  }

  private async read(key: string, signal: AbortSignal, lastEtag?: string): Promise<{ value: string; etag: string | undefined }> {
    const hang = this.options.hangSeconds ?? 60;
    const url = lastEtag === undefined ? this.url(key) : `${this.url(key)}?wait_for_change=true&last_etag=${encodeURIComponent(lastEtag)}&timeout_sec=${hang}`;
    const res = await metadataRequest(url, { headers: { 'metadata-flavor': 'Google' }, signal, timeoutMs: hang * 1_000 + 5_000 });
    return { value: okBody(url, res).trim(), etag: res.headers.get('etag') ?? undefined };
  }

  /** Reads a watched value (see {@link read}); one that is no value of the key is a {@link MetadataError}. */
  private async readWatched(key: string, signal: AbortSignal, lastEtag?: string): Promise<{ value: string; etag: string | undefined }> {
    const answer = await this.read(key, signal, lastEtag);
    if (!WATCHED_VALUE.test(answer.value)) throw new MetadataError(`GET ${this.url(key)}: HTTP 200, and the answer is no value of ${key}: "${answer.value.slice(0, 200)}"`);
    return answer;
  }

  async identity(signal: AbortSignal): Promise<InstanceIdentity> {
    const [id, zone, machineType, name] = await Promise.all(['id', 'zone', 'machine-type', 'name'].map(async (key) => (await this.read(key, signal)).value));
    const availabilityZone = lastSegment(zone!);
    return { instanceId: instanceIdBody(this.url('id'), id!, /^\d+$/), instanceType: lastSegment(machineType!), availabilityZone, region: availabilityZone.replace(/-[a-z]$/, ''), extraLabels: { instance_name: name! } };
  }

  async check(identity: InstanceIdentity, signal: AbortSignal): Promise<Notice[]> {
    // Each value on its own: one that cannot be read must not hide a notice the other shows.
    const results = await Promise.allSettled(
      Object.entries(WATCHED).map(async ([key, notice]) => {
        const found = notice((await this.readWatched(key, signal)).value, this.reader(identity), wallTimeOf(this.options.clock, this.options.clock.now()));
        return found ? [found] : [];
      }),
    );
    const { notices, failed } = settleParts(results);
    if (failed) throw new PartialCheckError(failed, notices);
    return notices;
  }

  async watch(identity: InstanceIdentity, sink: MonitorSink, signal: AbortSignal): Promise<void> {
    const reader = this.reader(identity);
    const { stateFile, bootId } = this.options;
    const file = stateFile === undefined ? undefined : new OccurrenceFile(stateFile, `${identity.instanceId} ${bootId ?? ''}`, (err) => sink.stateFileError(err));
    await Promise.all(
      Object.entries(WATCHED).map(([key, notice]) => {
        // The first GET reads the value now (a notice already there counts); each later one hangs until it changes.
        let etag: string | undefined;
        const occurrences = new Occurrences(file?.state(key), (state) => file?.save(key, state));
        return pollLoop({
          round: async (s) => {
            const { clock } = this.options;
            const startedAt = clock.now();
            const answer = await this.readWatched(key, s, etag);
            const unchanged = etag !== undefined && answer.etag === etag;
            etag = answer.etag;
            sink.polled();
            // On the wall clock: a notice's termination time and a return's time leave the process (core, the state file).
            const now = wallTimeOf(clock, clock.now());
            const found = occurrences.of(notice(answer.value, reader, now), now);
            sink.notices(key, found ? [found] : []);
            // Without an ETag the next GET cannot hang either. Paced after the notice is out: never delay one.
            // At most the minimum: a wall clock stepped back meanwhile (NTP) makes the time taken negative, and the wait its step.
            const early = Math.min(MIN_ROUND_MS, MIN_ROUND_MS - (clock.now() - startedAt));
            if ((unchanged || etag === undefined) && early > 0) await clock.sleep(early, s);
          },
          onError: (err) => sink.metadataError(err),
          intervalMs: 0,
          backoff: this.options.backoff,
          clock: this.options.clock,
          signal,
        });
      }),
    );
  }
}
