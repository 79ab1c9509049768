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

/**
 * HTTP/2 receive window of each stream a client opens (SETTINGS_INITIAL_WINDOW_SIZE),
 * 64 KiB by default as well. Over the stream transport every call core makes to this
 * plugin travels on one HTTP/2 stream, so that window is what core may have in transit
 * before the plugin has read it: about 90 calls of a 700-byte event, where core keeps up
 * to 1,000 in flight. Each 64 KiB then waited for this process to be scheduled, read and
 * send a WINDOW_UPDATE, and on two busy cores core's event loop idled in those waits.
 * 2 MiB lets core's default 1,000 calls of an event of up to ~2 KB through unread. It is
 * also about the most a stream buffers here (beside the chunk being read) while `serve()`
 * holds its reading back (a slow handler, its calls beyond `maxConcurrentCallsPerStream`):
 * the client waits beyond it.
 */
export const STREAM_WINDOW_BYTES = 2 * 1024 * 1024;

/** Raises the connection and stream receive windows of each session `server` accepts (see {@link CONNECTION_WINDOW_BYTES}, {@link STREAM_WINDOW_BYTES}). */
export function raiseReceiveWindows(server: Server): void {
  // grpc-js creates its HTTP/2 servers in this private method at bind time; wrapping
  // it on the instance registers the listener before any connection can arrive.
  // Should a grpc-js upgrade drop it, flow-control.test.ts fails.
  const internals = server as unknown as { createHttp2Server?: (...args: unknown[]) => Http2Server };
  const create = internals.createHttp2Server;
  if (typeof create !== 'function') return;
  internals.createHttp2Server = function (this: Server, ...args: unknown[]) {
    const http2Server = create.apply(this, args);
    http2Server.on('session', (session: ServerHttp2Session) => {
      // A throw here would escape the server's connection handler and end the plugin: a session that is gone (or that
      // nghttp2 destroyed for want of memory while taking the first setting) only loses its larger windows.
      try {
        session.setLocalWindowSize(CONNECTION_WINDOW_BYTES);
        session.settings({ initialWindowSize: STREAM_WINDOW_BYTES });
      } catch {
        // the session is destroyed: nothing to raise
      }
    });
    return http2Server;
  };
}
