/**
 * A client that pipelines (sends its next request before the answer to the one before) and then sends bytes that
 * are no request: what it reads first is the answer core owes the request it sent, never Node's bare 400 for the
 * bytes after it, which a sender would take for that request's answer (a 4xx is not sent again: refused alerts lost).
 */
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startRecordingPlugin } from '../../test/support/recording-plugin.js';
import { spotFlowConfig, startTestCore } from '../../test/support/start-core.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Writes `data` on a new connection to `port`, and resolves with all it reads until the server closes it. */
function exchange(port: number, data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(data));
    const received: Buffer[] = [];
    const timer = setTimeout(() => reject(new Error(`not closed within 10 s; read ${Buffer.concat(received).toString('latin1').slice(0, 300)}`)), 10_000);
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.on('error', () => {}); // a reset is an answer too: what was read before it is judged
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(received).toString('latin1'));
    });
  });
}

/** A keep-alive POST of one alert for `instance`. */
function alertRequest(instance: string): string {
  const body = JSON.stringify([{ labels: { alertname: 'SpotInstanceTerminating', instance_id: instance } }]);
  return `POST /api/v2/alerts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

describe('pipelined requests followed by bytes that are no request', () => {
  it('get their own answers first, in order, then the bare 400 for those bytes; the connection closes; both alerts are acted on and the bytes counted refused', async () => {
    const plugin = await startRecordingPlugin();
    cleanups.push(() => plugin.close());
    const core = await startTestCore(spotFlowConfig(`127.0.0.1:${plugin.server.port}`));
    cleanups.push(() => core.close());
    const port = Number(new URL(core.url).port);
    const read = await exchange(port, `${alertRequest('i-1')}${alertRequest('i-2')}NOT HTTP AT ALL\r\n\r\n`);
    const statuses = [...read.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
    // Each answer in its place: the two requests' own, then Node's bare 400 for what followed them.
    expect(statuses, read.slice(0, 800)).toEqual([200, 200, 400]);
    await plugin.waitForCalls(2);
    expect(plugin.calls.map((c) => (c.event.data as { labels: { instance_id: string } }).labels.instance_id).sort()).toEqual(['i-1', 'i-2']);
    const metrics = await (await fetch(`${core.url}/metrics`)).text();
    expect(metrics).toMatch(/hollowtrees_requests_rejected_total\{reason="bad_request"\} 1\b/);
  });
});
