import { createServer, request, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpError } from './http-error.js';
import { readBody } from './read-body.js';

const servers: Array<ReturnType<typeof createServer>> = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((resolve) => s.close(resolve));
});

/** Serves one request with `handle`, sends `body`, and resolves with what `handle` resolved. */
async function withRequest<T>(body: string, handle: (req: IncomingMessage) => Promise<T>): Promise<T> {
  let outcome!: Promise<T>;
  const server = createServer((req, res) => {
    outcome = handle(req);
    outcome.finally(() => res.end('ok')).catch(() => {});
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', headers: { 'content-length': Buffer.byteLength(body) } }, (res) => res.resume().on('end', resolve));
    req.on('error', reject);
    req.end(body);
  });
  return outcome;
}

describe('readBody', () => {
  it('resolves with the body and leaves no listener on the request, so its close builds no error', async () => {
    const seen = await withRequest('{"a":1}', async (req) => {
      const before = { data: req.listenerCount('data'), error: req.listenerCount('error'), close: req.listenerCount('close'), end: req.listenerCount('end') };
      const body = await readBody(req, 1024, 5_000);
      const after = { data: req.listenerCount('data'), error: req.listenerCount('error'), close: req.listenerCount('close'), end: req.listenerCount('end') };
      return { body: body.toString(), before, after };
    });
    expect(seen.body).toBe('{"a":1}');
    expect(seen.after).toEqual(seen.before);
  });

  it('a body over the limit by Content-Length is a 413 without reading it', async () => {
    const err = await withRequest('x'.repeat(2048), (req) => readBody(req, 1024, 5_000).then(() => undefined, (e: unknown) => e));
    expect(err).toBeInstanceOf(HttpError);
    expect(err).toMatchObject({ status: 413, reason: 'too_large' });
  });
});
