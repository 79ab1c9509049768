import { randomBytes } from 'node:crypto';
import { MetadataFaults, scheduleChange, standInBase, startMetadataServer, type MetadataStandInBase, type MetadataAnswer, type MetadataRequest, type ScheduleOptions } from './metadata-server.js';

/** The instance an IMDS stand-in describes. */
export interface ImdsInstance {
  instanceId: string;
  instanceType: string;
  availabilityZone: string;
  region: string;
}

/** One entry of `events/maintenance/scheduled`, as IMDS writes it. */
export interface ImdsScheduledEvent {
  NotBefore: string;
  NotAfter?: string;
  Code: string;
  Description: string;
  EventId: string;
  State: 'active' | 'completed' | 'canceled';
}

/** Options of {@link startImdsStandIn}. */
export interface ImdsStandInOptions {
  instance?: Partial<ImdsInstance>;
  /** Milliseconds since the epoch, for token expiry. Default `Date.now`. */
  now?: () => number;
}

/** A running AWS Instance Metadata Service (IMDSv2 only) stand-in; its `url` is the base that `/latest/...` is under. */
export interface ImdsStandIn extends MetadataStandInBase {
  readonly instance: ImdsInstance;
  /** `spot/instance-action` answers `{"action","time"}` from now (or `inMs` from now). */
  interruptSpot(notice: { action?: 'terminate' | 'stop' | 'hibernate'; time: string }, options?: ScheduleOptions): void;
  /** `events/recommendations/rebalance` answers `{"noticeTime"}`. */
  recommendRebalance(noticeTime: string, options?: ScheduleOptions): void;
  /** Adds an event to `events/maintenance/scheduled`. */
  scheduleMaintenance(event: ImdsScheduledEvent, options?: ScheduleOptions): void;
  /** Sets `autoscaling/target-lifecycle-state` (404 until set, as for an instance outside Auto Scaling). */
  setTargetLifecycleState(state: 'InService' | 'Terminated' | 'Standby', options?: ScheduleOptions): void;
  /** Every token issued so far stops being valid, as at the end of its TTL. */
  expireTokens(): void;
  /** Tokens issued (PUT /latest/api/token answered 200). */
  readonly tokensIssued: number;
  /** From now on answers `GET /latest/meta-data/<path>` 200 with `body` as it is (a broken IMDS or proxy). */
  answerRaw(path: string, body: string): void;
}

const TOKEN_PATH = '/latest/api/token';
const TTL_HEADER = 'x-aws-ec2-metadata-token-ttl-seconds';
const TOKEN_HEADER = 'x-aws-ec2-metadata-token';
const MAX_TTL_SECONDS = 21_600;

const notFound: MetadataAnswer = { status: 404, body: '<?xml version="1.0" encoding="iso-8859-1"?>\n<title>404 - Not Found</title>' };
const found = (body: string, json = false): MetadataAnswer => ({ status: 200, body, headers: { 'content-type': json ? 'application/json' : 'text/plain' } });

/**
 * Starts an IMDSv2-only stand-in, faithful to the wire where the watcher depends on it:
 * `PUT /latest/api/token` needs `X-aws-ec2-metadata-token-ttl-seconds` (1 to 21600, else 400) and is
 * refused (403) when it carries `X-Forwarded-For`; every GET needs a valid, unexpired
 * `X-aws-ec2-metadata-token` (else 401); paths with nothing to say answer 404.
 */
export async function startImdsStandIn(options: ImdsStandInOptions = {}): Promise<ImdsStandIn> {
  const now = options.now ?? Date.now;
  const instance: ImdsInstance = { instanceId: 'i-0abc123def4567890', instanceType: 'm5.large', availabilityZone: 'us-east-1a', region: 'us-east-1', ...options.instance };
  const tokens = new Map<string, number>();
  const timers = new Set<NodeJS.Timeout>();
  const faults = new MetadataFaults();
  let spotAction: string | undefined;
  let rebalance: string | undefined;
  const maintenance: ImdsScheduledEvent[] = [];
  let lifecycleState: string | undefined;
  let tokensIssued = 0;
  const raw = new Map<string, string>();

  const issueToken = (req: MetadataRequest): MetadataAnswer => {
    if (req.headers['x-forwarded-for'] !== undefined) return { status: 403 };
    const ttl = Number(req.headers[TTL_HEADER]);
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TTL_SECONDS) return { status: 400 };
    const token = randomBytes(24).toString('base64');
    tokens.set(token, now() + ttl * 1_000);
    tokensIssued++;
    return { status: 200, body: token, headers: { [TTL_HEADER]: String(ttl) } };
  };

  const metadata = (path: string): MetadataAnswer => {
    const rawBody = raw.get(path);
    if (rawBody !== undefined) return found(rawBody, true);
    switch (path) {
      case 'instance-id':
        return found(instance.instanceId);
      case 'instance-type':
        return found(instance.instanceType);
      case 'placement/availability-zone':
        return found(instance.availabilityZone);
      case 'placement/region':
        return found(instance.region);
      case 'spot/instance-action':
        return spotAction === undefined ? notFound : found(spotAction, true);
      case 'events/recommendations/rebalance':
        return rebalance === undefined ? notFound : found(rebalance, true);
      case 'events/maintenance/scheduled':
        return found(JSON.stringify(maintenance), true);
      case 'autoscaling/target-lifecycle-state':
        return lifecycleState === undefined ? notFound : found(lifecycleState);
      default:
        return notFound;
    }
  };

  const server = await startMetadataServer((req) => {
    if (req.path === TOKEN_PATH) return req.method === 'PUT' ? issueToken(req) : { status: 405 };
    if (req.method !== 'GET') return { status: 405 };
    const token = req.headers[TOKEN_HEADER];
    const expires = typeof token === 'string' ? tokens.get(token) : undefined;
    if (expires === undefined || expires <= now()) return { status: 401 };
    const prefix = '/latest/meta-data/';
    return req.path.startsWith(prefix) ? metadata(req.path.slice(prefix.length)) : notFound;
  }, faults);

  return {
    ...standInBase(server, faults, timers),
    instance,
    interruptSpot: (notice, o) => scheduleChange(timers, o?.inMs, () => (spotAction = JSON.stringify({ action: notice.action ?? 'terminate', time: notice.time }))),
    recommendRebalance: (noticeTime, o) => scheduleChange(timers, o?.inMs, () => (rebalance = JSON.stringify({ noticeTime }))),
    scheduleMaintenance: (event, o) => scheduleChange(timers, o?.inMs, () => maintenance.push(event)),
    setTargetLifecycleState: (state, o) => scheduleChange(timers, o?.inMs, () => (lifecycleState = state)),
    expireTokens: () => tokens.clear(),
    answerRaw: (path, body) => void raw.set(path, body),
    get tokensIssued() {
      return tokensIssued;
    },
  };
}
