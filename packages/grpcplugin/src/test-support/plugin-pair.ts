import { afterEach } from 'vitest';
import { PluginClient, type PluginClientOptions, type PluginTransport } from '../client.js';
import type { CloudEvent } from '../cloud-event.js';
import type { EventHandler } from '../handler.js';
import { serve, type PluginServer, type ServeOptions } from '../serve.js';

/** The transports a suite of transport behaviour runs over, with `describe.each`. */
export const TRANSPORTS: ReadonlyArray<Exclude<PluginTransport, 'auto'>> = ['stream', 'unary'];

/** A minimal valid event. */
export const testEvent: CloudEvent = { id: '1', source: 'test', specversion: '1.0', type: 'test.event', data: { labels: { node: 'n1' } } };

/** Starts real servers and clients on loopback and stops them after each test of the calling file. */
export interface PluginPairs {
  /** Serves `handler` on an ephemeral port of 127.0.0.1 (or `serveOptions.host`) and connects a client to it. */
  start(handler: EventHandler, serveOptions?: ServeOptions, clientOptions?: PluginClientOptions): Promise<{ server: PluginServer; client: PluginClient }>;
  /** {@link start} with clients that use `transport`. */
  over(transport: PluginTransport): PluginPairs['start'];
  /** Runs `cleanup` after the test, before what was registered earlier. */
  defer(cleanup: () => unknown): void;
}

/** Call at the top of a test file: registers the `afterEach` that stops what the tests started. */
export function pluginPairs(): PluginPairs {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  const start: PluginPairs['start'] = async (handler, serveOptions = {}, clientOptions = {}) => {
    const server = await serve(0, handler, { host: '127.0.0.1', ...serveOptions });
    const client = new PluginClient(`${serveOptions.host ?? '127.0.0.1'}:${server.port}`, clientOptions);
    cleanups.push(() => server.close(), () => client.close());
    return { server, client };
  };
  return {
    start,
    over: (transport) => (handler, serveOptions, clientOptions) => start(handler, serveOptions, { transport, ...clientOptions }),
    defer: (cleanup) => void cleanups.push(cleanup),
  };
}
