import { getEventListeners } from 'node:events';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startGceMetadataStandIn, startImdsStandIn } from '@hollowtrees/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_METADATA_ANSWER_BYTES, metadataRequest } from './metadata-request.js';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

/**
 * What the signal still holds on to for signals made from it: its abort listeners, and the signals
 * `AbortSignal.any()` derived from it (Node keeps those in an internal set; absent, nothing is held).
 */
function heldBy(signal: AbortSignal): number {
  const dependants = Object.getOwnPropertySymbols(signal).find((s) => s.description === 'kDependantSignals');
  const set = dependants === undefined ? undefined : (signal as unknown as Record<symbol, Set<unknown> | undefined>)[dependants];
  return getEventListeners(signal, 'abort').length + (set?.size ?? 0);
}

describe('metadataRequest', () => {
  it('leaves nothing behind on the long-lived signal it is given, however many requests it made', async () => {
    const imds = await startImdsStandIn();
    closers.push(() => imds.close());
    const watching = new AbortController();
    for (let i = 0; i < 20; i++) expect((await metadataRequest(`${imds.url}/latest/meta-data/instance-id`, { signal: watching.signal })).status).toBe(401);
    await expect(metadataRequest('http://127.0.0.1:1/', { signal: watching.signal })).rejects.toThrow(/GET http:\/\/127\.0\.0\.1:1\/: fetch failed/);
    // One entry per request here is what grew a watcher polling for weeks into its memory limit.
    expect(heldBy(watching.signal)).toBe(0);
  });

  it('gives up after its timeout, saying so, and stops when its signal aborts', async () => {
    const gce = await startGceMetadataStandIn();
    closers.push(() => gce.close());
    const headers = { 'metadata-flavor': 'Google' };
    const watching = new AbortController();
    const value = `${gce.url}/computeMetadata/v1/instance/preempted`;
    const etag = (await metadataRequest(value, { headers, signal: watching.signal })).headers.get('etag')!;
    // A hanging GET with the current ETag: the stand-in answers when the value changes, or after a minute.
    const hanging = `${value}?wait_for_change=true&last_etag=${etag}&timeout_sec=60`;
    await expect(metadataRequest(hanging, { headers, signal: watching.signal, timeoutMs: 100 })).rejects.toThrow(`GET ${hanging}: no answer in time`);
    const stopped = metadataRequest(hanging, { headers, signal: watching.signal, timeoutMs: 60_000 });
    watching.abort(new Error('watcher stopping'));
    await expect(stopped).rejects.toThrow('watcher stopping');
    expect(heldBy(watching.signal)).toBe(0);
  });

  it.each([
    ['one that says its length', (res: ServerResponse) => res.writeHead(200, { 'content-length': MAX_METADATA_ANSWER_BYTES + 1 }).end('x'.repeat(MAX_METADATA_ANSWER_BYTES + 1))],
    ['one that never ends', (res: ServerResponse) => {
      res.writeHead(200);
      const more = (): void => {
        while (!res.destroyed && res.write('x'.repeat(64 * 1024)));
      };
      res.on('drain', more);
      more();
    }],
  ] as const)('refuses an answer larger than it reads (%s), naming the request, instead of holding it all in memory', async (_what, answer) => {
    const server = createServer((_req, res) => answer(res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/latest/meta-data/spot/instance-action`;
    // Far longer than the read takes: on a busy machine the refusal must not be mistaken for a timeout.
    await expect(metadataRequest(url, { signal: new AbortController().signal, timeoutMs: 30_000 })).rejects.toThrow(`GET ${url}: HTTP 200, and the answer is larger than ${MAX_METADATA_ANSWER_BYTES} bytes`);
  });
});
