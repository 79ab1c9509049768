import { appendFileSync, closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GroupStates } from './group-states.js';
import { StateJournal } from './state-journal.js';

const freshPath = () => join(mkdtempSync(join(tmpdir(), 'hollowtrees-journal-')), 'nested', 'state.jsonl');

describe('StateJournal', () => {
  it('reads back the last state of every group after a restart', async () => {
    const path = freshPath();
    const { journal } = StateJournal.open(path);
    const states = new GroupStates((change) => journal.record(change));
    states.tryStart('a', 'f', 'e1', 1_000);
    states.tryStart('b', 'f', 'e2', 1_000);
    states.tryStart('c', 'f', 'e3', 1_000);
    states.succeeded('a', 2_000, 60_000);
    states.release('b');
    await journal.close();

    const { recovered } = StateJournal.open(path);
    expect(recovered.skippedLines).toBe(0);
    expect(recovered.states).toEqual([
      { key: 'a', flow: 'f', phase: 'cooling', eventId: 'e1', since: 2_000, until: 62_000 },
      { key: 'c', flow: 'f', phase: 'running', eventId: 'e3', since: 1_000 },
    ]);
  });

  it('skips a last line cut short by kill -9', async () => {
    const path = freshPath();
    const { journal } = StateJournal.open(path);
    journal.record({ key: 'a', flow: 'f', phase: 'running', eventId: 'e', since: 1 });
    await journal.close();
    appendFileSync(path, '{"key":"b","flow":"f","pha');
    const { recovered } = StateJournal.open(path);
    expect(recovered.states.map((s) => s.key)).toEqual(['a']);
    expect(recovered.skippedLines).toBe(1);
  });

  it('compacts to the live states on open and when it grows, keeping them readable', async () => {
    const path = freshPath();
    const { journal } = StateJournal.open(path, { compactAfter: 10 });
    const states = new GroupStates((change) => journal.record(change));
    for (let i = 0; i < 20; i++) {
      states.tryStart(`g${i}`, 'f', `e${i}`, 0);
      if (i % 2) states.release(`g${i}`);
    }
    await journal.flush();
    expect(journal.needsCompaction).toBe(true);
    journal.compact(states.list(0));
    expect(journal.needsCompaction).toBe(false);
    expect(readFileSync(path, 'utf8').trim().split('\n')).toHaveLength(10);
    states.release('g0');
    await journal.close();
    expect(StateJournal.open(path).recovered.states).toHaveLength(9);
  });
});

describe('StateJournal when the disk fails', () => {
  it('reports a failed write, keeps the lines, and writes them once the disk is back', async () => {
    const path = freshPath();
    const errors: Array<[string, number]> = [];
    const { journal } = StateJournal.open(path, { onError: (err, lines) => errors.push([(err as NodeJS.ErrnoException).code ?? '', lines]) });
    // Point the journal at a device that is always full, as a full disk would behave.
    const internals = journal as unknown as { fd: number };
    const good = internals.fd;
    internals.fd = openSync('/dev/full', 'w');
    journal.record({ key: 'a', flow: 'f', phase: 'running', eventId: 'e', since: 1 });
    await journal.flush();
    journal.record({ key: 'a', flow: 'f', phase: 'cooling', eventId: 'e', since: 2, until: 99 });
    await journal.flush();
    expect(errors).toEqual([['ENOSPC', 1], ['ENOSPC', 2]]);

    closeSync(internals.fd);
    internals.fd = good;
    await journal.flush();
    await journal.close();
    expect(StateJournal.open(path).recovered.states).toEqual([{ key: 'a', flow: 'f', phase: 'cooling', eventId: 'e', since: 2, until: 99 }]);
  });

  it('ignores records after close', async () => {
    const path = freshPath();
    const { journal } = StateJournal.open(path);
    await journal.close();
    journal.record({ key: 'late', flow: 'f', phase: 'running', eventId: 'e', since: 1 });
    await journal.flush();
    expect(StateJournal.open(path).recovered.states).toEqual([]);
  });
});
