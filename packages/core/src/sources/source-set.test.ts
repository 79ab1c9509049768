import { describe, expect, it } from 'vitest';
import type { EventSink } from './event-sink.js';
import type { EventSource, SourceStatus } from './event-source.js';
import { SourceSet } from './source-set.js';

const sink: EventSink = { accept: () => ({ matched: 0, started: 0, deduplicated: 0, dropped: [] }), commit: () => Promise.resolve(true), durable: true, backend: 'memory' };

/** A source that records what is done to it, and can be made to fail its start. */
function source(name: string, calls: string[], failStart?: Error): EventSource {
  let state: SourceStatus['state'] = 'starting';
  return {
    name,
    kind: 'test',
    start: (given) => {
      calls.push(`${name}.start`);
      expect(given).toBe(sink);
      if (failStart) return Promise.reject(failStart);
      state = 'running';
      return Promise.resolve();
    },
    stop: () => {
      calls.push(`${name}.stop`);
      state = 'stopping';
      return Promise.resolve();
    },
    close: () => {
      calls.push(`${name}.close`);
      state = 'stopped';
      return Promise.resolve();
    },
    status: () => ({ name, kind: 'test', state, inFlight: 0, errors: 0 }),
  };
}

describe('SourceSet', () => {
  it('starts in order, stops every source before closing any, and reports each state', async () => {
    const calls: string[] = [];
    const set = new SourceSet([source('a', calls), source('b', calls)]);
    await set.start(sink, (_s, err) => err as Error);
    expect(set.statuses().map((s) => s.state)).toEqual(['running', 'running']);
    await set.stop();
    expect(set.statuses().map((s) => s.state)).toEqual(['stopping', 'stopping']);
    await set.close();
    expect(calls).toEqual(['a.start', 'b.start', 'a.stop', 'b.stop', 'a.close', 'b.close']);
    expect(set.statuses().map((s) => s.state)).toEqual(['stopped', 'stopped']);
  });

  it('closes the sources started before one that cannot start, and the failed one, and says which failed', async () => {
    const calls: string[] = [];
    const set = new SourceSet([source('a', calls), source('b', calls, new Error('no queue')), source('c', calls)]);
    await expect(set.start(sink, (s, err) => new Error(`${s.name}: ${(err as Error).message}`))).rejects.toThrow('b: no queue');
    expect(calls).toEqual(['a.start', 'b.start', 'a.stop', 'a.close', 'b.close']);
  });

  it('refuses two sources of one name', () => {
    expect(() => new SourceSet([source('a', []), source('a', [])])).toThrow('two sources are named "a"');
  });
});
