import { rejectionOf, startTcpRelay, type TcpRelay } from '@hollowtrees/testkit';
import { describe, expect, it } from 'vitest';
import { PluginClient, type PluginClientOptions } from './client.js';
import { Code, PluginError } from './errors.js';
import type { EventHandler } from './handler.js';
import { MAX_TIMER_MS } from './timer-limit.js';
import { serve, type PluginServer, type ServeOptions } from './serve.js';
import { pluginPairs, TRANSPORTS, testEvent as event } from './test-support/plugin-pair.js';

const pairs = pluginPairs();
const rejection = (p: Promise<unknown>): Promise<PluginError> => rejectionOf(p, PluginError);
/**
 * Pings far more often than in production, so a test sees a dead connection noticed within about a
 * second; a second for the answer, so a busy test machine's stalled event loop is not taken for a dead peer.
 */
const FAST = { timeMs: 200, timeoutMs: 1_000 };

/** A plugin served behind a relay, and a client that reaches it through the relay. */
async function behindRelay(handler: EventHandler, serveOptions: ServeOptions, clientOptions: PluginClientOptions): Promise<{ server: PluginServer; relay: TcpRelay; client: PluginClient }> {
  const server = await serve(0, handler, { host: '127.0.0.1', ...serveOptions });
  const relay = await startTcpRelay(server.port);
  const client = new PluginClient(`127.0.0.1:${relay.port}`, clientOptions);
  pairs.defer(() => server.close());
  pairs.defer(() => relay.close());
  pairs.defer(() => client.close());
  return { server, relay, client };
}

describe.each(TRANSPORTS)('client keepalive over %s', (transport) => {
  it('a connection dropped silently on the way fails the call on it with UNAVAILABLE, and the next call goes over a new connection', async () => {
    const { relay, client } = await behindRelay({ handle: () => ({ message: 'done' }) }, {}, { transport, keepalive: FAST });
    await client.handle(event, { flow: 'f' });
    relay.blackholeOpenConnections();
    // The deadline is far off: what ends the call is the unanswered ping.
    const err = await rejection(client.handle(event, { flow: 'f', timeoutMs: 60_000 }));
    expect(err.code).toBe(Code.Unavailable);
    expect(await client.handle(event, { flow: 'f', timeoutMs: 10_000 })).toMatchObject({ message: 'done' });
    expect(relay.accepted).toBe(2);
  });

  it('without pings, a call on a connection dropped silently waits out its deadline', async () => {
    const { relay, client } = await behindRelay({ handle: () => ({ message: 'done' }) }, {}, { transport, keepalive: false });
    await client.handle(event, { flow: 'f' });
    relay.blackholeOpenConnections();
    expect((await rejection(client.handle(event, { flow: 'f', timeoutMs: 1_000 }))).code).toBe(Code.DeadlineExceeded);
  });
});

describe('serve() keepalive', () => {
  it('cancels the calls of a client whose connection was dropped silently: the handler\'s signal aborts with CANCELLED', async () => {
    let entered!: () => void;
    const inHandler = new Promise<void>((resolve) => (entered = resolve));
    let aborted!: (reason: unknown) => void;
    const abortReason = new Promise<unknown>((resolve) => (aborted = resolve));
    const handler: EventHandler = {
      handle: (_e, { signal }) =>
        new Promise<void>((resolve) => {
          entered();
          signal.addEventListener('abort', () => (aborted(signal.reason), resolve()));
        }),
    };
    const { server, relay, client } = await behindRelay(handler, { keepalive: FAST }, { keepalive: false });
    // Fails when the client is closed after the test.
    client.handle(event, { flow: 'f', timeoutMs: 60_000 }).catch(() => {});
    await inHandler;
    relay.blackholeOpenConnections();
    expect(await abortReason).toMatchObject({ code: Code.Canceled });
    // grpc-js' own graceful shutdown never ends once its keepalive dropped a connection.
    await server.close();
  });

  it('answers a client that pings very often without closing its connection', async () => {
    const { relay, client } = await behindRelay({ handle: () => ({ message: 'done' }) }, {}, { keepalive: { timeMs: 10, timeoutMs: 5_000 } });
    await client.handle(event, { flow: 'f' });
    // Some 50 pings on the open stream: a server enforcing gRPC's usual 5-minute minimum would send GOAWAY.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await client.handle(event, { flow: 'f' })).toMatchObject({ message: 'done' });
    expect(relay.accepted).toBe(1);
  });
});

describe('keepalive options', () => {
  it.each([0, -1, 1.5, Number.NaN, Infinity, MAX_TIMER_MS + 1])('refuses %s ms, naming the option', async (ms) => {
    expect(() => new PluginClient('127.0.0.1:1', { keepalive: { timeMs: ms, timeoutMs: 1_000 } })).toThrow(/^PluginClient: keepalive\.timeMs must be a whole number of milliseconds from 1 to/);
    await expect(serve(0, { handle: () => {} }, { keepalive: { timeMs: 1_000, timeoutMs: ms } })).rejects.toThrow(/^serve: keepalive\.timeoutMs must be a whole number/);
  });
});
