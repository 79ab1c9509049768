import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { tempDir } from '@hollowtrees/testkit';
import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import type { ReceiverLimits } from '../config/schema.js';
// The worker runs the built module, as core runs it (`pnpm build` comes before the tests).
import { OffThreadParser } from '../../dist/receiver/off-thread-parser.js';
import { parseAlerts } from '../../dist/receiver/parse-alerts.js';

const limits: ReceiverLimits = { maxBodyBytes: 1 << 20, maxAlertsPerRequest: 1_000, maxLabelsPerAlert: 10, maxLabelLength: 64, maxConcurrentRequests: 10 };
const receivedAt = new Date('2026-12-01T10:00:00Z');
const batch = (from: number): Buffer =>
  Buffer.from(JSON.stringify(Array.from({ length: 300 }, (_, i) => ({ labels: { alertname: 'SpotInstanceTerminating', instance_id: `i-${from + i}` }, startsAt: '2026-12-01T09:59:00Z' }))));

describe('OffThreadParser when its thread exits with bodies on it', () => {
  it('answers every body the exiting thread held with what parsing here gives, and says the thread exited: no sender is left waiting', async () => {
    const dir = await tempDir('off-thread-exit');
    // A thread that loads, takes bodies, and exits at the first one it is given, answering none.
    const exiting = join(dir.path, 'exiting-worker.mjs');
    writeFileSync(exiting, "import { parentPort } from 'node:worker_threads';\nparentPort.on('message', () => process.exit(1));\nparentPort.postMessage('ready');\n");
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const parser = new OffThreadParser(logger, { workerUrl: pathToFileURL(exiting) });
    try {
      expect(await parser.ready()).toBe(true);
      const bodies = [0, 1_000, 2_000, 3_000, 4_000].map(batch);
      const answers = await Promise.all(bodies.map((body) => parser.parse('api_v2', body, receivedAt, limits)));
      expect(answers).toEqual(await Promise.all(bodies.map((body) => parseAlerts('api_v2', body, receivedAt, limits))));
      expect(parser.answeredByWorker).toBe(0);
      // Said once, at warn.
      expect(lines.map((l) => [l['level'], l['exitCode'], l['msg']])).toEqual([[40, 1, 'the alert-parsing thread exited; the bodies it held are parsed on the main thread and the next batch starts it again']]);
    } finally {
      await parser.close();
      await dir.remove();
    }
  });
  it('a thread that exited by itself after its last answer is started again by the next batch, which it answers', async () => {
    const dir = await tempDir('off-thread-exit');
    // A thread that answers its first body, then exits by itself 20 ms later.
    const answersThenExits = join(dir.path, 'answers-then-exits.mjs');
    writeFileSync(answersThenExits, "import { parentPort } from 'node:worker_threads';\nparentPort.on('message', (job) => { parentPort.postMessage({ id: job.id, parsed: { eventsJson: '[\"by the thread\"]' } }); setTimeout(() => process.exit(3), 20); });\nparentPort.postMessage('ready');\n");
    const parser = new OffThreadParser(pino({ level: 'silent' }), { workerUrl: pathToFileURL(answersThenExits) });
    try {
      expect(await parser.ready()).toBe(true);
      expect(await parser.parse('api_v2', batch(0), receivedAt, limits)).toEqual({ events: ['by the thread'] });
      await vi.waitFor(() => expect(parser.threadRunning).toBe(false), { timeout: 5_000, interval: 10 });
      // The next batch is parsed here while another thread starts; the one after by that thread.
      expect(await parser.parse('api_v2', batch(500), receivedAt, limits)).toEqual(await parseAlerts('api_v2', batch(500), receivedAt, limits));
      expect(await parser.ready()).toBe(true);
      expect(await parser.parse('api_v2', batch(1_000), receivedAt, limits)).toEqual({ events: ['by the thread'] });
    } finally {
      await parser.close();
      await dir.remove();
    }
  });
});
