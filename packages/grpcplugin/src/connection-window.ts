import type { Http2Server, ServerHttp2Session } from 'node:http2';
import type { Server } from '@grpc/grpc-js';

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
export const CONNECTION_WINDOW_BYTES = 16 * 1024 * 1024;

/** Raises the connection window of each session `server` accepts (see {@link CONNECTION_WINDOW_BYTES}). */
export function raiseConnectionWindow(server: Server): void {
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
