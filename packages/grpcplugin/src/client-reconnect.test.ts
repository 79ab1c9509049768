import { spawn } from 'node:child_process';
import { rejectionOf } from '@hollowtrees/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import type { CloudEvent } from './cloud-event.js';
import { PluginClient, type PluginTransport } from './client.js';
import { Code, PluginError } from './errors.js';
import type { EventHandler } from './handler.js';
import { serve, type PluginServer } from './serve.js';
import { TRANSPORTS } from './test-support/plugin-pair.js';
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
    async servePlugin(port = 0, handler: EventHandler = { handle: () => ({ attributes: { served: 'yes' } }) }): Promise<PluginServer> {
      const server = await serve(port, handler, { host: '127.0.0.1' });
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// The two transports' suites run side by side (each one's tests one after another, with its own cleanups): most of
// their time is spent waiting, 6 s of it on a plugin that is down, and the two share nothing but the machine.
describe.concurrent.each(TRANSPORTS)('PluginClient over %s when the plugin restarts', (transport) => {
  const { defer, servePlugin, clientFor } = restartablePlugins();

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
