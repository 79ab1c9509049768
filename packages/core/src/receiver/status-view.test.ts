import { describe, expect, it } from 'vitest';
import { groupView, runView, sourceView } from './status-view.js';

const at = (s: number): number => Date.UTC(2030, 0, 1, 0, 0, s);
const iso = (s: number): string => new Date(at(s)).toISOString();

describe('status views: times as RFC 3339, only the fields that are set', () => {
  it('shows a retrying group with how far its run got and when it retries; a cooling one with its end', () => {
    const event = { id: 'e1', source: 's', specversion: '1.0', type: 't' };
    const run = { event, attributes: {}, receivedAt: at(0), next: 1, attempt: 2, retryAt: at(9), restarts: 1 };
    expect(groupView({ key: 'k', flow: 'f', phase: 'retrying', eventId: 'e1', since: at(1), run })).toEqual({
      key: 'k', flow: 'f', phase: 'retrying', eventId: 'e1', since: iso(1), runAttempt: 2, nextPlugin: 1, restarts: 1, retryAt: iso(9),
    });
    expect(groupView({ key: 'k', flow: 'f', phase: 'cooling', eventId: 'e1', since: at(1), until: at(5) })).toEqual({
      key: 'k', flow: 'f', phase: 'cooling', eventId: 'e1', since: iso(1), until: iso(5),
    });
  });

  it('shows a finished run with its duration and each call\'s start', () => {
    const call = { plugin: 'drain', attempt: 1, code: 'OK', message: '', startedAt: at(2), durationMs: 500 };
    const view = runView({ flow: 'f', groupKey: 'k', eventId: 'e1', eventType: 't', outcome: 'succeeded', receivedAt: at(1), startedAt: at(2), finishedAt: at(5), calls: [call] });
    expect(view).toEqual({
      flow: 'f', groupKey: 'k', eventId: 'e1', eventType: 't', outcome: 'succeeded',
      receivedAt: iso(1), startedAt: iso(2), finishedAt: iso(5), durationMs: 3_000, calls: [{ ...call, startedAt: iso(2) }],
    });
  });

  it('shows a source\'s last receipt and last error as times', () => {
    expect(sourceView({ name: 'http', kind: 'http', state: 'running', inFlight: 0, errors: 1, lastReceiveAt: at(3), lastError: { at: at(4), message: '400 bad_json: x' } })).toEqual({
      name: 'http', kind: 'http', state: 'running', inFlight: 0, errors: 1, lastReceiveAt: iso(3), lastError: { at: iso(4), message: '400 bad_json: x' },
    });
    expect(sourceView({ name: 'http', kind: 'http', state: 'starting', inFlight: 0, errors: 0 })).toEqual({ name: 'http', kind: 'http', state: 'starting', inFlight: 0, errors: 0 });
  });
});
