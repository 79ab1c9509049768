import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { systemClock } from '@hollowtrees/grpcplugin';
import { grpcActionPlugin } from '../plugins/grpc-action-plugin.js';
import { runPlugins } from './run-plugins.js';

/** A loopback port nothing listens on: taken, then given back. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('runPlugins', () => {
  it('a plugin that cannot be reached fails the run naming the connection error, without grpc-js\' dangling "Resolution note:"', async () => {
    const plugin = grpcActionPlugin({ name: 'drain', address: `127.0.0.1:${await closedPort()}`, timeoutMs: 300, retry: { attempts: 1, initialBackoff: 0, maxBackoff: 0, multiplier: 1 } });
    try {
      const event = { id: 'e1', source: 's', specversion: '1.0', type: 't', data: { labels: {} } };
      const result = await runPlugins({ event, attributes: {} }, 'spot', [plugin], { clock: systemClock, random: () => 0, signal: new AbortController().signal });
      expect(result.outcome).toBe('failed');
      expect(result.error).toMatch(/^drain: UNAVAILABLE: .*ECONNREFUSED/);
      expect(result.error).not.toMatch(/Resolution note/);
      expect(result.calls[0]!.message).not.toMatch(/Resolution note/);
    } finally {
      await plugin.close();
    }
  });
});
