import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { tempDir } from '@hollowtrees/testkit';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ReceiverLimits } from '../config/schema.js';
// The worker runs the built module: the parser is taken from dist, as core runs it (`pnpm build` comes before the tests).
import { HttpError as BuiltHttpError } from '../../dist/receiver/http-error.js';
import { OFF_THREAD_MIN_BYTES, OffThreadParser as BuiltParser } from '../../dist/receiver/off-thread-parser.js';
import { parseAlerts as builtParseAlerts } from '../../dist/receiver/parse-alerts.js';
import { OffThreadParser, type OffThreadParserOptions } from './off-thread-parser.js';
import { MAX_ALERT_BODY_DEPTH, parseAlerts } from './parse-alerts.js';

const limits: ReceiverLimits = { maxBodyBytes: 1 << 20, maxAlertsPerRequest: 1_000, maxLabelsPerAlert: 10, maxLabelLength: 64, maxConcurrentRequests: 10 };
const receivedAt = new Date('2026-12-01T10:00:00Z');
const alert = (i: number): object => ({ labels: { alertname: 'SpotInstanceTerminating', instance_id: `i-${String(i).padStart(17, '0')}` }, annotations: { summary: 'reclaimed' }, startsAt: '2026-12-01T09:59:00Z', generatorURL: 'http://prometheus:9090/graph' });
const batch = (alerts: unknown[]): Buffer => Buffer.from(JSON.stringify(alerts));

/** What a parse gives: the parsed request, or the refusal's status, reason, message and headers. */
async function outcome(run: () => Promise<unknown>): Promise<unknown> {
  try {
    return { parsed: await run() };
  } catch (err) {
    expect(err).toBeInstanceOf(BuiltHttpError);
    const { status, reason, message, headers, accepted } = err as BuiltHttpError;
    return { refused: { status, reason, message, headers, accepted } };
  }
}

let parsers: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(parsers.map((p) => p.close()));
  parsers = [];
});
const builtParser = (options: OffThreadParserOptions = {}): BuiltParser => {
  const parser = new BuiltParser(pino({ level: 'silent' }), options);
  parsers.push(parser);
  return parser;
};

