import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { jsonLogger } from './plugin-logger.js';

describe('jsonLogger', () => {
  it('writes one JSON object a line: time, level, message and the fields', () => {
    const stream = new PassThrough();
    const logger = jsonLogger(stream);
    const before = Date.now();
    logger.info('drained', { node: 'n1', pods: 3 });
    logger.warn('slow eviction');
    const lines = String(stream.read()).split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[2]).toBe('');
    const [info, warn] = lines.slice(0, 2).map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(info).toEqual({ time: expect.any(String), level: 'info', msg: 'drained', node: 'n1', pods: 3 });
    expect(warn).toEqual({ time: expect.any(String), level: 'warn', msg: 'slow eviction' });
    expect(Date.parse(info!.time as string)).toBeGreaterThanOrEqual(before - 1);
    expect(info!.time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  });

  it('writes to stderr by default, leaving stdout to the program', () => {
    const written: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((chunk: string) => written.push(chunk) > 0) as typeof process.stderr.write;
    try {
      jsonLogger().info('to stderr');
    } finally {
      process.stderr.write = write;
    }
    expect(written.map((line) => JSON.parse(line).msg)).toEqual(['to stderr']);
  });
});
