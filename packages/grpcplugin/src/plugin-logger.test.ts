import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { jsonLogger } from './plugin-logger.js';

function capture(): { stream: Writable; writes: string[] } {
  const writes: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      writes.push(chunk.toString('utf8'));
      done();
    },
  });
  return { stream, writes };
}

describe('jsonLogger', () => {
  it('writes one JSON object a line, and the lines of one event-loop turn in one write', async () => {
    const { stream, writes } = capture();
    const logger = jsonLogger(stream);
    logger.info('evicted pod', { pod: 'apps/web-1' });
    logger.warn('budget', { pod: 'apps/web-2' });
    logger.info('evicted pod', { pod: 'apps/web-3' });
    expect(writes).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(writes).toHaveLength(1);
    const lines = writes[0]!.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => [l.level, l.msg, l.pod])).toEqual([
      ['info', 'evicted pod', 'apps/web-1'],
      ['warn', 'budget', 'apps/web-2'],
      ['info', 'evicted pod', 'apps/web-3'],
    ]);
    expect(lines.every((l) => typeof l.time === 'string' && !Number.isNaN(Date.parse(l.time)))).toBe(true);
    logger.info('next turn');
    await new Promise((r) => setImmediate(r));
    expect(writes).toHaveLength(2);
  });
});