describe('OffThreadParser', () => {
  const bodies: Array<[string, Buffer, 'api_v2' | 'webhook']> = [
    ['a batch of 200 alerts', batch(Array.from({ length: 200 }, (_, i) => alert(i))), 'api_v2'],
    ['a batch with two bad alerts among good ones', batch([...Array.from({ length: 100 }, (_, i) => alert(i)), { labels: { alertname: 7 } }, { labels: {} }]), 'api_v2'],
    ['a batch over maxAlertsPerRequest', batch(Array.from({ length: 1_001 }, (_, i) => alert(i))), 'api_v2'],
    // Events cross the threads as JSON text: every character a label may hold comes back as it was.
    ['a batch whose labels hold escapes, emoji and a lone surrogate', batch(Array.from({ length: 100 }, (_, i) => ({ ...alert(i), annotations: { summary: `line\nbreak \u2028 "quoted" \\ tab\t 🚀 ${'\ud800'} ${i}` } }))), 'api_v2'],
    ['a body that is not JSON', Buffer.from(`[${'{"labels":'.repeat(1_000)}`), 'api_v2'],
    ['a body nested too deep to be parsed', Buffer.from('['.repeat(MAX_ALERT_BODY_DEPTH + 1)), 'webhook'],
    ['a webhook payload Alertmanager truncated', batch({ version: '4', groupKey: '{}:{}', truncatedAlerts: 3, status: 'firing', receiver: 'hollowtrees', groupLabels: {}, commonLabels: {}, commonAnnotations: {}, externalURL: 'http://alertmanager:9093', alerts: Array.from({ length: 60 }, (_, i) => ({ ...alert(i), status: 'firing', endsAt: '0001-01-01T00:00:00Z', fingerprint: `f${i}` })) } as unknown as unknown[]), 'webhook'],
  ];

  it.each(bodies)('gives for %s what parsing in this thread gives: the same events, refusals and messages', async (_name, body, format) => {
    expect(body.length).toBeGreaterThanOrEqual(OFF_THREAD_MIN_BYTES);
    const parser = builtParser();
    expect(await parser.ready()).toBe(true);
    expect(await outcome(() => parser.parse(format, body, receivedAt, limits))).toStrictEqual(await outcome(() => builtParseAlerts(format, body, receivedAt, limits)));
    expect(parser.answeredByWorker).toBe(1);
  });

  it('answers every body it was given when it is closed with bodies on the worker: those are parsed in this thread', async () => {
    const parser = builtParser();
    expect(await parser.ready()).toBe(true);
    const body = batch(Array.from({ length: 500 }, (_, i) => alert(i)));
    const parsing = Array.from({ length: 5 }, () => parser.parse('api_v2', body, receivedAt, limits));
    await parser.close();
    const expected = await builtParseAlerts('api_v2', body, receivedAt, limits);
    for (const parsed of await Promise.all(parsing)) expect(parsed).toEqual(expected);
    // Closed: later bodies are parsed here too.
    expect(await parser.parse('api_v2', body, receivedAt, limits)).toEqual(expected);
  });

  it('run from the TypeScript sources (no built worker beside it), parses in its own thread with the same answer', async () => {
    const parser = new OffThreadParser(pino({ level: 'silent' }));
    parsers.push(parser);
    const body = batch(Array.from({ length: 200 }, (_, i) => alert(i)));
    expect(await parser.parse('api_v2', body, receivedAt, limits)).toEqual(await parseAlerts('api_v2', body, receivedAt, limits));
    expect(await parser.ready()).toBe(false);
    expect(parser.answeredByWorker).toBe(0);
  });

  it('parses the batches that come before its thread has loaded in this thread: the first batch of a wave does not wait for it', async () => {
    const parser = builtParser();
    const body = batch(Array.from({ length: 200 }, (_, i) => alert(i)));
    expect(await parser.parse('api_v2', body, receivedAt, limits)).toEqual(await builtParseAlerts('api_v2', body, receivedAt, limits));
    expect(parser.answeredByWorker).toBe(0);
    expect(await parser.ready()).toBe(true);
    await parser.parse('api_v2', body, receivedAt, limits);
    expect(parser.answeredByWorker).toBe(1);
  });

  it('parses the bodies a failed thread held in this thread, and every later body too, saying so once', async () => {
    const dir = await tempDir('off-thread-parser');
    try {
      const failing = join(dir.path, 'failing-worker.mjs');
      writeFileSync(failing, "throw new Error('the worker module is broken');\n");
      const lines: Array<Record<string, unknown>> = [];
      const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
      const parser = new BuiltParser(logger, { workerUrl: pathToFileURL(failing) });
      parsers.push(parser);
      const body = batch(Array.from({ length: 200 }, (_, i) => alert(i)));
      const expected = await builtParseAlerts('api_v2', body, receivedAt, limits);
      // Until the thread has loaded, batches are parsed here; it fails to load.
      expect(await Promise.all([1, 2, 3].map(() => parser.parse('api_v2', body, receivedAt, limits)))).toEqual([expected, expected, expected]);
      expect(await parser.ready()).toBe(false);
      expect(await parser.parse('api_v2', body, receivedAt, limits)).toEqual(expected);
      expect(await parser.ready()).toBe(false);
      expect(parser.answeredByWorker).toBe(0);
      expect(lines.filter((l) => l['level'] === 50).map((l) => l['msg'])).toEqual(['the alert-parsing thread failed: the bodies it held, and every body from now on, are parsed on the main thread']);
    } finally {
      await dir.remove();
    }
  });

  it('parses a body under OFF_THREAD_MIN_BYTES (a single alert) in this thread', async () => {
    const parser = builtParser();
    expect(await parser.ready()).toBe(true);
    const body = batch([alert(1)]);
    expect(await parser.parse('api_v2', body, receivedAt, limits)).toEqual(await builtParseAlerts('api_v2', body, receivedAt, limits));
    expect(parser.answeredByWorker).toBe(0);
  });

  it('keeps its thread through a quiet spell, and the thread collects its heap once, after idling', async () => {
    const threads = (): number => readdirSync('/proc/self/task').length;
    const lines: Array<Record<string, unknown>> = [];
    const parser = new BuiltParser(pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) }), { idleCollectMs: 200 });
    parsers.push(parser);
    const collections = (): Array<Record<string, unknown>> => lines.filter((l) => l['msg'] === 'the alert-parsing thread idled and collected its heap');
    const body = batch(Array.from({ length: 200 }, (_, i) => alert(i)));
    const expected = await builtParseAlerts('api_v2', body, receivedAt, limits);
    expect(await parser.ready()).toBe(true);
    for (let i = 0; i < 5; i++) expect(await parser.parse('api_v2', body, receivedAt, limits)).toEqual(expected);
    expect(parser.answeredByWorker).toBe(5);
    const withThread = threads();
    await vi.waitFor(() => expect(collections()).toHaveLength(1), { timeout: 5_000, interval: 20 });
    const { heapUsedBefore, heapUsedAfter } = collections()[0] as { heapUsedBefore: number; heapUsedAfter: number };
    // The batches' garbage is gone.
    expect(heapUsedAfter).toBeLessThan(heapUsedBefore);
    // Once for the spell, not again while it lasts; the thread is still there and answers the next batch itself.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(collections()).toHaveLength(1);
    expect(threads()).toBe(withThread);
    expect(parser.threadRunning).toBe(true);
    expect(await parser.parse('api_v2', body, receivedAt, limits)).toEqual(expected);
    expect(parser.answeredByWorker).toBe(6);
    // The next spell gets its own collection.
    await vi.waitFor(() => expect(collections()).toHaveLength(2), { timeout: 5_000, interval: 20 });
  });
});
