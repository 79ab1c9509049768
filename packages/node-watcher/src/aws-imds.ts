import type { Backoff, Clock } from '@hollowtrees/grpcplugin';
import { instanceIdBody, jsonBody, metadataRequest, MetadataError, okBody, type MetadataResponse } from './metadata-request.js';
import { PartialCheckError, settleParts, type Monitor, type MonitorSink } from './monitor.js';
import { noticeId, rfc3339, type InstanceIdentity, type Notice } from './notice.js';
import { pollLoop } from './poll-loop.js';

/** The IMDS address every EC2 instance reaches. */
export const AWS_METADATA_URL = 'http://169.254.169.254';

/** Options of {@link AwsImdsMonitor}. */
export interface AwsImdsOptions {
  /** Default {@link AWS_METADATA_URL}. */
  baseUrl?: string;
  /** Lifetime asked for each session token, 1 to 21600 s. Default 21600 (six hours, the longest). */
  tokenTtlSeconds?: number;
  pollIntervalMs: number;
  backoff: Backoff;
  clock: Clock;
}

/** What an IMDSv2 session token can be: visible ASCII (it is sent as a header value), as IMDS's base64 tokens are. */
const SESSION_TOKEN = /^[\x21-\x7e]+$/;

/**
 * IMDSv2 session: a token from `PUT /latest/api/token`, renewed at 80 % of its life and again on a
 * 401. Requests made at once share one token request, so a poll's parallel GETs ask for one token.
 */
class ImdsSession {
  private token: Promise<string> | undefined;
  private renewAt = 0;

  constructor(
    private readonly baseUrl: string,
    private readonly ttlSeconds: number,
    private readonly clock: Clock,
  ) {}

  /** The URL of `/latest/meta-data/<path>`: what is asked for, and what a message about its answer names. */
  url(path: string): string {
    return `${this.baseUrl}/latest/meta-data/${path}`;
  }

  /** GETs `/latest/meta-data/<path>`; a 401 (the token expired early, or IMDS restarted) gets one more try with a new token. */
  async get(path: string, signal: AbortSignal): Promise<MetadataResponse> {
    const url = this.url(path);
    const used = this.current(signal);
    const first = await metadataRequest(url, { headers: { 'x-aws-ec2-metadata-token': await used }, signal });
    if (first.status !== 401) return first;
    // Only the first GET to see the 401 drops the token; the others take the one it asked for.
    if (this.token === used) this.token = undefined;
    return metadataRequest(url, { headers: { 'x-aws-ec2-metadata-token': await this.current(signal) }, signal });
  }

  private current(signal: AbortSignal): Promise<string> {
    if (this.token !== undefined && this.clock.now() < this.renewAt) return this.token;
    const issuedAt = this.clock.now();
    this.renewAt = issuedAt + this.ttlSeconds * 800;
    const token = this.issue(signal);
    this.token = token;
    // A failed token request is not kept: the next GET asks again.
    token.catch(() => {
      if (this.token === token) this.token = undefined;
    });
    return token;
  }

