import { connect } from 'node:net';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHealthServer, type HealthServer } from './health-server.js';

/** Sends `requestLine` on a fresh connection and resolves with the whole answer, once the server closes. */
function raw(port: number, requestLine: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(`${requestLine}\r\nHost: watcher\r\nConnection: close\r\n\r\n`));
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (answer += chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(answer));
  });
}

describe('the watcher health server under request targets a URL parser refuses', () => {
  let server: HealthServer;
  beforeAll(async () => {
    server = await startHealthServer('127.0.0.1:0', new Registry(), { status: () => ({ cloud: 'aws' }), notReady: () => undefined });
  });
  afterAll(() => server.close());

  // Node's HTTP parser takes these targets; `new URL` throws on each, which in the request handler ended the watcher.
  it.each(['GET //[ HTTP/1.1', 'GET http://[ HTTP/1.1', 'GET http://a:99999/healthz HTTP/1.1', 'GET http://%zz/ HTTP/1.1'])('answers %s with 400 and keeps serving', async (line) => {
    const answer = await raw(server.port, line);
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('bad request target');
    expect((await fetch(`http://127.0.0.1:${server.port}/healthz`)).status).toBe(200);
  });
});
