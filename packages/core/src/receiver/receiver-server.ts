import { createServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from 'pino';
import { settledFlowsOf, systemClock, wallAheadOf, type Clock, type TlsFiles, type TlsMaterial } from '@hollowtrees/grpcplugin/without-grpc';
import type { ReceiverLimits, ReceiverTimeouts } from '../config/schema.js';
import { PROBLEMS_LISTED, problemsText } from '../validation-issues.js';
import type { Drop, EventSink } from '../sources/event-sink.js';
import { UNAVAILABLE_BECAUSE, type StateBackend } from '../state/run-state-store.js';
import type { EventSource, SourceStatus } from '../sources/event-source.js';
import { SourceHealth } from '../sources/source-health.js';
import type { Authenticator } from './auth.js';
import { requireIdentityEncoding } from './content-encoding.js';
import { HttpError, type RejectReason } from './http-error.js';
import { INTAKES, type Intake } from './intake.js';
import { OffThreadParser } from './off-thread-parser.js';
import { readBody } from './read-body.js';
import type { ReceiverMetrics } from './receiver-metrics.js';
import { slicer } from './slices.js';
import { SharedStrings } from './shared-strings.js';

const shuttingDown = (): HttpError => new HttpError(503, 'shutting_down', 'shutting down; send to another replica or retry later', { connection: 'close' });
const stateUnavailable = (noun: Intake['noun'], backend: StateBackend): HttpError =>
  new HttpError(503, 'state_unavailable', `${UNAVAILABLE_BECAUSE[backend]}, so the ${noun} cannot be promised; retry later`, { 'retry-after': '5' });

/** The 503 for a batch some of whose alerts or events a matching flow had no room for. */
function notAllQueued(notTaken: number, total: number, noun: Intake['noun'], drop: Drop): HttpError {
  return new HttpError(503, drop.reason, `${notTaken} of ${total} ${noun} were not queued by every flow they match (flow "${drop.flow}": ${drop.detail ?? 'no room'}); retry later`, { 'retry-after': '1' });
}

/** The 503 for a batch that came while no flow had room for anything. */
function noRoomBeforeParsing(noun: Intake['noun'], why: string): HttpError {
  return new HttpError(503, 'queue_full', `no ${noun} can be queued now (${why}); retry later`, { 'retry-after': '1' });
}

/** The read-only JSON the status routes serve. */
export interface StatusProvider {
  flows(): unknown;
  /**
   * The first `limit` groups running or cooling down, and how many there are (a shared store's, once read from it);
   * given `events`, only the groups those events hold, and how many of them there are.
   */
  groups(limit: number, events?: ReadonlySet<string>): { groups: unknown[]; total: number } | Promise<{ groups: unknown[]; total: number }>;
  /** Finished runs, newest first: with a shared store, the other replicas' too (see `RunStateStore.sharedRuns`); given `events`, theirs only. */
  runs(events?: ReadonlySet<string>): unknown;
  /** Every source, this receiver among them. */
  sources(): unknown;
  /** Where run state is kept: the backend and, with a shared one, this replica's identity. */
  state(): unknown;
}

/** Groups listed by default: 100,000 cooling groups would be megabytes of JSON built on the event loop. */
const DEFAULT_GROUP_LIMIT = 1_000;

/** `?limit=`: absent or empty, the default; anything but a positive whole number is a 400, not silently the default. */
function groupLimit(query: URLSearchParams): number {
  const given = query.get('limit');
  if (given === null || given === '') return DEFAULT_GROUP_LIMIT;
  const asked = Number(given);
  if (/^\d+$/.test(given) && asked > 0) return asked;
  throw new HttpError(400, 'bad_request', `query parameter limit: expected a positive whole number, got ${JSON.stringify(given.slice(0, 100))}`);
}

/**
 * `?eventId=` (repeatable): the ids of the events a status read is about, so that a follower of one event (the node
 * watcher) reads its groups and runs, not every one of a wave's; absent, every event. An empty one is a 400.
 */
function eventFilter(query: URLSearchParams): ReadonlySet<string> | undefined {
  const given = query.getAll('eventId');
  if (given.length === 0) return undefined;
  if (given.includes('')) throw new HttpError(400, 'bad_request', 'query parameter eventId: expected an event id, got an empty one');
  return new Set(given);
}

export interface ReceiverOptions {
  /** Absent: every interface (Node's default: IPv6 and IPv4 where the machine has IPv6). */
  host?: string | undefined;
  port: number;
  limits: ReceiverLimits;
  /** Fixed at start: Node checks them on a timer set up with the server. */
  timeouts: ReceiverTimeouts;
  status: StatusProvider;
  metrics: ReceiverMetrics;
  logger: Logger;
  /** Default: the system time. */
  clock?: Clock;
  /** Default: every request is let in. Health and readiness never ask. */
  authenticate?: Authenticator;
  /** Serve HTTPS with this certificate and key, read again as they are renewed. */
  tls?: TlsFiles;
}

/**
 * Node's timeouts from the receiver's. The body has its own timer (readBody),
 * which answers 408 in JSON; `requestTimeout` bounds every other request. Node
 * checks both only every `connectionsCheckingInterval` (30 s by default), so
 * check at a quarter of the headers timeout, at least every second. Keep-alive
 * outlasts the senders' idle pools.
 */
function serverOptions(timeouts: ReceiverTimeouts): ServerOptions {
  return {
    keepAliveTimeout: 65_000,
    headersTimeout: timeouts.headers,
    requestTimeout: timeouts.headers + timeouts.body,
    connectionsCheckingInterval: Math.min(1_000, Math.ceil(timeouts.headers / 4)),
  };
}

/** How long a refused connection may take to read its last answer before it is destroyed. */
const LINGER_MS = 1_000;

/**
 * Ends `socket` with Node's bare `answer` (what was written before stays first), or destroys it when it cannot be
 * written. A client that reads closes its side and the socket goes at once; one that does not is not waited for.
 */
function answerBare(socket: Socket, answer: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(answer);
  const linger = setTimeout(() => socket.destroy(), LINGER_MS).unref();
  socket.once('close', () => clearTimeout(linger));
}

/**
 * The status line of the bare answer to what Node's parser refused, by its
 * error code, as Node's own handler would give it: a sender whose headers are
 * too large learns that (431), not only that its request was bad.
 */
const BARE_STATUS: Readonly<Record<string, string>> = {
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: '413 Payload Too Large',
};

/** Probes must work without credentials. */
const OPEN_PATHS = new Set(['/-/healthy', '/-/ready']);

/** The path of a request, without its query string. */
const pathOf = (req: IncomingMessage): string => (req.url ?? '/').split('?', 1)[0] ?? '/';

/**
 * The rejection counter's reason for `error`. A 401 to a GET or HEAD of a path that takes no
 * events (a scanner trying `/` or `/metrics`, a scrape without its token) is counted apart, as
 * `unauthorized_read`: nothing sent was lost, and `unauthorized` is what a sender whose alerts
 * were refused pages on. The client gets the same 401 either way.
 */
function countedReason(req: IncomingMessage, error: HttpError): RejectReason {
  const read = (req.method === 'GET' || req.method === 'HEAD') && INTAKES[pathOf(req)] === undefined;
  return error.reason === 'unauthorized' && read ? 'unauthorized_read' : error.reason;
}

/**
 * Whether some of the request's body is still unread. A request without a body
 * has none, though Node marks it complete only after the handler's first turn.
 */
function bodyUnread(req: IncomingMessage): boolean {
  if (req.complete) return false;
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

type GetRoute = (res: ServerResponse, query: URLSearchParams) => void | Promise<void>;

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** The certificate and key of what TLS files hold, as Node's HTTPS takes them. */
function certificateOf({ cert, key }: Readonly<TlsMaterial>): { cert?: Buffer; key?: Buffer } {
  return { cert, key };
}

/**
 * The HTTP receiver, an event source: alert and CloudEvents paths, health,
 * readiness, metrics and the status API. Every refusal is a 4xx (or 503) with
 * a JSON reason; nothing a client sends can crash it.
 */
export class Receiver implements EventSource {
  readonly name = 'http';
  readonly kind = 'http';
  private readonly server: Server;
  /** The same server when it serves HTTPS: a reload renews its certificate there. */
  private readonly httpsServer: HttpsServer | undefined;
  private stopTlsRefresh: (() => void) | undefined;
  private sink: EventSink | undefined;
  private state: SourceStatus['state'] = 'starting';
  private ready = false;
  private inFlight = 0;
  private readonly clock: Clock;
  /** How far the wall clock is ahead of `clock`: the senders' times are on their wall clocks. */
  private readonly wallAhead: () => number;
  private readonly health: SourceHealth;
  private boundAddress: AddressInfo | undefined;
  /** Sockets with a request core is handling, and its response: a parser error on them is not counted twice. */
  private readonly busySockets = new WeakMap<object, ServerResponse>();
  private readonly getRoutes: Record<string, GetRoute>;
  private readonly alertParser: OffThreadParser;
  private readonly strings = new SharedStrings();

  constructor(private options: ReceiverOptions) {
    this.clock = options.clock ?? systemClock;
    this.wallAhead = wallAheadOf(this.clock);
    this.health = new SourceHealth(this.wallAhead);
    this.alertParser = new OffThreadParser(options.logger);
    this.getRoutes = {
      '/-/healthy': (res) => sendText(res, 200, 'Healthy\n'),
      '/-/ready': (res) => (this.ready && this.sink?.durable === true ? sendText(res, 200, 'Ready\n') : sendText(res, 503, 'Not ready\n')),
      '/metrics': async (res) => {
        const body = await options.metrics.registry.metrics();
        res.writeHead(200, { 'content-type': options.metrics.registry.contentType });
        res.end(body);
      },
      '/api/v1/status': async (res, query) => {
        const { groups, total } = await this.options.status.groups(groupLimit(query), eventFilter(query));
        sendJson(res, 200, { state: this.options.status.state(), sources: this.options.status.sources(), flows: this.options.status.flows(), groups, groupsTotal: total });
      },
      '/api/v1/status/flows': (res) => sendJson(res, 200, options.status.flows()),
      '/api/v1/status/sources': (res) => sendJson(res, 200, options.status.sources()),
      '/api/v1/status/groups': async (res, query) => {
        const { groups, total } = await this.options.status.groups(groupLimit(query), eventFilter(query));
        sendJson(res, 200, groups, { 'x-total-count': String(total) });
      },
      '/api/v1/status/runs': async (res, query) => sendJson(res, 200, await options.status.runs(eventFilter(query))),
    };
    const listener = (req: IncomingMessage, res: ServerResponse): void => void this.handle(req, res);
    const nodeOptions = serverOptions(options.timeouts);
    this.httpsServer = options.tls ? createHttpsServer({ ...nodeOptions, ...certificateOf(options.tls.current) }, listener) : undefined;
    if (options.tls) this.serveRenewals(options.tls);
    this.server = this.httpsServer ?? createServer(nodeOptions, listener);
    // A connection with nothing moving either way (a client that stopped sending or reading) is destroyed.
    this.server.timeout = options.timeouts.idle;
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.refuseConnection(err, socket));
  }

  /** Binds and starts answering, handing events to `sink`; readiness turns true. */
  async start(sink: EventSink): Promise<void> {
    this.sink = sink;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', reject);
        // Once listening, Node emits a failed accept (ENFILE, ENOBUFS, ENOMEM) here: unheard, it would end the process.
        this.server.on('error', (err) => this.options.logger.error({ err }, 'receiver could not accept a connection; still serving'));
        resolve();
      });
    });
    this.ready = true;
    this.state = 'running';
    this.boundAddress = this.server.address() as AddressInfo;
  }

  /** The address bound by {@link start}. */
  get address(): AddressInfo {
    if (!this.boundAddress) throw new Error('the receiver has not started');
    return this.boundAddress;
  }

  status(): SourceStatus {
    return this.health.status(this.name, this.kind, this.state, this.inFlight);
  }

  /**
   * Takes a reloaded configuration's limits, credentials and, on a receiver
   * started with TLS, its certificate files: new connections get what they hold, open
   * ones keep theirs. Turning TLS on or off needs a restart.
   */
  update(changes: Pick<ReceiverOptions, 'limits' | 'authenticate' | 'tls'>): void {
    const { tls, ...rest } = changes;
    if (tls && this.httpsServer) {
      this.httpsServer.setSecureContext(certificateOf(tls.current));
      this.serveRenewals(tls);
    }
    this.options = { ...this.options, ...rest };
  }

  /** Serves what `files` hold each time they are renewed in place (cert-manager, certbot), until the next update or close. */
  private serveRenewals(files: TlsFiles): void {
    this.stopTlsRefresh?.();
    this.stopTlsRefresh = files.observe({
      onChange: (material) => {
        this.httpsServer?.setSecureContext(certificateOf(material));
        this.options.logger.info('server.tls files read again: new connections get the renewed certificate');
      },
      onError: (err) => this.options.logger.warn({ error: err.message }, 'server.tls files read again but not taken: the certificate read before is still served'),
    });
  }

  /** Readiness false and new events get 503; health, metrics and status are still served until {@link close}. */
  stop(): Promise<void> {
    this.ready = false;
    if (this.state !== 'stopped') this.state = 'stopping';
    return Promise.resolve();
  }

  /** Closes the listener and every connection. */
  async close(): Promise<void> {
    this.ready = false;
    this.state = 'stopped';
    this.stopTlsRefresh?.();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
      setTimeout(() => this.server.closeAllConnections(), 1_000).unref();
    });
    await this.alertParser.close();
  }

  /**
   * What Node's parser or its header and request timers refused: a bare answer
   * unless core's own has begun, then the connection goes, read or not. Bytes
   * after a request core still answers (a client that pipelines) are no part of
   * it: a bare answer now would reach the client as that request's (a 4xx, which
   * a sender does not re-send), so it follows that request's answer.
   */
  private refuseConnection(err: NodeJS.ErrnoException, socket: Socket): void {
    const timedOut = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    const res = this.busySockets.get(socket);
    const afterRequest = res?.req.complete === true;
    // Count what was refused outside a request core took; such a request is counted where it fails.
    if ((!res || afterRequest) && err.code !== 'ECONNRESET') this.options.metrics.requestsRejected.inc({ reason: timedOut ? 'timeout' : 'bad_request' });
    const answer = `HTTP/1.1 ${BARE_STATUS[err.code ?? ''] ?? '400 Bad Request'}\r\nConnection: close\r\n\r\n`;
    if (res && afterRequest) {
      res.once('close', () => answerBare(socket, answer));
      return;
    }
    if (res?.headersSent) {
      socket.destroy();
      return;
    }
    answerBare(socket, answer);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = pathOf(req);
    const search = (req.url ?? '').split('?', 2)[1] ?? '';
    this.busySockets.set(req.socket, res);
    // A pipelined request after this one may hold the socket's entry by now.
    res.once('close', () => this.busySockets.get(req.socket) === res && this.busySockets.delete(req.socket));
    try {
      if (this.options.authenticate && !OPEN_PATHS.has(path) && !this.options.authenticate(req)) {
        // One answer for every failure: no hint which part was wrong.
        throw new HttpError(401, 'unauthorized', 'unauthorized', { 'www-authenticate': 'Bearer realm="hollowtrees", Basic realm="hollowtrees"' });
      }
      const intake = INTAKES[path];
      const getRoute = this.getRoutes[path];
      if (intake !== undefined) {
        if (req.method !== 'POST') throw new HttpError(405, 'method_not_allowed', `${req.method} is not allowed on ${path}; use POST`, { allow: 'POST' });
        requireIdentityEncoding(req);
        await this.acceptEvents(intake(req, (...job) => this.alertParser.parse(...job)), req, res);
      } else if (getRoute !== undefined) {
        if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'method_not_allowed', `${req.method} is not allowed on ${path}; use GET`, { allow: 'GET, HEAD' });
        await getRoute(res, new URLSearchParams(search));
      } else {
        // Only the path's start: a sender's path may be as long as Node takes headers (16 KiB).
        throw new HttpError(404, 'not_found', `no route for ${path.slice(0, 256)}`);
      }
    } catch (err) {
      this.reject(req, res, err);
    }
  }

  /**
   * One POST of alerts or events, whatever the path: the same limits, 503s and
   * metrics, and a 200 only once every event was taken and its runs are on disk.
   */
  private async acceptEvents(intake: Intake, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { limits, metrics } = this.options;
    const { sink } = this;
    if (!this.ready || !sink) throw shuttingDown();
    if (!sink.durable) throw stateUnavailable(intake.noun, sink.backend);
    if (this.inFlight >= limits.maxConcurrentRequests) throw new HttpError(503, 'overloaded', 'too many requests at once; retry later', { 'retry-after': '1' });
    this.inFlight++;
    try {
      const body = await readBody(req, limits.maxBodyBytes, this.options.timeouts.body);
      // Read, so the connection stays open, but not parsed while every flow is full: that would only slow the runs that make room.
      const full = sink.noRoom?.();
      if (full) throw noRoomBeforeParsing(intake.noun, full);
      const at = this.clock.now();
      // Parsed on the wall clock: an alert's endsAt (at or before its receipt: resolved) is the sender's wall-clock time.
      const receivedAt = new Date(at + this.wallAhead());
      this.health.received(at);
      const { events, refused, leftOut } = await intake.parse(body, receivedAt, limits);
      // Said at every such payload: nothing else tells the operator that these alerts are never acted on.
      if (leftOut) this.options.logger.warn({ path: req.url, truncatedAlerts: leftOut.count, groupKey: leftOut.group.slice(0, 1_000), alerts: events.length + (refused?.refused ?? 0) }, 'Alertmanager left alerts of this group out of its webhook payload (max_alerts in its webhook_configs): core never receives them, nor acts on them');
      const total = events.length + (refused?.refused ?? 0);
      if (refused?.refused && events.length === 0) throw new HttpError(400, 'bad_data', problemsText(refused.problems, PROBLEMS_LISTED, refused.unlisted));
      let notTaken = 0;
      let firstDrop: Drop | undefined;
      // Counted per type once per request: a batch's events share one or two types.
      const received = new Map<string, number>();
      const nextEvent = slicer();
      // A run's claim that fails while later slices are dispatched, before commit() is called, still refuses this batch.
      const mark = sink.mark?.();
      for (const event of events) {
        const pause = nextEvent();
        if (pause) await pause;
        const type = intake.typeLabel(event);
        received.set(type, (received.get(type) ?? 0) + 1);
        this.strings.shareEvent(event);
        // A sender's re-send names the flows that acted on it already (a node watcher's, after another flow failed): they
        // pass it by, also once their cooldowns are over (the re-send delayed), and do not act twice.
        const settled = settledFlowsOf(event);
        const { dropped } = sink.accept(event, at, undefined, settled && { settled });
        if (dropped.length === 0) continue;
        notTaken++;
        firstDrop ??= dropped[0];
      }
      for (const [type, count] of received) metrics.eventsReceived.inc({ source: intake.source, type }, count);
      // A 200 would tell the sender these events were delivered though they will not be acted on:
      // ask for a re-send instead (Alertmanager retries a 5xx with backoff).
      if (firstDrop?.reason === 'shutting_down') throw shuttingDown();
      if (firstDrop) throw notAllQueued(notTaken, total, intake.noun, firstDrop);
      // The runs are on disk before the sender hears they were accepted: a crash after the 200 resumes them.
      if (!(await sink.commit(mark))) throw stateUnavailable(intake.noun, sink.backend);
      // Acknowledge in the check phase, after Node has written the HTTP/2 frames of the plugin calls
      // these events started: the action leaves before the acknowledgement, not behind its syscall.
      if (refused?.refused) {
        // Alertmanager's way: the valid alerts are taken, the 400 names the others (neither sender re-sends a 4xx).
        const partly = new HttpError(400, 'bad_data', `${problemsText(refused.problems, PROBLEMS_LISTED, refused.unlisted)} (${refused.refused} of ${total} ${intake.noun} refused; the other ${events.length} were accepted)`, {}, events.length);
        setImmediate(() => this.reject(req, res, partly));
      } else {
        setImmediate(() => sendJson(res, 200, { status: 'success', accepted: events.length }));
      }
    } finally {
      this.inFlight--;
    }
  }

  private reject(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    const error = err instanceof HttpError ? err : new HttpError(500, 'internal', 'internal error');
    if (!(err instanceof HttpError)) this.options.logger.error({ err, path: req.url }, 'receiver failed on a request');
    this.options.metrics.requestsRejected.inc({ reason: countedReason(req, error) });
    this.health.failed(this.clock.now(), `${error.status} ${error.reason}: ${error.message}`);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    // After a refused upload the rest of the body is not read: close instead of keeping the connection.
    const unread = bodyUnread(req);
    const body = { status: 'error', errorType: error.reason, error: error.message, ...(error.accepted === undefined ? {} : { accepted: error.accepted }) };
    sendJson(res, error.status, body, { ...error.headers, ...(unread ? { connection: 'close' } : {}) });
    if (unread) res.once('finish', () => req.destroy());
  }
}
