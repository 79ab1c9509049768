import { rejectionOf } from '@hollowtrees/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import type { CloudEvent } from './cloud-event.js';
import { PluginClient } from './client.js';
import { Code, PluginError } from './errors.js';
import { serve, type PluginServer } from './serve.js';

const event: CloudEvent = { id: '1', source: 'test', specversion: '1.0', type: 'test.event' };
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function servePlugin(port = 0): Promise<PluginServer> {
  const server = await serve(port, { handle: () => ({ attributes: { served: 'yes' } }) }, { host: '127.0.0.1' });
  cleanups.push(() => server.close());
  return server;
}

function clientFor(port: number): PluginClient {
  const client = new PluginClient(`127.0.0.1:${port}`);
  cleanups.push(() => client.close());
  return client;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('PluginClient when the plugin restarts', () => {
  it('a call made while the plugin is down waits for it within its deadline and is served once it is back', async () => {
    const first = await servePlugin();
    const client = clientFor(first.port);
    expect((await client.handle(event, { flow: 'f' })).attributes).toEqual({ served: 'yes' });
    await first.close();
    const call = client.handle(event, { flow: 'f', timeoutMs: 8_000 });
    await sleep(500);
    await servePlugin(first.port);
    expect((await call).attributes).toEqual({ served: 'yes' });
  });

  it('reconnects within about two seconds of the plugin coming back, however long it was down', async () => {
    const first = await servePlugin();
    const client = clientFor(first.port);
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

  it('a plugin that never comes back: UNAVAILABLE with the connection error once the deadline passes', async () => {
    const gone = await servePlugin();
    const client = clientFor(gone.port);
    await gone.close();
    const started = Date.now();
    const err = await rejectionOf(client.handle(event, { flow: 'f', timeoutMs: 1_000 }), PluginError);
    expect(err.code).toBe(Code.Unavailable);
    expect(err.message).toMatch(/ECONNREFUSED/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });
});
