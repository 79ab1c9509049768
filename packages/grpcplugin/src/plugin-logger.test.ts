import { describe, expect, it } from 'vitest';
import { jsonLogger } from './plugin-logger.js';

function capture(): { destination: { write(line: string): void }; lines: () => string[] } {
  const written: string[] = [];
  return { destination: { write: (line: string) => void written.push(line) }, lines: () => written };
}

describe('jsonLogger', () => {
  it('writes {level, time, service, ...fields, msg} a line, with the level by name, in this order', () => {
    const { destination, lines } = capture();
    const logger = jsonLogger({ service: 'hollowtrees-k8s-drain', level: 'debug', destination });
    logger.debug('listing pods', { node: 'n-1' });
    logger.info('evicted pod', { pod: 'apps/web-1' });
    logger.warn('budget', { pod: 'apps/web-2' });
    logger.error('drain failed', { node: 'n-2' });
    const parsed = lines().map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.map((l) => Object.keys(l))).toEqual([
      ['level', 'time', 'service', 'node', 'msg'],
      ['level', 'time', 'service', 'pod', 'msg'],
      ['level', 'time', 'service', 'pod', 'msg'],
      ['level', 'time', 'service', 'node', 'msg'],
    ]);
    expect(parsed.map((l) => [l.level, l.service, l.msg])).toEqual([
      ['debug', 'hollowtrees-k8s-drain', 'listing pods'],
      ['info', 'hollowtrees-k8s-drain', 'evicted pod'],
      ['warn', 'hollowtrees-k8s-drain', 'budget'],
      ['error', 'hollowtrees-k8s-drain', 'drain failed'],
    ]);
    expect(parsed.every((l) => typeof l.time === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(l.time))).toBe(true);
  });

  it('writes an error under err as {type, message, stack}', () => {
    const { destination, lines } = capture();
    const err = new TypeError('bad node name');
    jsonLogger({ service: 's', destination }).error('cannot cordon', { err });
    expect(JSON.parse(lines()[0]!)).toMatchObject({ level: 'error', err: { type: 'TypeError', message: 'bad node name', stack: err.stack } });
  });

  it('leaves out lines below its level (default info)', () => {
    const { destination, lines } = capture();
    const logger = jsonLogger({ service: 's', destination });
    logger.debug('not written');
    logger.info('written');
    expect(lines().map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['written']);
  });
});
