import { isIPv6 } from 'node:net';
import { Server } from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { CallRunner } from './call-runner.js';
import { raiseReceiveWindows } from './receive-windows.js';
import type { EventHandler } from './handler.js';
import { checkedHandler } from './handler-check.js';
import { shown } from './shown-value.js';
import { keepaliveChannelOptions, type KeepaliveOptions } from './keepalive.js';
import { jsonLogger, type PluginLogger } from './plugin-logger.js';
import { checkListenable, hostWithPort } from './listen-check.js';
import { listenFailure } from './listen-failure.js';
import { streamHandle, type OpenStreams } from './serve-stream.js';
import { servedPluginService } from './served-stream-codec.js';
import { unaryHandle } from './serve-unary.js';
import { PLUGIN_SERVICE_NAME } from './service-name.js';
import { stopOnSignals, type SignalStop } from './signal-stop.js';
import { checkedMessageBytes } from './message-limit.js';
import { checkedTimeout } from './timer-limit.js';
import { requiresClientCertificates, serverCredentials, type ServerTlsFiles, type ServerTlsOptions } from './tls.js';

/** Options for {@link serve}; every field has a default. */
export interface ServeOptions {
  /**
   * Address to bind. Default `127.0.0.1`: a plugin acts on whatever call reaches it, so it is
   * reachable only from its own host (core beside it, or a sidecar in core's pod) unless asked.
   * Binding another address without mTLS logs a warning. An IPv6 address may be bare (`::`) or in brackets; a
   * link-local one needs its interface (`fe80::1%eth0`). No port in it: that is `serve()`'s first argument.
   */
  host?: string;
  /**
   * TLS, or mTLS when `tls.ca` is set. Default: plaintext. PEM contents are served until the process
   * ends; `{ files: new TlsFiles({ cert, key, ca }) }` reads the files again as they are renewed.
   */
  tls?: ServerTlsOptions | ServerTlsFiles;
  /**
   * Close gracefully on SIGTERM and SIGINT. Default false. The listeners replace Node's exit on those
   * signals: the process then ends once nothing else holds it, so close your own resources on them too:
   * a {@link SignalStop} does that once the server has stopped (`afterClose`), and logs `stopping` (with
   * `shutdown_timeout_ms`) and `stopped` through `logger`.
   */
  handleSignals?: boolean | SignalStop;
  /** How long `close()` waits for in-flight calls before cancelling them. Default 30 000 ms; at most 2^31-1 ms (24.8 days), a RangeError otherwise. */
  shutdownTimeoutMs?: number;
  /**
   * Largest request message accepted, in bytes. Announced to the client in each
   * `HandleStream`'s response headers, so it batches its calls below it and refuses a single
   * larger call (RESOURCE_EXHAUSTED, as gRPC refuses a unary one). A whole number of at least 1
   * (a RangeError otherwise). Default 16 MiB.
   */
  maxReceiveMessageBytes?: number;
  /**
   * How many calls of one `HandleStream` run at once. Announced to the client in the stream's
   * response headers: it keeps no more calls written and unanswered, so further calls wait in the
   * client, where their deadlines end them before they are sent. From a client that sends more
   * anyway, further calls wait unread, so a busy plugin holds it back through gRPC flow control;
   * a call read starts a turn later, so a cancel already read behind it keeps it from the
   * handler. A call is answered and stops counting
   * at its deadline or cancel, whether or not its handler returned (as a unary call ends at its
   * deadline), so handlers that ignore their signal cannot hold the stream up. Default 1 000.
   */
  maxConcurrentCallsPerStream?: number;
  /**
   * Pings to each client's connection, so calls of a core whose connection was dropped silently
   * on the way (or whose host vanished) are cancelled, their handlers' signals aborting with
   * CANCELLED, rather than running on for a caller that cannot hear the answer and will call again.
   * `false`: no pings. Default {@link DEFAULT_KEEPALIVE}, 30 s and 10 s. The server answers a
   * client's pings at any rate.
   */
  keepalive?: KeepaliveOptions | false;
  /**
   * Where `serve` reports an exposed, unauthenticated bind, and a handler's own failures at error level with the
   * call's `flow`, `event_id`, `attempt` and the error (`err`, with its stack): anything it throws that is no
   * {@link PluginError}, and a result that cannot be sent. Core hears only their message, as INTERNAL. A PluginError
   * the handler throws is its answer and is not logged. Default: {@link jsonLogger} with service `hollowtrees-plugin`.
   */
  logger?: PluginLogger;
}

