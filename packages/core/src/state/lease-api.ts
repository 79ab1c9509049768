import { ApiException, CoordinationV1Api, createConfiguration, KubeConfig, ServerConfiguration, type V1Lease, type V1LeaseList } from '@kubernetes/client-node';
import { CallGate, PluginError, readEveryPage, SharedAgents, type Clock } from '@hollowtrees/grpcplugin/without-grpc';
import type { StoreCallResult, StoreMetrics, StoreOperation } from './store-metrics.js';

/** A Lease call the API server answered with this HTTP code (404, 409, ...). */
export class LeaseRefused extends Error {
  override readonly name = 'LeaseRefused';
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** A Lease call that got no answer in time, or no answer at all (connection refused or reset, DNS, TLS). */
export class LeaseUnreachable extends Error {
  override readonly name = 'LeaseUnreachable';
}

/** The Lease calls the kubernetes backend makes in its namespace, and nothing else (see deploy/kubernetes/overlays/ha/lease-rbac.yaml). */
export interface LeaseApi {
  /**
   * Creates the Lease; with `dryRun`, only asks whether it would be created (RBAC, admission, the namespace), storing nothing.
   * `record`: a Lease that only records (a run's end), which waits behind claims and writes of held Leases as lists do.
   */
  create(lease: V1Lease, options?: { dryRun?: boolean; record?: boolean }): Promise<V1Lease>;
  read(name: string): Promise<V1Lease>;
  /**
   * Replaces the Lease; its `metadata.resourceVersion` makes it conditional (409 when stale). `held`: a write of a
   * Lease this replica holds (a renewal, a run's place or end, a hand-back), served before claims and lists.
   */
  replace(lease: V1Lease, options?: { held?: boolean }): Promise<V1Lease>;
  /** Deletes the Lease if it still has this uid and resourceVersion (409 otherwise). */
  delete(name: string, preconditions: { uid: string; resourceVersion: string }): Promise<void>;
  /**
   * Every Lease with the label selector, all pages: read again from the first when a continue token
   * expired (410 Gone); a listing that never ends (a token repeated, or past the page cap) fails.
   */
  list(labelSelector: string): Promise<V1Lease[]>;
}

/** How {@link kubeLeaseApi} reaches the API server. */
export interface LeaseApiOptions {
  namespace: string;
  /** A call with no answer after this long (waiting for a slot, and for a throttled call's Retry-After, included) counts as unreachable. */
  timeoutMs: number;
  /** Calls in flight at once (`state.kubernetes.maxInFlight`); more wait for a slot: writes of Leases this replica holds first, then claims, then list pages. */
  maxInFlight: number;
  metrics: StoreMetrics;
  clock: Clock;
  /**
   * Rewrites an error's message before it is thrown (and logged): the API server's answers and the
   * client's failures name the namespace and the Lease, which may have come from `${VAR}`, and
   * such a value is never shown. Unchanged when absent.
   */
  shown?: (message: string) => string;
}

/** Loads a kubeconfig's text, or else the in-cluster service account (never the client's fallback of http://localhost:8080). */
export function loadStoreKubeConfig(kubeconfigText: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (kubeconfigText !== undefined) kc.loadFromString(kubeconfigText);
  else kc.loadFromCluster();
  if (!kc.getCurrentCluster()) throw new Error('the kubeconfig has no current cluster');
  return kc;
}

/**
 * The classes of Lease calls, most urgent first: a write of a Lease this replica holds (a renewal, a run's
 * place or end) keeps a run that is acting single, and one that waits past its Lease loses the run to another
 * replica, which acts again; a claim keeps its sender waiting; a list (sweeps, caches of other replicas) or the record
 * of a run's end can wait.
 * Without the first class, a wave of claims (after an outage, say) held renewals back until runs lost their holds.
 */
const CALL_CLASSES = ['held', 'lease', 'list'] as const;
type CallClass = (typeof CALL_CLASSES)[number];

/** How long a 429 asks the client to wait: its `Retry-After` in seconds, else 1 s, as client-go reads it. */
function retryAfterMs(err: ApiException<unknown>): number {
  const seconds = Number(err.headers['retry-after']);
  return Number.isInteger(seconds) && seconds >= 0 ? seconds * 1000 : 1_000;
}

const resultOf = (err: unknown): StoreCallResult => (err instanceof LeaseRefused ? (err.code === 409 ? 'conflict' : err.code === 404 ? 'not_found' : 'error') : 'error');

/**
 * {@link LeaseApi} over `@kubernetes/client-node`'s `CoordinationV1Api`. An
 * answer with an HTTP error becomes {@link LeaseRefused} with its code; no
 * answer within `timeoutMs` (or none at all) becomes {@link LeaseUnreachable}.
 * At most `maxInFlight` calls are in flight: a wave's thousand claims, and a
 * renewal of each of its runs every interval, would otherwise reach the API
 * server at once, and its API Priority and Fairness answers most of such a
 * burst 429. A 429 that comes all the same is sent again after its
 * `Retry-After`, within the call's time. Every call is counted and timed.
 */
export function kubeLeaseApi(kc: KubeConfig, options: LeaseApiOptions): LeaseApi {
  // One set of keep-alive connections instead of the client's new connection (and handshake) per
  // call: thousands in a wave, and a renewal of every Lease each interval. Idle ones close before
  // the server's keep-alive timeout (Node's default 5 s) could close them under a request.
  const agents = new SharedAgents({ idleTimeoutMs: 4_000 });
  const api = new CoordinationV1Api(
    createConfiguration({
      baseServer: new ServerConfiguration(kc.getCurrentCluster()!.server, {}),
      authMethods: { default: kc },
      promiseMiddleware: [agents.middleware()],
    }),
  );
  const { namespace, metrics, clock, timeoutMs, maxInFlight, shown = (message: string) => message } = options;
  const gate = new CallGate(maxInFlight, CALL_CLASSES);
  const call = async <T>(operation: StoreOperation, run: () => Promise<T>, callClass: CallClass = operation === 'list' ? 'list' : 'lease'): Promise<T> => {
    const started = clock.now();
    // Aborted at the answer or the deadline, whichever comes first: it ends the wait for the other, and takes a call still waiting out of the gate.
    const over = new AbortController();
    let sent = false;
    let expired = false;
    let throttled: ApiException<unknown> | undefined;
    const attempt = async (): Promise<T> => {
      // A slot handed over as the deadline passed: the call has failed already, and is not sent.
      if (expired) throw new LeaseUnreachable('not sent: its time ran out');
      sent = true;
      for (;;) {
        try {
          // Once more at once when the connection broke without an answer (a kept-alive socket the server had just closed): every
          // call is safe to repeat, since the store reads a 409 from its own earlier write back as its own.
          return await run().catch((err: unknown) => (err instanceof ApiException ? Promise.reject(err) : run()));
        } catch (err) {
          // API Priority and Fairness answers 429 to a request it did not serve: sent again after its Retry-After while the call has time, as client-go does.
          if (!(err instanceof ApiException) || err.code !== 429) throw err;
          throttled = err;
          await clock.sleep(retryAfterMs(err), over.signal);
        }
      }
    };
    const deadline = clock.sleep(timeoutMs, over.signal).then(() => {
      expired = true;
      if (throttled) throw new LeaseRefused(429, shown(`${messageOf(throttled)} (still throttled when the call's ${timeoutMs} ms ran out)`));
      throw new LeaseUnreachable(
        sent
          ? `no answer from the API server within ${timeoutMs} ms`
          : `not sent within ${timeoutMs} ms: the replica's Lease calls in flight were at their limit (state.kubernetes.maxInFlight: ${maxInFlight})`,
      );
    });
    try {
      // The slot is free again at the deadline: a call the server never answers does not hold it.
      const answer = await Promise.race([gate.run(callClass, () => Promise.race([attempt(), deadline]), over.signal), deadline]);
      metrics.calls.inc({ operation, result: 'ok' });
      return answer;
    } catch (err) {
      const classified =
        err instanceof LeaseUnreachable || err instanceof LeaseRefused
          ? err
          : err instanceof ApiException
            ? new LeaseRefused(err.code, shown(messageOf(err)))
            : new LeaseUnreachable(shown(err instanceof Error ? err.message : String(err)));
      metrics.calls.inc({ operation, result: resultOf(classified) });
      throw classified;
    } finally {
      over.abort();
      metrics.callDuration.observe({ operation }, (clock.now() - started) / 1000);
    }
  };
  return {
    create: (body, { dryRun = false, record = false } = {}) => call('create', () => api.createNamespacedLease({ namespace, body, ...(dryRun ? { dryRun: 'All' } : {}) }), record ? 'list' : 'lease'),
    read: (name) => call('read', () => api.readNamespacedLease({ name, namespace })),
    replace: (body, { held = false } = {}) => call('update', () => api.replaceNamespacedLease({ name: body.metadata!.name!, namespace, body }), held ? 'held' : 'lease'),
    delete: async (name, preconditions) => {
      await call('delete', () => api.deleteNamespacedLease({ name, namespace, body: { preconditions } }));
    },
    list: async (labelSelector) => {
      const items: V1Lease[] = [];
      try {
        // Each page is a call of its own, with its own timeout: thousands of Leases (a wave's cooldowns) take many pages, which
        // together may take longer than one call is given.
        await readEveryPage<V1LeaseList>({
          name: `the Lease list of namespace ${namespace}`,
          tokenName: 'continue token',
          read: (token) => call('list', () => api.listNamespacedLease({ namespace, labelSelector, limit: 500, _continue: token })),
          nextToken: (page) => page.metadata?._continue,
          take: (page) => void items.push(...page.items),
          expiry: { isExpired: (err) => err instanceof LeaseRefused && err.code === 410, forget: () => void items.splice(0) },
        });
      } catch (err) {
        // A list that would never end: as good as no answer.
        throw err instanceof PluginError ? new LeaseUnreachable(shown(err.message)) : err;
      }
      return items;
    },
  };
}

/** The API server's message from a `Status` body, else the client's. */
function messageOf(err: ApiException<unknown>): string {
  const body: unknown = typeof err.body === 'string' ? safeJson(err.body) : err.body;
  const message = (body as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' ? message : `HTTP ${err.code}`;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
