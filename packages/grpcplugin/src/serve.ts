import type { Http2Server, ServerHttp2Session } from 'node:http2';
import { Server, status, type sendUnaryData, type ServerUnaryCall, type ServiceError } from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { cancelReason } from './cancel-reason.js';
import { PluginError } from './errors.js';
import { eventFromProto } from './event-codec.js';
import {
  HandleStatus,
  PluginServiceService,
  type HandleRequest,
  type HandleResponse,
} from './gen/hollowtrees/plugin/v1/plugin.js';
import type { CloudEvent } from './cloud-event.js';
import type { EventHandler, HandleResult } from './handler.js';
import { jsonLogger, type PluginLogger } from './plugin-logger.js';
import { requiresClientCertificates, serverCredentials, type ServerTlsOptions } from './tls.js';

/** The fully qualified name the plugin service reports in the health service. */
export const PLUGIN_SERVICE_NAME = 'hollowtrees.plugin.v1.PluginService';

/** Options for {@link serve}; every field has a default. */
export interface ServeOptions {
  /**
   * Address to bind. Default `127.0.0.1`: a plugin acts on whatever call reaches it, so it is
   * reachable only from its own host (core beside it, or a sidecar in core's pod) unless asked.
   * Binding another address without mTLS logs a warning.
   */
  host?: string;
  /** TLS, or mTLS when `tls.ca` is set. Default: plaintext. */
  tls?: ServerTlsOptions;
  /** Close gracefully on SIGTERM and SIGINT. Default false. */
  handleSignals?: boolean;
  /** How long `close()` waits for in-flight calls before cancelling them. Default 30 000 ms. */
  shutdownTimeoutMs?: number;
  /** Largest request accepted, in bytes. Default 16 MiB. */
  maxReceiveMessageBytes?: number;
  /** Where `serve` reports an exposed, unauthenticated bind. Default: {@link jsonLogger} with service `hollowtrees-plugin`. */
  logger?: PluginLogger;
}

/** A running plugin server. */
export interface PluginServer {
  /** The bound port (the ephemeral one when `serve` was given 0). */
  readonly port: number;
  /**
   * Reports NOT_SERVING, refuses new calls with UNAVAILABLE, waits for calls in
   * flight (up to `shutdownTimeoutMs`), then stops. Safe to call more than once.
   */
  close(): Promise<void>;
}

function toServiceError(err: unknown): Partial<ServiceError> {
  const e = PluginError.from(err);
  return { code: e.code as number as status, details: e.message };
}

function toResponse(result: HandleResult | void): HandleResponse {
  return {
    status: result?.status === 'skipped' ? HandleStatus.HANDLE_STATUS_SKIPPED : HandleStatus.HANDLE_STATUS_OK,
    message: result?.message ?? '',
    attributes: result?.attributes ?? {},
  };
}

/**
 * HTTP/2 connection-level receive window of every connection the plugin accepts.
 * Node and grpc-js leave it at the RFC default of 64 KiB (grpc-js has no server
 * option for it). Core keeps hundreds of calls in flight on one connection; once
 * their requests exceed that window, nghttp2 on core's side sends a request that
 * did not fit in part, then schedules that stream behind every newer one, so
 * under sustained load its remainder waits until the call's deadline and the
 * handler never sees the call. A window far above what is ever in flight keeps
 * the sender from running dry. Only a credit: no memory is reserved for it.
 */
const CONNECTION_WINDOW_BYTES = 16 * 1024 * 1024;

/** Raises the connection window of each session `server` accepts (see {@link CONNECTION_WINDOW_BYTES}). */
function raiseConnectionWindow(server: Server): void {
  // grpc-js creates its HTTP/2 servers in this private method at bind time; wrapping
  // it on the instance registers the listener before any connection can arrive.
  // Should a grpc-js upgrade drop it, flow-control.test.ts fails.
  const internals = server as unknown as { createHttp2Server?: (...args: unknown[]) => Http2Server };
  const create = internals.createHttp2Server;
  if (typeof create !== 'function') return;
  internals.createHttp2Server = function (this: Server, ...args: unknown[]) {
    const http2Server = create.apply(this, args);
    http2Server.on('session', (session: ServerHttp2Session) => {
      if (!session.destroyed) session.setLocalWindowSize(CONNECTION_WINDOW_BYTES);
    });
    return http2Server;
  };
}

/** True for an address only this host can reach. */
function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return bare === 'localhost' || bare === '::1' || /^127\.\d+\.\d+\.\d+$/.test(bare);
}

function bindError(host: string, port: number, err: Error): Error {
  if (/EADDRINUSE|address already in use/i.test(err.message)) {
    return new Error(`cannot serve on ${host}:${port}: port ${port} is already in use`, { cause: err });
  }
  return new Error(`cannot serve on ${host}:${port}: ${err.message}`, { cause: err });
}

