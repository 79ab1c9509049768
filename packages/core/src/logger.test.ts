import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.js';

describe('core logger', () => {
  it('writes the level as its label, with an RFC 3339 time and the service, like the plugins\' logger', () => {
    const lines: string[] = [];
    const logger = createLogger('debug', { write: (line: string) => void lines.push(line) });
    logger.debug({ flow: 'spot' }, 'event matched no flow');
    logger.error('flow run failed');
    const [debug, error] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(debug).toEqual({ level: 'debug', time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/), service: 'hollowtrees', flow: 'spot', msg: 'event matched no flow' });
    expect(error).toMatchObject({ level: 'error', msg: 'flow run failed' });
  });
});
