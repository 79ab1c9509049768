import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { CallLatency } from '../call-latency.js';
import { listenOnEphemeralPort, wallClockMs } from '../listen.js';
import { KubeCluster, type KubeClusterOptions, type ListQuery } from './cluster.js';
import { badRequest, injected, methodNotAllowed, noSuchPath, StatusError, tooManyRequests, unauthorized } from './status.js';

/** Options of {@link startKubeApiServer}; every field has a default. */
export interface KubeApiServerOptions extends KubeClusterOptions {
  /** When set, every request must carry `Authorization: Bearer <token>`, else 401. Default: no auth. */
  token?: string;
  /** Milliseconds added to every request before it is served (a watch: before it starts). Default 0. */
  latencyMs?: number;
  /**
   * Requests served at once (watches aside). One more, arriving while that many
   * are being served, is answered 429 TooManyRequests with `Retry-After: 1`,
   * unserved, as API Priority and Fairness answers a client whose seats and
   * queue are full. Default: no limit.
   */
  maxInFlight?: number;
}

/** Which requests an injected fault hits, and what it does to them. */
export interface FaultOptions {
  /**
   * `error` (the default): answered `code` instead of being served.
   * `lose-answer`: served (a write is applied), then the connection is dropped
   * unanswered, as when the answer is lost on its way back.
   * `delay`: served once `until` settles, as a slow call.
   * `repeat-continue`: a list served, but its `metadata.continue` is the one the request sent (a first
   * page's is kept), as a broken API server or proxy that hands the same page out again and again.
   */
  effect?: 'error' | 'lose-answer' | 'delay' | 'repeat-continue';
  /** For `delay`: the request is served once this settles. */
  until?: Promise<unknown>;
  /** For `error`: the HTTP code answered, with a matching `Status` body. Default 500. */
  code?: number;
  /** Only requests with this method (upper case). Default: any. */
  method?: string;
  /** Only requests whose path matches. Default: any. */
  path?: RegExp;
  /** Only requests whose query string (without `?`) matches: `/continue=/` takes the later pages of lists. Default: any. */
  query?: RegExp;
}

/** What {@link KubeApiServer.failNext} set up, as the stand-in sees it. */
export interface KubeFault {
  /**
   * The requests it has hit so far (a `delay`: held, or served after it), counted on arrival: a test waits for this,
   * not for some request to be in flight, to know the request it meant is the one held.
   */
  readonly hits: number;
}

/** One request the stand-in answered. */
export interface RequestRecord {
  method: string;
  path: string;
  query: Record<string, string>;
  contentType: string | undefined;
  /** The HTTP code answered. */
  code: number;
  /** When it was served (after the injected latency): `wallClockMs()`. */
  at: number;
}

/** A running kube-apiserver stand-in. */
export interface KubeApiServer {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  /** The simulated cluster: set it up and inspect it. */
  readonly cluster: KubeCluster;
  /** Every request answered, oldest first (a watch once, when it starts). */
  readonly requests: RequestRecord[];
  /** The delay added to every request; settable while running. */
  readonly latency: CallLatency;
  /** Requests being served now (arrived, not yet answered), watches aside. */
  readonly inFlight: number;
  /** Answers the next `count` matching requests with an error instead of serving them, or loses or delays their answers (see {@link FaultOptions}). */
  failNext(count: number, options?: FaultOptions): KubeFault;
  /** TCP connections accepted so far (a client that reuses connections opens few). */
  connections(): number;
  /** Drops every open connection, as a restarting API server or a network blip does; watches end. */
  dropConnections(): void;
  /**
   * Every watch open now sends nothing more, its connection left open: a connection a NAT or
   * load balancer dropped on the way, which neither end hears of. Watches started later are served.
   */
  silenceOpenWatches(): void;
  /**
   * While true, every connection is dropped and every request is reset
   * unanswered, as when the API server cannot be reached; false serves again.
   */
  unreachable: boolean;
  /**
   * For `KubeConfig.loadFromOptions()` of `@kubernetes/client-node`. The cluster
   * sets `skipTLSVerify`, without which the client refuses a plain-HTTP server.
   */
  kubeConfigOptions(): KubeConfigOptions;
  /** The same as a kubeconfig file's text (JSON, which is YAML), for `--kubeconfig`. */
  kubeConfigFileText(): string;
  /** Stops pending pod terminations and closes the server. */
  close(): Promise<void>;
}

