import { readFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { readBounded } from './bounded-body.js';

/** The receiver path of CloudEvents, as core serves it. */
export const CORE_EVENTS_PATH = '/api/v1/events';
/** Core's status API of finished runs. */
const CORE_RUNS_PATH = '/api/v1/status/runs';
/** Core's status API of groups: runs in progress, waiting for a retry or cooling down. */
const CORE_GROUPS_PATH = '/api/v1/status/groups';

/** What the watcher reads of one run in core's status API. */
export interface FinishedRunView {
  readonly flow: string;
  readonly eventId: string;
  /** `succeeded`, `failed`, `retrying` or `interrupted`. */
  readonly outcome: string;
  /** Why it failed, when it did. */
  readonly error?: string;
  /** When the run ended (RFC 3339, core's clock). */
  readonly finishedAt?: string;
}

/** What the watcher reads of one group in core's status API. */
export interface GroupView {
  readonly flow: string;
  /** The event whose run holds the group. */
  readonly eventId: string;
  /** `running`, `retrying` or `cooling`. */
  readonly phase: string;
  /** When the run started (running, retrying) or succeeded (cooling): RFC 3339, core's clock. */
  readonly since?: string;
}

/** How the watcher proves itself to core: a file is read at every send, so a rotated secret is picked up. */
export type CoreAuth = { readonly kind: 'bearer'; readonly tokenFile: string } | { readonly kind: 'basic'; readonly file: string };

/** Options of {@link CoreClient}. */
export interface CoreClientOptions {
  /** Core's base URL, e.g. `https://hollowtrees.hollowtrees.svc:9092`; a path in it (an ingress prefix) is kept. */
  coreUrl: string;
  auth?: CoreAuth;
  /** CA certificate(s) (PEM) core's certificate is checked against, instead of the system's (Node's `ca` replaces them). */
  ca?: Buffer;
  /** Per request, from its start to the answer's last byte (a core or proxy that trickles its answer is cut off too). Default 10 s. */
  timeoutMs?: number;
  /** Longest answer read; a longer one fails the request. Default 8 MiB, far above core's 10,000 groups. */
  maxAnswerBytes?: number;
  /** Most groups {@link CoreClient.groupsOf} reads from core: all of a busy core's would not fit the watcher's memory. Default 10 000. */
  maxGroupsRead?: number;
}

/** Core's answer to one POST. */
export interface CoreAnswer {
  readonly status: number;
  /** Core's `errorType` (`queue_full`, `shutting_down`, `bad_data`, ...), when it sent one. */
  readonly reason?: string;
  readonly message?: string;
  /** `Retry-After` (delay-seconds or an HTTP-date), in milliseconds from now. */
  readonly retryAfterMs?: number;
  /** `Location`, when the answer is a redirect (not followed: it would take the event and its credentials elsewhere). */
  readonly location?: string;
}

function authorization(auth: CoreAuth): string {
  if (auth.kind === 'bearer') return `Bearer ${readFileSync(auth.tokenFile, 'utf8').trim()}`;
  // The file holds `user:password`, as Prometheus' basic_auth password_file holds the password.
  return `Basic ${Buffer.from(readFileSync(auth.file, 'utf8').trim()).toString('base64')}`;
}

/**
 * `path` under the base URL's own path: core may be served under a prefix (an ingress at
 * `https://ops.example/hollowtrees`), which `new URL('/api/...', base)` would drop.
 */
function under(base: string, path: string): URL {
  const url = new URL(base);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}${path}`;
  return url;
}

/**
 * Groups a first look at one event's reads: all of them, as a core that filters by event answers (one per flow the
 * event is in); from an older core, which does not, a few groups and the count of all.
 */
const FIRST_LOOK_GROUPS = 16;

/** `url` asking for one event's items (`?eventId=`), and at most `limit` of them when given. */
function ofEvent(url: URL, eventId: string, limit?: number): URL {
  const asked = new URL(url);
  asked.searchParams.set('eventId', eventId);
  if (limit !== undefined) asked.searchParams.set('limit', String(limit));
  return asked;
}

/** Core's `X-Total-Count`, when it sent one. */
function totalCount(headers: IncomingHttpHeaders): number | undefined {
  const count = Number(headers['x-total-count']);
  return headers['x-total-count'] !== undefined && Number.isInteger(count) && count >= 0 ? count : undefined;
}

/**
 * `Retry-After` in milliseconds: delay-seconds, as core sends it, or an HTTP-date, as a proxy or
 * load balancer in front of core may (a date already past is 0); undefined when absent or neither.
 */
function retryAfter(headers: IncomingHttpHeaders): number | undefined {
  const value = headers['retry-after'];
  if (value === undefined) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1_000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** Talks to core's receiver over HTTP or HTTPS on kept-alive connections: POSTs CloudEvents (structured mode), reads groups and finished runs. */
export class CoreClient {
  private readonly url: URL;
  private readonly runsUrl: URL;
  private readonly groupsUrl: URL;
  private readonly agent: HttpAgent;

  constructor(private readonly options: CoreClientOptions) {
    this.url = under(options.coreUrl, CORE_EVENTS_PATH);
    this.runsUrl = under(options.coreUrl, CORE_RUNS_PATH);
    this.groupsUrl = under(options.coreUrl, CORE_GROUPS_PATH);
    this.agent = this.url.protocol === 'https:' ? new HttpsAgent({ keepAlive: true, ...(options.ca && { ca: options.ca }) }) : new HttpAgent({ keepAlive: true });
  }

  /** Where events go. */
  get eventsUrl(): string {
    return this.url.href;
  }

  /** Sends one event; rejects only when there was no usable answer (refused, reset, timed out, too large, a secret file unreadable). */
  async post(event: object, signal: AbortSignal): Promise<CoreAnswer> {
    const { status, json, headers } = await this.request('POST', this.url, JSON.stringify(event), signal);
    const body = (json ?? {}) as { errorType?: unknown; error?: unknown };
    const after = retryAfter(headers);
    return {
      status,
      ...(typeof body.errorType === 'string' && { reason: body.errorType }),
      ...(typeof body.error === 'string' && { message: body.error }),
      ...(after !== undefined && { retryAfterMs: after }),
      ...(typeof headers.location === 'string' && { location: headers.location }),
    };
  }

  /**
   * The finished runs core still lists of one event, newest first (`GET /api/v1/status/runs?eventId=`, that event's
   * alone; a core older than the watcher ignores `eventId` and answers its last 100, looked through here).
   */
  async runsOf(eventId: string, signal: AbortSignal): Promise<FinishedRunView[]> {
    const { list } = await this.list<FinishedRunView>(ofEvent(this.runsUrl, eventId), signal);
    return list.filter((run) => run.eventId === eventId);
  }

  /**
   * The groups core holds under one event's id (`GET /api/v1/status/groups?eventId=`): core answers that event's
   * alone, with their count, in one read. A core older than the watcher ignores `eventId` and counts every group: they
   * are then all read, past its default limit, in a second read, or none (undefined) when it holds more than
   * `maxGroupsRead`, too many to look through.
   */
  async groupsOf(eventId: string, signal: AbortSignal): Promise<GroupView[] | undefined> {
    const max = this.options.maxGroupsRead ?? 10_000;
    const first = await this.list<GroupView>(ofEvent(this.groupsUrl, eventId, FIRST_LOOK_GROUPS), signal);
    const total = totalCount(first.headers);
    if (total !== undefined && total > max) return undefined;
    // A core that sends no count is read up to the bound, as one that holds more groups than a first look reads.
    const { list, headers } = total !== undefined && total <= first.list.length ? first : await this.list<GroupView>(ofEvent(this.groupsUrl, eventId, max), signal);
    // Groups started between the two reads count too.
    if ((totalCount(headers) ?? 0) > max) return undefined;
    return list.filter((group) => group.eventId === eventId);
  }

  /** GETs a JSON array of core's status API. */
  private async list<T>(url: URL, signal: AbortSignal): Promise<{ list: T[]; headers: IncomingHttpHeaders }> {
    const { status, json, headers } = await this.request('GET', url, undefined, signal);
    if (status !== 200 || !Array.isArray(json)) throw new Error(`GET ${url.href}: ${status === 200 ? 'not a JSON array' : `HTTP ${status}`}`);
    return { list: json as T[], headers };
  }

  private request(method: 'GET' | 'POST', url: URL, body: string | undefined, signal: AbortSignal): Promise<{ status: number; json: unknown; headers: IncomingHttpHeaders }> {
    const headers: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/cloudevents+json', 'content-length': String(Buffer.byteLength(body)) };
    if (this.options.auth) headers.authorization = authorization(this.options.auth);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const { timeoutMs = 10_000, maxAnswerBytes = 8 * 1024 * 1024 } = this.options;
    return new Promise((resolve, reject) => {
      // The first failure is the one told: destroying the request fails its answer too, more vaguely.
      const fail = (err: Error): void => {
        clearTimeout(deadline);
        reject(err);
        req.destroy(err);
      };
      const req = send(url, { method, headers, agent: this.agent, signal }, (res) => {
        const tooLarge = (): Error => new Error(`${method} ${url.href}: the answer is larger than ${maxAnswerBytes} bytes`);
        readBounded(res, res.headers['content-length'], maxAnswerBytes, tooLarge).then((raw) => {
          clearTimeout(deadline);
          let json: unknown;
          try {
            json = JSON.parse(raw.toString());
          } catch {
            // Not core's JSON (a proxy's page): the status is enough.
          }
          resolve({ status: res.statusCode ?? 0, json, headers: res.headers });
        }, fail);
      });
      // The whole request, not an idle socket: a byte a second would keep an idle timeout from ever firing.
      const deadline = setTimeout(() => fail(new Error(`${method} ${url.href}: no complete answer in ${timeoutMs} ms`)), timeoutMs);
      req.once('error', fail);
      req.once('close', () => clearTimeout(deadline));
      req.end(body);
    });
  }

  /** Closes the kept-alive connection. */
  close(): void {
    this.agent.destroy();
  }
}