/**
 * Serves `handler` as a Hollowtrees action plugin on `port` (0 for an ephemeral
 * port), together with the standard `grpc.health.v1` health service.
 *
 * @example
 * ```ts
 * import { serve, type EventHandler } from '@hollowtrees/grpcplugin';
 * const handler: EventHandler = { handle: (event) => ({ message: `saw ${event.id}` }) };
 * const server = await serve(9000, handler, { handleSignals: true });
 * ```
 */
export async function serve(port: number, handler: EventHandler, options: ServeOptions = {}): Promise<PluginServer> {
  const host = options.host ?? '127.0.0.1';
  const shutdownTimeoutMs = options.shutdownTimeoutMs ?? 30_000;
  const server = new Server({ 'grpc.max_receive_message_length': options.maxReceiveMessageBytes ?? 16 * 1024 * 1024 });
  raiseConnectionWindow(server);
  const health = new HealthImplementation({ '': 'SERVING', [PLUGIN_SERVICE_NAME]: 'SERVING' });
  health.addToServer(server);

  let closing: Promise<void> | undefined;
  let inFlight = 0;
  let onIdle: (() => void) | undefined;

  const handle = (call: ServerUnaryCall<HandleRequest, HandleResponse>, callback: sendUnaryData<HandleResponse>): void => {
    if (closing) {
      callback({ code: status.UNAVAILABLE, details: 'plugin is shutting down' });
      return;
    }
    const request = call.request;
    if (!request.event) {
      callback({ code: status.INVALID_ARGUMENT, details: 'request has no event' });
      return;
    }
    let event: CloudEvent;
    try {
      event = eventFromProto(request.event);
    } catch (err) {
      // Decoded before anything is counted or timed, so a bad event cannot leak an in-flight slot.
      callback({ code: status.INVALID_ARGUMENT, details: `cannot read the event: ${(err as Error).message}` });
      return;
    }
    inFlight++;
    const controller = new AbortController();
    const deadlineValue = call.getDeadline();
    const deadlineMs = deadlineValue instanceof Date ? deadlineValue.getTime() : deadlineValue;
    const deadline = Number.isFinite(deadlineMs) ? new Date(deadlineMs) : undefined;
    // grpc-js ends a call with 'cancelled' when its deadline passes (its own timer, or the client's
    // reset at the client's deadline) and when the client cancels; the time tells which. It also
    // emits 'cancelled' when a finished call's stream closes: only a pending call is aborted.
    let settled = false;
    call.once('cancelled', () => settled || controller.abort(cancelReason(deadlineMs, Date.now())));

    Promise.resolve()
      .then(() => handler.handle(event, { flow: request.flow, attempt: request.attempt || 1, deadline, signal: controller.signal }))
      .then(
        (result) => {
          settled = true;
          callback(null, toResponse(result));
        },
        (err: unknown) => {
          settled = true;
          callback(toServiceError(err));
        },
      )
      .finally(() => {
        if (--inFlight === 0) onIdle?.();
      });
  };
  server.addService(PluginServiceService, { handle });

  const boundPort = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host}:${port}`, serverCredentials(options.tls), (err, bound) =>
      err ? reject(bindError(host, port, err)) : resolve(bound),
    );
  });

  if (!isLoopback(host) && !requiresClientCertificates(options.tls)) {
    (options.logger ?? jsonLogger({ service: 'hollowtrees-plugin' })).warn(
      `serving on ${host}:${boundPort} without ${options.tls ? 'client certificates' : 'TLS'}: anyone who can reach the port can make this plugin act (drain a node, replace an instance); bind 127.0.0.1, or serve mTLS (tls with ca)`,
      { host, port: boundPort, tls: options.tls !== undefined, mtls: false },
    );
  }

  const drain = (): Promise<void> =>
    inFlight === 0
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, shutdownTimeoutMs);
          onIdle = () => {
            clearTimeout(timer);
            resolve();
          };
        });

  const onSignal = (): void => void close();
  const close = (): Promise<void> => {
    closing ??= (async () => {
      health.setStatus('', 'NOT_SERVING');
      health.setStatus(PLUGIN_SERVICE_NAME, 'NOT_SERVING');
      await drain();
      // A client holding a stream open (a health Watch) would keep tryShutdown waiting.
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), 1_000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      process.off('SIGTERM', onSignal).off('SIGINT', onSignal);
    })();
    return closing;
  };
  if (options.handleSignals) process.once('SIGTERM', onSignal).once('SIGINT', onSignal);

  return { port: boundPort, close };
}
