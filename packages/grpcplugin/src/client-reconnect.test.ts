import { spawn } from 'node:child_process';
import { constants as http2Constants, createServer as createHttp2Server, type ServerHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { rejectionOf, startTcpRelay, type TcpRelayOptions } from '@hollowtrees/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import type { CloudEvent } from './cloud-event.js';
import { PluginClient, type PluginTransport } from './client.js';
import { Code, PluginError } from './errors.js';
import type { EventHandler } from './handler.js';
import type { PluginServer, ServeOptions } from './serve.js';
import { TRANSPORTS } from './test-support/plugin-pair.js';
import { serveAgainOn } from './test-support/serve-again.js';
import { stuckPluginProcess } from './test-support/stuck-plugin-process.js';

const event: CloudEvent = { id: '1', source: 'test', specversion: '1.0', type: 'test.event' };

/** Servers and clients of the calling suite's tests, each closed after its test; call inside a `describe`. */
function restartablePlugins() {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  return {
    defer: (cleanup: () => unknown): void => void cleanups.push(cleanup),
    async servePlugin(port = 0, handler: EventHandler = { handle: () => ({ attributes: { served: 'yes' } }) }, options: ServeOptions = {}): Promise<PluginServer> {
      const server = await serveAgainOn(port, handler, { host: '127.0.0.1', ...options });
      cleanups.push(() => server.close());
      return server;
    },
    clientFor(port: number, transport: PluginTransport): PluginClient {
      const client = new PluginClient(`127.0.0.1:${port}`, { transport });
      cleanups.push(() => client.close());
      return client;
    },
  };
}

/**
 * A plugin behind one address (a Service) replaced in a rolling update: the old one closes with a call in
 * flight while new connections reach the new one. `oldOptions` for the old plugin's serve(); the call named
 * `long` blocks in the old plugin until released. Each plugin records the calls it saw. `relayOptions` for the Service's relay.
 */
async function rollingUpdate({ defer, servePlugin, clientFor }: RestartablePlugins, transport: PluginTransport, oldOptions: ServeOptions = {}, relayOptions: TcpRelayOptions = {}) {
  const oldSaw: string[] = [];
  let release!: () => void;
  let entered!: () => void;
  const inHandler = new Promise<void>((resolve) => (entered = resolve));
  const old = await servePlugin(
    0,
    {
      handle: ({ id }) => {
        oldSaw.push(id);
        if (id !== 'long') return { attributes: { served: 'old' } };
        entered();
        return new Promise((resolve) => (release = () => resolve({ attributes: { served: 'old' } })));
      },
    },
    oldOptions,
  );
  const nextSaw: string[] = [];
  const next = await servePlugin(0, {
    handle: ({ id }, { attempt }) => {
      nextSaw.push(`${id} attempt ${attempt}`);
      return { attributes: { served: 'next' } };
    },
  });
  const service = await startTcpRelay(old.port, relayOptions);
  defer(() => service.close());
  const client = clientFor(service.port, transport);
  const long = client.handle({ ...event, id: 'long' }, { flow: 'f', timeoutMs: 20_000 });
  await inHandler;
  return { old, next, service, client, long, oldSaw, nextSaw, release: () => release() };
}

type RestartablePlugins = ReturnType<typeof restartablePlugins>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// The two transports' suites run side by side (each one's tests one after another, with its own cleanups): most of
// their time is spent waiting, 6 s of it on a plugin that is down, and the two share nothing but the machine.
describe.concurrent.each(TRANSPORTS)('PluginClient over %s when the plugin restarts', (transport) => {
  const plugins = restartablePlugins();
  const { defer, servePlugin, clientFor } = plugins;

  it.sequential('a call made while the plugin is down waits for it within its deadline and is served once it is back', async () => {
    const first = await servePlugin();
    const client = clientFor(first.port, transport);
    expect((await client.handle(event, { flow: 'f' })).attributes).toEqual({ served: 'yes' });
    await first.close();
    const call = client.handle(event, { flow: 'f', timeoutMs: 8_000 });
    await sleep(500);
    await servePlugin(first.port);
    expect((await call).attributes).toEqual({ served: 'yes' });
  });

  it.sequential('a call sent again once the plugin is back goes as the attempt and flow it was made with, though the caller changed its options object meanwhile', async () => {
    // A caller that reuses its options object: the next attempt's number set while this one waits for the plugin.
    const gone = await servePlugin();
    await gone.close();
    const client = clientFor(gone.port, transport);
    const options = { flow: 'f', attempt: 1, timeoutMs: 8_000 };
    const call = client.handle(event, options);
    await sleep(500); // it failed to connect and waits for the plugin
    Object.assign(options, { flow: 'other', attempt: 2 });
    const saw: string[] = [];
    await servePlugin(gone.port, { handle: (_e, { flow, attempt }) => void saw.push(`${flow} attempt ${attempt}`) });
    await call;
    expect(saw).toEqual(['f attempt 1']);
  });

  it.sequential('a call the plugin may have received is not sent again when the plugin is back within the deadline: it fails UNAVAILABLE, and the caller retries it as its next attempt', async () => {
    // The plugin crashes (SIGKILL) while it acts on the call. Sending the call again here, as attempt 1 again, bypassed core's
    // retry policy and attempt numbers, and had the restarted plugin act on it a second time behind core's back.
    const plugin = await stuckPluginProcess(1, defer);
    const client = clientFor(plugin.port, transport);
    const call = rejectionOf(client.handle(event, { flow: 'f', attempt: 1, timeoutMs: 5_000 }), PluginError);
    await plugin.allIn;
    await plugin.kill();
    const attempts: number[] = [];
    await servePlugin(plugin.port, { handle: (_e, { attempt }) => void attempts.push(attempt) });
    expect((await call).code).toBe(Code.Unavailable);
    await client.handle(event, { flow: 'f', attempt: 2 });
    expect(attempts).toEqual([2]);
  });

  it.sequential('reconnects within about two seconds of the plugin coming back, however long it was down', async () => {
    const first = await servePlugin();
    const client = clientFor(first.port, transport);
    await client.handle(event, { flow: 'f' });
    await first.close();
    // Down for 6 s while calls keep failing: grpc-js' default backoff (1 s growing 1.6x, up to 120 s) would
    // now wait up to ~7 s before its next attempt; the bounded one tries again within 2 s.
    const downUntil = Date.now() + 6_000;
    while (Date.now() < downUntil) {
      const err = await rejectionOf(client.handle(event, { flow: 'f', timeoutMs: 300 }), PluginError);
      expect(err.code).toBe(Code.Unavailable);
    }
    await servePlugin(first.port);
    expect((await client.handle(event, { flow: 'f', timeoutMs: 3_500 })).attributes).toEqual({ served: 'yes' });
  });

  it.sequential('a call left waiting for a plugin does not keep the process alive once the client is closed', async () => {
    const gone = await servePlugin();
    await gone.close();
    // A process of its own, on the built package: only its exit shows what still holds the event loop.
    const script = `
      import { PluginClient } from ${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)};
      const client = new PluginClient('127.0.0.1:${gone.port}', { transport: '${transport}' });
      const cancel = new AbortController();
      client.handle({ id: '1', source: 's', specversion: '1.0', type: 't' }, { flow: 'f', timeoutMs: 30000, signal: cancel.signal }).catch(() => {});
      setTimeout(() => { cancel.abort(); client.close(); }, 500);`;
    const started = Date.now();
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'ignore' });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it.sequential('a call given up while it waits for the plugin fails as one given up before it was sent: CANCELLED, not UNAVAILABLE (which core retries)', async () => {
    const gone = await servePlugin();
    await gone.close();
    const client = clientFor(gone.port, transport);
    const cancel = new AbortController();
    const cancelled = rejectionOf(client.handle(event, { flow: 'f', timeoutMs: 10_000, signal: cancel.signal }), PluginError);
    const closed = rejectionOf(client.handle(event, { flow: 'f', timeoutMs: 10_000 }), PluginError);
    await sleep(500); // both have failed to connect and wait for the plugin
    cancel.abort();
    expect(await cancelled).toMatchObject({ code: Code.Canceled, message: expect.stringMatching(/^call cancelled/) });
    client.close();
    expect(await closed).toMatchObject({ code: Code.Canceled, message: expect.stringMatching(/closed/) });
  });

  it.sequential('a rolling update: calls made while the old plugin waits for its call in flight go to the new one at once; that call is answered by the old one', async () => {
    const { old, next, service, client, long, oldSaw, nextSaw, release } = await rollingUpdate(plugins, transport);
    service.retarget(next.port);
    const closing = old.close();
    // Before, the old plugin refused them "shutting down" on the connection it kept open (for up to its
    // shutdownTimeoutMs, 30 s), and core's retries went the same way.
    expect((await client.handle({ ...event, id: 'during' }, { flow: 'f', timeoutMs: 10_000 })).attributes).toEqual({ served: 'next' });
    release();
    expect((await long).attributes).toEqual({ served: 'old' });
    await closing;
    expect(oldSaw).toEqual(['long']);
    expect(nextSaw).toEqual(['during attempt 1']);
  });

  it.sequential('a rolling update whose old plugin cuts its call in flight at shutdownTimeoutMs: UNAVAILABLE, which core retries on the new one, not CANCELLED, which fails the run', async () => {
    const { old, next, service, long } = await rollingUpdate(plugins, transport, { shutdownTimeoutMs: 100 });
    service.retarget(next.port);
    await old.close();
    const err = await rejectionOf(long, PluginError);
    // Over unary the reset came through as grpc-js' CANCELLED "Call cancelled": a code core does not retry.
    expect(err.code).toBe(Code.Unavailable);
    // The reset, or the connection dropped with it: grpc-js reports whichever it sees first.
    expect(err.message).toMatch(/before (the call|it) was answered|Connection dropped/);
  });

  it.sequential('a plugin that never comes back: UNAVAILABLE with the connection error once the deadline passes', async () => {
    const gone = await servePlugin();
    const client = clientFor(gone.port, transport);
    await gone.close();
    const started = Date.now();
    const err = await rejectionOf(client.handle(event, { flow: 'f', timeoutMs: 1_000 }), PluginError);
    expect(err.code).toBe(Code.Unavailable);
    expect(err.message).toMatch(/ECONNREFUSED/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });
});

describe('PluginClient over stream when the plugin closes', () => {
  const plugins = restartablePlugins();

  it('a call made as an idle plugin closes, which ends the stream before reading it, goes to the new one at once, as the same attempt', async () => {
    const oldSaw: string[] = [];
    const old = await plugins.servePlugin(0, { handle: ({ id }) => (oldSaw.push(id), { attributes: { served: 'old' } }) });
    const nextSaw: string[] = [];
    const next = await plugins.servePlugin(0, { handle: ({ id }, { attempt }) => (nextSaw.push(`${id} attempt ${attempt}`), { attributes: { served: 'next' } }) });
    const service = await startTcpRelay(old.port);
    plugins.defer(() => service.close());
    const client = plugins.clientFor(service.port, 'stream');
    // The stream is open, and no call is in flight on it.
    expect((await client.handle({ ...event, id: 'before' }, { flow: 'f' })).attributes).toEqual({ served: 'old' });
    service.retarget(next.port);
    const closing = old.close();
    // Written on the open stream as the old plugin, with nothing to wait for, ends it. Before, the stream's OK end failed it as
    // UNAVAILABLE that may have reached the plugin: core retried it after a backoff, an attempt spent (a run failed with attempts: 1).
    expect((await client.handle({ ...event, id: 'during' }, { flow: 'f', attempt: 2, timeoutMs: 10_000 })).attributes).toEqual({ served: 'next' });
    await closing;
    expect(oldSaw).toEqual(['before']);
    expect(nextSaw).toEqual(['during attempt 2']);
  });

  it('a call waiting for a slot on the old plugin\'s stream goes to the new one at once as the old one closes (GOAWAY), as the same attempt', async () => {
    const { old, next, service, client, long, oldSaw, nextSaw, release } = await rollingUpdate(plugins, 'stream', { maxConcurrentCallsPerStream: 1 });
    const queued = client.handle({ ...event, id: 'queued' }, { flow: 'f', attempt: 2, timeoutMs: 10_000 });
    // It waits in the client behind `long`, which holds the stream's one slot (a plugin not served by this SDK's client
    // would have it read and refused as not started: stream-transport.test.ts).
    await sleep(200);
    service.retarget(next.port);
    const closing = old.close();
    // Before, it waited for `long` to end, then was refused "shutting down" as a plain UNAVAILABLE: an attempt spent.
    expect((await queued).attributes).toEqual({ served: 'next' });
    release();
    expect((await long).attributes).toEqual({ served: 'old' });
    await closing;
    expect(oldSaw).toEqual(['long']);
    expect(nextSaw).toEqual(['queued attempt 2']);
  });
  it.each(['a stream', 'a unary call after the fallback'] as const)(
    '%s the old plugin refuses unprocessed as it goes away (GOAWAY, then REFUSED_STREAM) goes to the new one at once, as the same attempt',
    async (what) => {
      // The old pod's HTTP/2 layer as it goes away: GOAWAY naming no stream it processed, and the client's stream reset
      // REFUSED_STREAM, which HTTP/2 promises was never processed. The next connection reaches the new plugin. For the
      // unary case it first answers the stream UNIMPLEMENTED, as a plugin without HandleStream: the client falls back.
      const old = createHttp2Server();
      const refused: string[] = [];
      old.on('stream', (stream, headers) => {
        stream.on('error', () => {});
        if (what !== 'a stream' && String(headers[':path']).endsWith('/HandleStream')) {
          stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12', 'grpc-message': 'no stream' }, { endStream: true });
          return;
        }
        refused.push(String(headers[':path']).split('/').pop()!);
        stream.session?.goaway(http2Constants.NGHTTP2_NO_ERROR, 0);
        stream.close(http2Constants.NGHTTP2_REFUSED_STREAM);
      });
      const sessions = new Set<ServerHttp2Session>();
      old.on('session', (session) => sessions.add(session.on('error', () => {})));
      await new Promise<void>((resolve) => old.listen(0, '127.0.0.1', resolve));
      plugins.defer(() => new Promise((resolve) => (old.close(resolve), sessions.forEach((session) => session.destroy()))));
      const nextSaw: string[] = [];
      const next = await plugins.servePlugin(0, { handle: ({ id }, { attempt }) => (nextSaw.push(`${id} attempt ${attempt}`), { attributes: { served: 'next' } }) });
      const service = await startTcpRelay((old.address() as AddressInfo).port, { onClientBytes: () => service.retarget(next.port) });
      plugins.defer(() => service.close());
      const client = plugins.clientFor(service.port, 'auto');
      // Before, with no retry buffer grpc-js no longer retried the refused call itself, and the client failed it as
      // UNAVAILABLE that may have reached the plugin: core retried it after a backoff as a new attempt (a run failed with attempts: 1).
      expect((await client.handle({ ...event, id: 'refused' }, { flow: 'f', attempt: 2, timeoutMs: 10_000 })).attributes).toEqual({ served: 'next' });
      expect(refused).toEqual([what === 'a stream' ? 'HandleStream' : 'Handle']);
      expect(nextSaw).toEqual(['refused attempt 2']);
    },
  );
});

describe('PluginClient over unary when the plugin closes', () => {
  const plugins = restartablePlugins();

  it('a call whose request the old plugin has begun to read as it closes is refused as not started, and goes to the new one at once, as the same attempt', async () => {
    // The request's first bytes (its headers) reach the old plugin before it closes, the rest only after: the call
    // is on a connection it still serves, and its handler would start after the plugin began to refuse calls.
    let chunks: number | undefined;
    let headersIn!: () => void;
    const headersSent = new Promise<void>((resolve) => (headersIn = resolve));
    const onClientBytes = (): void => {
      if (chunks === undefined) return;
      if (++chunks === 1) headersIn();
      if (chunks === 2) service.delayNextClientBytes(1_000);
    };
    const { old, next, service, client, long, oldSaw, nextSaw, release } = await rollingUpdate(plugins, 'unary', {}, { onClientBytes });
    chunks = 0;
    // 1 MiB: more than HTTP/2 lets a client send before the server reads, so it cannot arrive in the first chunk.
    const during = client.handle({ ...event, id: 'during', data: { padding: 'x'.repeat(1024 * 1024) } }, { flow: 'f', attempt: 2, timeoutMs: 10_000 });
    await headersSent;
    await sleep(200);
    service.retarget(next.port);
    const closing = old.close();
    try {
      // Before, the old plugin's refusal came as a plain UNAVAILABLE "plugin is shutting down": core retried it after a
      // backoff, as a new attempt (a run with attempts: 1 failed), where the stream marks it not_started.
      expect((await during).attributes).toEqual({ served: 'next' });
    } finally {
      release();
    }
    expect((await long).attributes).toEqual({ served: 'old' });
    await closing;
    expect(oldSaw).toEqual(['long']);
    expect(nextSaw).toEqual(['during attempt 2']);
  });
});
