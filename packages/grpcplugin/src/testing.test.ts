import { describe, expect, it } from 'vitest';
import { recordingLogger } from './testing.js';

describe('recordingLogger', () => {
  it('keeps every line with its level, message and fields, in order', () => {
    const logger = recordingLogger();
    logger.info('started', { port: 9000 });
    logger.warn('slow');
    logger.debug('tick', {});
    logger.error('failed', { err: 'boom' });
    expect(logger.lines).toEqual([
      { level: 'info', message: 'started', fields: { port: 9000 } },
      { level: 'warn', message: 'slow', fields: undefined },
      { level: 'debug', message: 'tick', fields: {} },
      { level: 'error', message: 'failed', fields: { err: 'boom' } },
    ]);
  });
});