/** A running plugin server. */
export interface PluginServer {
  /** The bound port (the ephemeral one when `serve` was given 0). */
  readonly port: number;
  /**
   * Reports NOT_SERVING, stops taking connections and sends GOAWAY on the open ones,
   * refuses calls that come on them with UNAVAILABLE marked not started (a stream's
   * `CallStatus.not_started`, a unary call's trailer `hollowtrees-not-started`), so core sends them elsewhere at once, waits for calls in flight (up to
   * `shutdownTimeoutMs`), then stops. Safe to call more than once.
   */
  close(): Promise<void>;
}

/** `host` without the brackets an IPv6 address may come in. */
function bareHost(host: string): string {
  return host.replace(/^\[(.*)\]$/, '$1');
}

/** True for an address only this host can reach. */
function isLoopback(host: string): boolean {
  const bare = bareHost(host).toLowerCase();
  return bare === 'localhost' || bare === '::1' || /^127\.\d+\.\d+\.\d+$/.test(bare);
}

/** `host:port` as grpc-js reads it: a bare IPv6 address (`::`, `::1`) goes in brackets, or `::1:0` is read as host `::1:0`, port 443. */
function bindAddress(host: string, port: number): string {
  return `${isIPv6(host) ? `[${host}]` : host}:${port}`;
}

/** grpc-js's bind error says Node's listen error only in its text (`... errors: [listen EADDRINUSE: ...]`). */
function listenCode(err: Error): string | undefined {
  return (err as NodeJS.ErrnoException).code ?? /\blisten (E[A-Z]+)\b/.exec(err.message)?.[1];
}

/**
 * `cannot serve on <address>: <why, in words>`, with what {@link listenFailure} reads of the listen error: its `code`, and
 * node:net's `address` or each address's `failures` (a link-local address without its interface, a name with several addresses).
 */
function bindError(address: string, err: Error): NodeJS.ErrnoException {
  const code = listenCode(err);
  const { address: listened, failures } = err as { address?: unknown; failures?: unknown };
  const parts = { ...(code && { code }), ...(typeof listened === 'string' && { address: listened }), ...(Array.isArray(failures) && { failures: failures as unknown[] }) };
  const { reason } = listenFailure(Object.keys(parts).length > 0 ? parts : err);
  return Object.assign(new Error(`cannot serve on ${address}: ${reason}`, { cause: err }), parts);
}

/**
 * Serves `handler` as a Hollowtrees action plugin on `port` (0 for an ephemeral
 * port), together with the standard `grpc.health.v1` health service. Both calls
 * of the contract are served, the unary `Handle` and the `HandleStream` core uses
 * by default; the handler sees the same calls, deadlines and cancels from either.
 * Rejects at once with a RangeError when `port` is no whole number from 0 to 65535, with a TypeError when `handler` has no `handle` method (from JavaScript, a bare
 * function: give `{ handle: yourFunction }`) or `host` has a port in it (`0.0.0.0:9000`), and when the port cannot be bound: `cannot serve on 127.0.0.1:9000: the port is already in use`,
 * the error's `code` Node's listen error (`EADDRINUSE`, `EADDRNOTAVAIL`, `EACCES`, `ENOTFOUND`), so {@link listenFailure} tells
 * an address none of this machine's from a busy port.
 *
 * @example
 * ```ts
 * import { serve, type EventHandler } from '@hollowtrees/grpcplugin';
 * const handler: EventHandler = { handle: (event) => ({ message: `saw ${event.id}` }) };
 * const server = await serve(9000, handler, { handleSignals: true });
 * ```
 */
