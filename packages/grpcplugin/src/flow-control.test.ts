/**
 * Regression: under sustained load (every finished call immediately replaced, as
 * core's flow engine does), hundreds of concurrent requests on one channel
 * exhaust a 64 KiB HTTP/2 connection window. nghttp2 on the client then sends a
 * request that did not fit in part and schedules that stream behind every newer
 * one: the rest of the request starves until the deadline and the handler never
 * sees the call. serve() raises the window; without it, a score of calls over unary starve.
 * And each stream's window: over the stream transport all of core's calls share one stream.
 */
import { connect } from 'node:http2';
import { afterEach, describe, expect, it } from 'vitest';
import type { CloudEvent } from './cloud-event.js';
import { PluginClient } from './client.js';
import { Code, PluginError } from './errors.js';
import { CONNECTION_WINDOW_BYTES, STREAM_WINDOW_BYTES } from './receive-windows.js';
import { serve } from './serve.js';
import { TRANSPORTS } from './test-support/plugin-pair.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const CONCURRENCY = 256;
const CALLS = CONCURRENCY * 3;
// Long enough for a call on a busy machine (256 in flight at once); a starved call waits for ever.
const TIMEOUT_MS = 10_000;
// ~1.6 KB requests: 256 of them are far more than 64 KiB.
const event = (id: number): CloudEvent => ({ id: String(id), source: 'test', specversion: '1.0', type: 'test.event', data: { labels: { pad: 'x'.repeat(1_500) } } });

describe.each(TRANSPORTS)('sustained concurrent load on one channel over %s', (transport) => {
  it('delivers every call to the handler: none starves behind the HTTP/2 connection window', async () => {
    let received = 0;
    const server = await serve(0, { handle: () => void received++ }, { host: '127.0.0.1' });
    const client = new PluginClient(`127.0.0.1:${server.port}`, { transport });
    cleanups.push(() => server.close(), () => client.close());

    let sent = 0;
    let unsettled = CALLS;
    let deadlineExceeded = 0;
    // The load goes on until each of the first CALLS calls is settled: a starved one is starved
    // only while newer calls keep coming, so it is held until its deadline, not let through at the end.
    const worker = async (): Promise<void> => {
      while (unsettled > 0) {
        const id = ++sent;
        try {
          await client.handle(event(id), { flow: 'f', timeoutMs: TIMEOUT_MS });
        } catch (err) {
          if (!(err instanceof PluginError && err.code === Code.DeadlineExceeded)) throw err;
          deadlineExceeded++;
        } finally {
          if (id <= CALLS) unsettled--;
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));

    expect(deadlineExceeded, `${deadlineExceeded} of ${sent} calls hit the ${TIMEOUT_MS} ms deadline`).toBe(0);
    expect(received).toBe(sent);
  });
});

describe("a served plugin's HTTP/2 windows", () => {
  it('let a client have 2 MiB of calls in transit on one stream before the plugin reads them, not 64 KiB', async () => {
    const server = await serve(0, { handle: () => undefined }, { host: '127.0.0.1' });
    const session = connect(`http://127.0.0.1:${server.port}`);
    cleanups.push(() => server.close(), () => session.close());
    await new Promise((resolve) => session.once('connect', resolve));
    // The plugin's SETTINGS frames all come before its answer to a ping sent after connecting.
    await new Promise<void>((resolve, reject) => session.ping((err) => (err ? reject(err) : resolve())));
    // What each stream (over the stream transport: all calls) may send before the plugin reads it: 65535 before.
    expect(session.remoteSettings.initialWindowSize).toBe(2 * 1024 * 1024);
    expect(STREAM_WINDOW_BYTES).toBe(2 * 1024 * 1024);
    // And the connection's window, raised before, larger still.
    expect(session.state.remoteWindowSize).toBe(CONNECTION_WINDOW_BYTES);
  });
});
