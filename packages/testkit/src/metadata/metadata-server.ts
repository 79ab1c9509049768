import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { closeServer, listenOnEphemeralPort } from '../listen.js';

/** One request as a metadata stand-in's routes see it. */
export interface MetadataRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
  /** Aborts when the client goes away, so a hanging GET stops waiting. */
  readonly signal: AbortSignal;
}

/** What a route answers. */
export interface MetadataAnswer {
  readonly status: number;
  readonly body?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** One request a stand-in received, with the status it answered (0: none, the connection dropped or held). */
export interface MetadataCall {
  readonly method: string;
  readonly path: string;
  readonly status: number;
}

/** Faults the next requests meet, whatever they ask for. */
export class MetadataFaults {
  private readonly pending: number[] = [];
  private readonly brokenPaths = new Map<string, number | 'hang'>();
  private drops = 0;

  /** The next `count` requests get `status` (default 500) and an empty body. */
  fail(count: number, status = 500): void {
    for (let i = 0; i < count; i++) this.pending.push(status);
  }

  /** The next `count` requests get no answer: the connection is closed under them. */
  dropConnection(count: number): void {
    this.drops += count;
  }

  /** Every request for `path` (e.g. `/latest/meta-data/events/maintenance/scheduled`) gets `status` until {@link clear}: one broken part of the service. */
  failPath(path: string, status = 500): void {
    this.brokenPaths.set(path, status);
  }

  /** Every request for `path` until {@link clear} gets no answer: it is held open until the client gives up or the server closes (one part of the service behind a stalled proxy). */
  hangPath(path: string): void {
    this.brokenPaths.set(path, 'hang');
  }

  /** Drops every fault still pending. */
  clear(): void {
    this.pending.length = 0;
    this.brokenPaths.clear();
    this.drops = 0;
  }

  /** @internal The fault for the request for `path` arriving now: a status, 'drop', 'hang', or none. */
  take(path: string): number | 'drop' | 'hang' | undefined {
    if (this.drops > 0) {
      this.drops--;
      return 'drop';
    }
    return this.pending.shift() ?? this.brokenPaths.get(path);
  }
}

/** A running metadata stand-in's server. */
export interface MetadataServer {
  readonly url: string;
  readonly calls: readonly MetadataCall[];
  close(): Promise<void>;
}

/**
 * Serves a metadata service's routes on an ephemeral loopback port: faults first, then `route`.
 * A request the route throws on gets a 500, as a broken metadata service would answer.
 */
export async function startMetadataServer(route: (req: MetadataRequest) => Promise<MetadataAnswer> | MetadataAnswer, faults: MetadataFaults): Promise<MetadataServer> {
  const calls: MetadataCall[] = [];
  const answer = (res: ServerResponse, req: IncomingMessage, path: string, a: MetadataAnswer): void => {
    calls.push({ method: req.method ?? 'GET', path, status: a.status });
    res.writeHead(a.status, { 'content-type': 'text/plain', ...a.headers });
    res.end(a.body ?? '');
  };
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://metadata');
    const fault = faults.take(url.pathname);
    if (fault === 'drop' || fault === 'hang') {
      calls.push({ method: req.method ?? 'GET', path: url.pathname, status: 0 });
      // Held: the connection stays open, unanswered, until the client gives up or the server closes.
      if (fault === 'drop') req.socket.destroy();
      return;
    }
    if (fault !== undefined) return answer(res, req, url.pathname, { status: fault });
    const chunks: Buffer[] = [];
    const gone = new AbortController();
    res.once('close', () => gone.abort());
    req.on('data', (c: Buffer) => chunks.push(c));
    req.once('end', () => {
      Promise.resolve()
        .then(() => route({ method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, headers: req.headers, body: Buffer.concat(chunks).toString(), signal: gone.signal }))
        .then(
          (a) => {
            if (!res.destroyed) answer(res, req, url.pathname, a);
          },
          () => {
            if (!res.destroyed) answer(res, req, url.pathname, { status: 500 });
          },
        );
    });
  });
  const port = await listenOnEphemeralPort(server, '127.0.0.1');
  return { url: `http://127.0.0.1:${port}`, calls, close: () => closeServer(server) };
}

/** Runs `change` after `inMs` (at once for 0 or none); the timer does not hold the process open. */
export function scheduleChange(timers: Set<NodeJS.Timeout>, inMs: number | undefined, change: () => void): void {
  if (!inMs) return change();
  const timer = setTimeout(() => {
    timers.delete(timer);
    change();
  }, inMs);
  timer.unref();
  timers.add(timer);
}

/** When a scheduled notice becomes visible: `inMs` from now (default: at once). */
export interface ScheduleOptions {
  inMs?: number;
}

/** What every metadata stand-in has: its address, faults, the requests it got, and close. */
export interface MetadataStandInBase {
  /** `http://127.0.0.1:<port>`: the metadata service's base URL. */
  readonly url: string;
  readonly faults: MetadataFaults;
  /** Every request, in order, with the status answered. */
  readonly calls: readonly MetadataCall[];
  /** Cancels scheduled notices and closes the server, cutting hanging requests. */
  close(): Promise<void>;
}

/** The {@link MetadataStandInBase} of a started server and its scheduled changes. */
export function standInBase(server: MetadataServer, faults: MetadataFaults, timers: Set<NodeJS.Timeout>): MetadataStandInBase {
  return {
    url: server.url,
    faults,
    calls: server.calls,
    close: () => {
      for (const t of timers) clearTimeout(t);
      return server.close();
    },
  };
}