export async function serve(port: number, handler: EventHandler, options: ServeOptions = {}): Promise<PluginServer> {
  // Else `serve(Number(process.env.PORT), ...)` with PORT unset fails with "Failed to parse DNS address dns:127.0.0.1:NaN".
  if (!(Number.isInteger(port) && port >= 0 && port <= 65_535)) {
    throw new RangeError(`serve: port must be a whole number from 0 to 65535 (0 for an ephemeral one), got ${shown(port)}`);
  }
  const logger = options.logger ?? jsonLogger({ service: 'hollowtrees-plugin' });
  const runner = new CallRunner(checkedHandler('serve', handler), logger);
  const maxPerStream = options.maxConcurrentCallsPerStream ?? 1_000;
  // 0 would never read a call; a fraction would read one more than asked.
  if (!Number.isInteger(maxPerStream) || maxPerStream < 1) {
    throw new RangeError(`serve: maxConcurrentCallsPerStream must be a whole number of at least 1, got ${maxPerStream}`);
  }
  const host = options.host ?? '127.0.0.1';
  const split = hostWithPort(host);
  if (split) throw new TypeError(`serve: host "${host}" has a port in it: give the host alone ("${split.host}"), and the port as serve()'s first argument (${split.port})`);
  // Infinity ("wait for every call") would fire at once, and close() cancel the calls it was to wait for.
  const shutdownTimeoutMs = checkedTimeout('serve: shutdownTimeoutMs', options.shutdownTimeoutMs ?? 30_000);
  const maxReceiveBytes = checkedMessageBytes('serve: maxReceiveMessageBytes', options.maxReceiveMessageBytes ?? 16 * 1024 * 1024);
  const server = new Server({ 'grpc.max_receive_message_length': maxReceiveBytes, ...keepaliveChannelOptions('serve: keepalive', options.keepalive) });
  raiseReceiveWindows(server);
  const health = new HealthImplementation({ '': 'SERVING', [PLUGIN_SERVICE_NAME]: 'SERVING' });
  health.addToServer(server);

  const streams: OpenStreams = new Set();
  server.addService(servedPluginService, {
    handle: unaryHandle(runner),
    handleStream: streamHandle(runner, { maxInFlight: maxPerStream, maxReceiveBytes }, streams),
  });

  const address = bindAddress(host, port);
  // Checked with node:net first: its error has a code (an address not this machine's, a name that does not resolve, a port
  // in use), and a bind grpc-js cannot make it also logs to stderr. Its own error is still read should the port go meanwhile.
  await checkListenable(bareHost(host), port).catch((err: Error) => {
    throw bindError(address, err);
  });
  const boundPort = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address, serverCredentials(options.tls), (err, bound) => (err ? reject(bindError(address, err)) : resolve(bound)));
  });

  if (!isLoopback(host) && !requiresClientCertificates(options.tls)) {
    logger.warn(
      `serving on ${bindAddress(host, boundPort)} without ${options.tls ? 'client certificates' : 'TLS'}: anyone who can reach the port can make this plugin act (drain a node, replace an instance); bind 127.0.0.1, or serve mTLS (tls with ca)`,
      { host, port: boundPort, tls: options.tls !== undefined, mtls: false },
    );
  }

  // A renewal that reaches no log would leave an operator guessing which certificate is served.
  const stopObserving =
    options.tls && 'files' in options.tls
      ? options.tls.files.observe({
          onChange: () => logger.info('TLS files read again: new connections get the renewed certificate'),
          onError: (err) => logger.warn('TLS files read again but not taken: the certificate read before is still served', { error: err.message }),
        })
      : undefined;

  let closing: Promise<void> | undefined;
  let stopListening: (() => void) | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      health.setStatus('', 'NOT_SERVING');
      health.setStatus(PLUGIN_SERVICE_NAME, 'NOT_SERVING');
      // At once, not after the calls in flight: no new connection is taken, and the open ones get GOAWAY,
      // so a client opens its next stream on a new connection (another pod behind a Service, or this
      // plugin restarted) while the streams open here carry their calls' answers. Refusing new calls on a
      // connection kept open instead held core to this plugin for up to shutdownTimeoutMs.
      let connectionsClosed = false;
      const allClosed = new Promise<void>((resolve) =>
        server.tryShutdown(() => {
          connectionsClosed = true;
          resolve();
        }),
      );
      const drained = runner.drain(shutdownTimeoutMs);
      for (const stream of streams) stream.refuseWaiting();
      await drained;
      // Each stream ends once its calls are answered.
      for (const stream of streams) stream.finish();
      // A client holding a stream open (a health Watch) would keep tryShutdown waiting; and grpc-js'
      // tryShutdown never calls back once a connection was dropped by keepalive (it waits on the dead
      // session's close()), so the forced shutdown ends close() itself.
      let force: NodeJS.Timeout | undefined;
      await Promise.race([allClosed, new Promise<void>((resolve) => (force = setTimeout(resolve, 1_000)))]);
      clearTimeout(force);
      if (!connectionsClosed) server.forceShutdown();
      stopListening?.();
      stopObserving?.();
    })();
    return closing;
  };
  if (options.handleSignals) {
    const stop = options.handleSignals === true ? undefined : options.handleSignals;
    stopListening = stopOnSignals(close, stop, { logger, shutdownTimeoutMs });
  }

  return { port: boundPort, close };
}
