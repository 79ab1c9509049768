import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';

/** The agent options that decide who the client is and whom it trusts: agents may be shared only when these match. */
const TLS_FIELDS = ['ca', 'cert', 'key', 'pfx', 'passphrase', 'rejectUnauthorized', 'servername'] as const;

function fingerprint(options: https.AgentOptions): string {
  const hash = createHash('sha256');
  for (const field of TLS_FIELDS) hash.update(`${field}=${String(options[field] ?? '')}\n`);
  return hash.digest('hex');
}

/** How long a replaced agent (a rotated client certificate) keeps its connections for the calls still on them. */
const RETIRE_AFTER_MS = 60_000;

/** What {@link SharedAgents.middleware} needs of a call: `@kubernetes/client-node`'s `RequestContext` has it. */
export interface AgentContext {
  getAgent(): http.Agent | https.Agent | undefined;
  setAgent(agent: http.Agent | https.Agent): void;
}

/** How {@link SharedAgents} keeps its connections. */
export interface SharedAgentsOptions {
  /** Connections open at once per host (default: Node's, unbounded). */
  maxSockets?: number;
  /**
   * Closes a connection idle this long. Set it below the server's keep-alive
   * timeout (Node's default is 5 s), so the server never closes a connection
   * under a request just sent on it.
   */
  idleTimeoutMs?: number;
}

/**
 * Keep-alive agents shared by every Kubernetes call of one client (the drain
 * plugin's, core's Lease store). `@kubernetes/client-node` 1.x builds a new
 * `http(s).Agent` for each request from the kubeconfig, so each call opens
 * (and for https, handshakes) its own connection. Given the agent the client
 * built for a call, {@link SharedAgents.agentFor} returns a long-lived
 * keep-alive agent with the same TLS settings instead. A change of those
 * settings (a rotated client certificate) gets a new agent; the old one is
 * closed a minute later. Proxy agents (kubeconfig `proxy-url`) are left as
 * they are.
 */
export class SharedAgents {
  private httpAgent: http.Agent | undefined;
  private httpsAgent: { agent: https.Agent; key: string } | undefined;

  constructor(private readonly options: SharedAgentsOptions = {}) {}

  /** The shared agent to use instead of `perCall`, the one the client built for this call. */
  agentFor(perCall: http.Agent | https.Agent | undefined): http.Agent | https.Agent | undefined {
    if (perCall?.constructor === https.Agent) return this.https((perCall as https.Agent).options);
    if (perCall?.constructor === http.Agent) return (this.httpAgent ??= new http.Agent(this.keepAlive()));
    return perCall;
  }

  /**
   * A `promiseMiddleware` entry for `@kubernetes/client-node`'s
   * `createConfiguration` that gives each call the shared agent.
   */
  middleware(): { pre<C extends AgentContext>(context: C): Promise<C>; post<R>(response: R): Promise<R> } {
    return {
      pre: async (context) => {
        const agent = this.agentFor(context.getAgent());
        if (agent) context.setAgent(agent);
        return context;
      },
      post: async (response) => response,
    };
  }

  /** Closes every connection. */
  destroy(): void {
    this.httpAgent?.destroy();
    this.httpsAgent?.agent.destroy();
  }

  private https(options: https.AgentOptions): https.Agent {
    const key = fingerprint(options);
    if (this.httpsAgent?.key !== key) {
      const retired = this.httpsAgent?.agent;
      if (retired) setTimeout(() => retired.destroy(), RETIRE_AFTER_MS).unref();
      const tls = Object.fromEntries(TLS_FIELDS.flatMap((f) => (options[f] === undefined ? [] : [[f, options[f]]])));
      this.httpsAgent = { agent: new https.Agent({ ...tls, ...this.keepAlive() }), key };
    }
    return this.httpsAgent.agent;
  }

  private keepAlive(): http.AgentOptions {
    const { maxSockets, idleTimeoutMs } = this.options;
    return {
      keepAlive: true,
      ...(maxSockets === undefined ? {} : { maxSockets, maxFreeSockets: maxSockets }),
      ...(idleTimeoutMs === undefined ? {} : { timeout: idleTimeoutMs }),
    };
  }
}