/** The shape `KubeConfig.loadFromOptions()` takes, spelled out so testkit need not depend on the client. */
export interface KubeConfigOptions {
  clusters: Array<{ name: string; server: string; skipTLSVerify: boolean }>;
  users: Array<{ name: string; token?: string }>;
  contexts: Array<{ name: string; cluster: string; user: string }>;
  currentContext: string;
}

interface Fault {
  remaining: number;
  effect: NonNullable<FaultOptions['effect']>;
  until: Promise<unknown> | undefined;
  code: number;
  method: string | undefined;
  path: RegExp | undefined;
  query: RegExp | undefined;
}

interface Request {
  method: string;
  path: string;
  query: URLSearchParams;
  contentType: string;
  body: unknown;
}

type Route = [method: string, pattern: RegExp, serve: (cluster: KubeCluster, req: Request, params: string[]) => [number, unknown]];

const listQuery = (q: URLSearchParams): ListQuery => ({
  fieldSelector: q.get('fieldSelector'),
  labelSelector: q.get('labelSelector'),
  limit: q.has('limit') ? Number(q.get('limit')) : null,
  continueToken: q.get('continue'),
});

const NAME = '([^/]+)';
/** Collections a watch may follow: the nodes, the cluster's pods, or one namespace's. */
const POD_COLLECTION = new RegExp(`^/api/v1/(?:namespaces/${NAME}/)?pods$`);
const NODE_COLLECTION = /^\/api\/v1\/nodes$/;
const LEASES = `/apis/coordination\\.k8s\\.io/v1/namespaces/${NAME}/leases`;
const isWatch = (q: URLSearchParams): boolean => q.get('watch') === 'true' || q.get('watch') === '1';

const routes: Route[] = [
  ['GET', /^\/api\/v1\/nodes$/, (c, r) => [200, c.listNodes(listQuery(r.query))]],
  ['GET', new RegExp(`^/api/v1/nodes/${NAME}$`), (c, _r, [n]) => [200, c.readNode(n!)]],
  ['PATCH', new RegExp(`^/api/v1/nodes/${NAME}$`), (c, r, [n]) => [200, c.patchNode(n!, r.contentType, r.body)]],
  ['GET', /^\/api\/v1\/pods$/, (c, r) => [200, c.listPods(undefined, listQuery(r.query))]],
  ['GET', new RegExp(`^/api/v1/namespaces/${NAME}/pods$`), (c, r, [ns]) => [200, c.listPods(ns!, listQuery(r.query))]],
  ['GET', new RegExp(`^/api/v1/namespaces/${NAME}/pods/${NAME}$`), (c, _r, [ns, n]) => [200, c.readPod(ns!, n!)]],
  [
    'DELETE',
    new RegExp(`^/api/v1/namespaces/${NAME}/pods/${NAME}$`),
    (c, r, [ns, n]) => {
      const fromBody = (r.body as { gracePeriodSeconds?: number } | undefined)?.gracePeriodSeconds;
      const fromQuery = r.query.has('gracePeriodSeconds') ? Number(r.query.get('gracePeriodSeconds')) : undefined;
      return [200, c.deletePod(ns!, n!, fromBody ?? fromQuery)];
    },
  ],
  ['POST', new RegExp(`^/api/v1/namespaces/${NAME}/pods/${NAME}/eviction$`), (c, r, [ns, n]) => [201, c.evictPod(ns!, n!, r.body)]],
  ['POST', new RegExp(`^/api/v1/namespaces/${NAME}/events$`), (c, r, [ns]) => [201, c.createEvent(ns!, r.body)]],
  ['GET', /^\/apis\/coordination\.k8s\.io\/v1\/leases$/, (c, r) => [200, c.leases.list(undefined, listQuery(r.query))]],
  ['GET', new RegExp(`^${LEASES}$`), (c, r, [ns]) => [200, c.leases.list(ns!, listQuery(r.query))]],
  ['POST', new RegExp(`^${LEASES}$`), (c, r, [ns]) => [201, c.leases.create(ns!, r.body, r.query.get('dryRun') === 'All')]],
  ['GET', new RegExp(`^${LEASES}/${NAME}$`), (c, _r, [ns, n]) => [200, c.leases.read(ns!, n!)]],
  ['PUT', new RegExp(`^${LEASES}/${NAME}$`), (c, r, [ns, n]) => c.leases.replace(ns!, n!, r.body)],
  ['DELETE', new RegExp(`^${LEASES}/${NAME}$`), (c, r, [ns, n]) => [200, c.leases.delete(ns!, n!, r.body)]],
];