  private async issue(signal: AbortSignal): Promise<string> {
    const url = `${this.baseUrl}/latest/api/token`;
    const res = await metadataRequest(url, { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': String(this.ttlSeconds) }, signal });
    if (res.status !== 200 || res.body === '') throw new MetadataError(`PUT ${url}: HTTP ${res.status} (IMDSv2 session token refused)`, res.status);
    // A page (a broken proxy's) is no header value: kept, it would fail every GET, without the 401 that drops a token, until renewed hours later.
    if (!SESSION_TOKEN.test(res.body)) throw new MetadataError(`PUT ${url}: HTTP 200, and the answer is no session token: ${res.body.slice(0, 200)}`);
    return res.body;
  }
}

interface ScheduledEvent {
  EventId?: string;
  Code?: string;
  State?: string;
  NotBefore?: string;
}

/** The path whose polls are counted: the spot interruption, the notice with the least time. */
const SPOT_ACTION_PATH = 'spot/instance-action';

/** The paths polled for notices, each with what its answer (not a 404) means; `url` is where it came from, for messages. */
const NOTICE_PATHS: Readonly<Record<string, (body: string, instanceId: string, url: string) => Notice[]>> = {
  [SPOT_ACTION_PATH]: (body, id, url) => {
    const detail = jsonBody<{ action?: string; time?: string }>(url, body, 'object');
    const at = rfc3339(detail.time);
    return [{ kind: 'spot-interruption', id: noticeId(id, 'spot-interruption', detail.action ?? '', detail.time ?? ''), ...(at !== undefined && { terminationTime: at }), labels: { instance_action: detail.action ?? '' }, detail }];
  },
  'events/recommendations/rebalance': (body, id, url) => {
    const detail = jsonBody<{ noticeTime?: string }>(url, body, 'object');
    return [{ kind: 'rebalance-recommendation', id: noticeId(id, 'rebalance-recommendation', detail.noticeTime ?? ''), detail }];
  },
  'events/maintenance/scheduled': (body, _id, url) =>
    jsonBody<Array<ScheduledEvent | null>>(url, body, 'array').flatMap((event) => {
      // An entry that is no object (a broken IMDS or proxy) is no notice, and must not hide the active ones beside it.
      if (typeof event !== 'object' || event?.State !== 'active' || !event.EventId) return [];
      const at = rfc3339(event.NotBefore);
      return [{ kind: 'scheduled-maintenance', id: event.EventId, ...(at !== undefined && { terminationTime: at }), labels: { maintenance_code: event.Code ?? '' }, detail: event }];
    }),
  'autoscaling/target-lifecycle-state': (body, id) => (body.trim() === 'Terminated' ? [{ kind: 'autoscaling-termination', id: noticeId(id, 'autoscaling-termination'), detail: { targetLifecycleState: 'Terminated' } }] : []),
};

/**
 * AWS, IMDSv2 only (the watcher never falls back to IMDSv1): polls the spot instance action,
 * the rebalance recommendation, scheduled maintenance and the Auto Scaling target lifecycle state.
 */
export class AwsImdsMonitor implements Monitor {
  readonly cloud = 'aws';
  private readonly session: ImdsSession;

  constructor(private readonly options: AwsImdsOptions) {
    this.session = new ImdsSession(options.baseUrl ?? AWS_METADATA_URL, options.tokenTtlSeconds ?? 21_600, options.clock);
  }

  async identity(signal: AbortSignal): Promise<InstanceIdentity> {
    const [instanceId, instanceType, availabilityZone, region] = await Promise.all(
      ['instance-id', 'instance-type', 'placement/availability-zone', 'placement/region'].map(async (path) => okBody(this.session.url(path), await this.session.get(path, signal))),
    );
    return { instanceId: instanceIdBody(this.session.url('instance-id'), instanceId!, /^i-[0-9a-z]+$/), instanceType: instanceType!, availabilityZone: availabilityZone!, region: region! };
  }

  async check(identity: InstanceIdentity, signal: AbortSignal): Promise<Notice[]> {
    // Each path on its own: one that fails must not hide the notices the others show.
    const { notices, failed } = settleParts(await Promise.allSettled(Object.keys(NOTICE_PATHS).map((path) => this.read(path, identity, signal))));
    if (failed) throw new PartialCheckError(failed, notices);
    return notices;
  }

  /** The notices one path shows now. */
  private async read(path: string, identity: InstanceIdentity, signal: AbortSignal): Promise<Notice[]> {
    const res = await this.session.get(path, signal);
    const url = this.session.url(path);
    // 404: nothing pending (or, for the lifecycle state, no Auto Scaling group).
    return res.status === 404 ? [] : NOTICE_PATHS[path]!(okBody(url, res), identity.instanceId, url);
  }

  /**
   * Polls each path in a loop of its own, every `pollIntervalMs`: one that fails (throttled, broken,
   * garbled) or answers late (a stalled proxy, up to a request's 5 s) neither hides the notices the
   * others show nor holds back their polling, least of all a spot interruption's two minutes; it
   * backs off on its own. A poll is counted per round of the spot instance action's loop.
   */
  async watch(identity: InstanceIdentity, sink: MonitorSink, signal: AbortSignal): Promise<void> {
    const { pollIntervalMs: intervalMs, backoff, clock } = this.options;
    await Promise.all(
      Object.keys(NOTICE_PATHS).map((path) =>
        pollLoop({
          round: async (s) => {
            if (path === SPOT_ACTION_PATH) sink.polled();
            sink.notices(path, await this.read(path, identity, s));
          },
          onError: (err) => sink.metadataError(err),
          intervalMs,
          backoff,
          clock,
          signal,
        }),
      ),
    );
  }
}