function route(cluster: KubeCluster, req: Request): [number, unknown] {
  let pathKnown = false;
  for (const [method, pattern, serve] of routes) {
    const m = pattern.exec(req.path);
    if (!m) continue;
    pathKnown = true;
    if (method === req.method) return serve(cluster, req, m.slice(1).map(decodeURIComponent));
  }
  throw pathKnown ? methodNotAllowed() : noSuchPath();
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw badRequest('the object provided is unrecognized (must be of type JSON)');
  }
}

/**
 * Starts a kube-apiserver stand-in on 127.0.0.1 and an ephemeral port: enough of
 * the core/v1 and policy/v1 API, over plain HTTP, for the real
 * `@kubernetes/client-node` to cordon and drain a node. For tests and demos only.
 */
export async function startKubeApiServer(options: KubeApiServerOptions = {}): Promise<KubeApiServer> {
  const cluster = new KubeCluster(options);
  const requests: RequestRecord[] = [];
  const faults: Fault[] = [];
  const latency = new CallLatency(options.latencyMs ?? 0);
  let serving = 0;

  const takeFault = (method: string, url: URL): Fault | undefined => {
    const matches = (f: Fault): boolean => (!f.method || f.method === method) && (!f.path || f.path.test(url.pathname)) && (!f.query || f.query.test(url.search.slice(1)));
    const fault = faults.find((f) => f.remaining > 0 && matches(f));
    if (fault) fault.remaining--;
    return fault;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (api.unreachable) {
      req.socket.destroy();
      return;
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    const contentType = req.headers['content-type'];
    let code: number;
    let body: unknown;
    let loseAnswer = false;
    const record = (answered: number): void => {
      requests.push({ method, path: url.pathname, query: Object.fromEntries(url.searchParams), contentType, code: answered, at: wallClockMs() });
    };
    if (!(method === 'GET' && isWatch(url.searchParams))) {
      if (serving >= (options.maxInFlight ?? Infinity)) {
        const refused = tooManyRequests(1);
        record(refused.status.code);
        res.writeHead(refused.status.code, { 'content-type': 'application/json', 'retry-after': '1' }).end(JSON.stringify(refused.status));
        return;
      }
      serving++;
      res.once('close', () => serving--);
    }
    try {
      await latency.wait();
      if (options.token && req.headers.authorization !== `Bearer ${options.token}`) throw unauthorized();
      const fault = takeFault(method, url);
      if (fault?.effect === 'error') throw injected(fault.code);
      if (fault?.effect === 'delay') await fault.until?.catch(() => {});
      loseAnswer = fault?.effect === 'lose-answer';
      const parsed = await readBody(req);
      const podCollection = POD_COLLECTION.exec(url.pathname);
      if (method === 'GET' && isWatch(url.searchParams) && (podCollection || NODE_COLLECTION.test(url.pathname))) {
        const q = url.searchParams;
        const namespace = podCollection?.[1] && decodeURIComponent(podCollection[1]);
        watch(res, q, (send) =>
          podCollection ? cluster.watchPods(namespace, listQuery(q), q.get('resourceVersion'), send) : cluster.watchNodes(listQuery(q), q.get('resourceVersion'), send),
        );
        record(200);
        return;
      }
      [code, body] = route(cluster, { method, path: url.pathname, query: url.searchParams, contentType: contentType ?? '', body: parsed });
      const asked = url.searchParams.get('continue');
      if (fault?.effect === 'repeat-continue' && asked) (body as { metadata: { continue?: string } }).metadata.continue = asked;
    } catch (err) {
      if (!(err instanceof StatusError)) throw err;
      code = err.status.code;
      body = err.status;
    }
    record(code);
    if (loseAnswer) {
      req.socket.destroy();
      return;
    }
    res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };

  /** Streams a watch's events as JSON lines until the client goes or `timeoutSeconds` passes. */
  const openWatches = new Set<() => void>();
  const watch = (res: ServerResponse, query: URLSearchParams, start: (send: (event: unknown) => void) => () => void): void => {
    const lines: string[] = [];
    let streaming = false;
    let silenced = false;
    const send = (event: unknown): void => {
      if (silenced) return;
      if (streaming) res.write(`${JSON.stringify(event)}\n`);
      else lines.push(JSON.stringify(event));
    };
    let unsubscribe: () => void;
    try {
      unsubscribe = start(send);
    } catch (err) {
      if (!(err instanceof StatusError)) throw err;
      // As the API server: a watch that cannot start is a 200 whose one event is the ERROR.
      res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify({ type: 'ERROR', object: err.status })}\n`);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    // As the API server: the client's watch has started once it has the headers, events or not.
    res.flushHeaders();
    streaming = true;
    if (lines.length > 0) res.write(`${lines.join('\n')}\n`);
    const timeoutSeconds = Number(query.get('timeoutSeconds') ?? 0);
    // A silenced watch does not end either: the end would not arrive.
    const timer = timeoutSeconds > 0 ? setTimeout(() => silenced || res.end(), timeoutSeconds * 1000) : undefined;
    const silence = (): void => void (silenced = true);
    openWatches.add(silence);
    res.once('close', () => {
      clearTimeout(timer);
      openWatches.delete(silence);
      unsubscribe();
    });
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify(injected(500).status));
      console.error('kube stand-in bug:', err);
    });
  });
  let accepted = 0;
  server.on('connection', () => accepted++);
  const port = await listenOnEphemeralPort(server, '127.0.0.1');
  const url = `http://127.0.0.1:${port}`;

  const kubeConfigOptions = (): KubeConfigOptions => ({
    clusters: [{ name: 'testkit', server: url, skipTLSVerify: true }],
    users: [{ name: 'testkit', ...(options.token ? { token: options.token } : {}) }],
    contexts: [{ name: 'testkit', cluster: 'testkit', user: 'testkit' }],
    currentContext: 'testkit',
  });

  let unreachable = false;
  const api: KubeApiServer = {
    get unreachable() {
      return unreachable;
    },
    set unreachable(down: boolean) {
      unreachable = down;
      if (down) server.closeAllConnections();
    },
    url,
    port,
    cluster,
    requests,
    latency,
    get inFlight() {
      return serving;
    },
    failNext(count, fault = {}) {
      const injected: Fault = { remaining: count, effect: fault.effect ?? 'error', until: fault.until, code: fault.code ?? 500, method: fault.method, path: fault.path, query: fault.query };
      faults.push(injected);
      return {
        get hits() {
          return count - injected.remaining;
        },
      };
    },
    connections: () => accepted,
    dropConnections: () => server.closeAllConnections(),
    silenceOpenWatches: () => {
      for (const silence of openWatches) silence();
      openWatches.clear();
    },
    kubeConfigOptions,
    kubeConfigFileText: () =>
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'testkit', cluster: { server: url, 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'testkit', user: options.token ? { token: options.token } : {} }],
        contexts: [{ name: 'testkit', context: { cluster: 'testkit', user: 'testkit' } }],
        'current-context': 'testkit',
      }),
    close: () =>
      new Promise<void>((resolve, reject) => {
        cluster.stop();
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
  return api;
}
