import { appendFileSync, closeSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { CloudEvent } from '@hollowtrees/grpcplugin';
import { describe, expect, it } from 'vitest';
import { GroupStates, type GroupState, type RunProgress } from '../flow/group-states.js';
import { fullDisk, slowDisk } from '../../test/support/journal-disks.js';
import { JournalFromNewerVersion, snapshotPieces, type JournalContents } from './journal-format.js';
import { openJournalFile, type JournalFile, type OpenJournalFile } from './journal-file.js';
import { JournalRunStateStore } from './journal-store.js';
import { readJournal, StateJournal } from './state-journal.js';

const freshPath = () => join(mkdtempSync(join(tmpdir(), 'hollowtrees-journal-')), 'nested', 'state.jsonl');

const event = (id: string): CloudEvent => ({ id, source: 's', specversion: '1.0', type: 'prometheus.server.alert.Spot', data: { labels: { instance_id: id } } });
const run = (id: string, extra: Partial<RunProgress> = {}): RunProgress => ({ event: event(id), attributes: {}, receivedAt: 500, next: 0, attempt: 1, restarts: 0, ...extra });

const lines = (path: string): string[] => readFileSync(path, 'utf8').trim().split('\n');

/** The real journal file, whose syncs fail with EIO (in `call`) while `failing()` says so. */
const syncFailing =
  (failing: () => boolean, call: string): OpenJournalFile =>
  async (at) => {
    const file = await openJournalFile(at);
    return { ...file, sync: () => (failing() ? Promise.reject(Object.assign(new Error(`EIO: i/o error, ${call}`), { code: 'EIO' })) : file.sync()) };
  };

/** What a restarted process would read back from `path`. */
async function reopen(path: string): Promise<JournalContents> {
  const { journal, recovered } = await StateJournal.open(path);
  await journal.close();
  return recovered;
}

/** A fresh journal whose group `a` ran and cools down, on disk. */
async function journalWithCooldown(): Promise<{ path: string; journal: StateJournal; states: GroupStates }> {
  const path = freshPath();
  const { journal } = await StateJournal.open(path);
  const states = new GroupStates((change) => journal.record(change));
  states.tryStart('a', 'f', run('a'), 1);
  states.succeeded('a', 2, 8e12);
  await journal.flush();
  return { path, journal, states };
}

describe('StateJournal', () => {
  it('reads back the last state of every group after a restart, a run with its event', async () => {
    const path = freshPath();
    const { journal } = await StateJournal.open(path);
    const states = new GroupStates((change) => journal.record(change));
    states.tryStart('a', 'f', run('e1'), 1_000);
    states.tryStart('b', 'f', run('e2'), 1_000);
    states.tryStart('c', 'f', run('e3'), 1_000);
    states.succeeded('a', 2_000, 60_000);
    states.release('b');
    states.progress('c', 'retrying', run('e3', { attributes: { node: 'n-1' }, next: 1, attempt: 2, retryAt: 9_000 }));
    await journal.close();

    const recovered = await reopen(path);
    expect(recovered.problems).toEqual([]);
    expect(recovered.states).toEqual([
      { key: 'a', flow: 'f', phase: 'cooling', eventId: 'e1', since: 2_000, until: 62_000 },
      { key: 'c', flow: 'f', phase: 'retrying', eventId: 'e3', since: 1_000, run: run('e3', { attributes: { node: 'n-1' }, next: 1, attempt: 2, retryAt: 9_000 }) },
    ]);
  });

  it('keeps the last 100 runs that failed for good, oldest first, through restarts and rewrites, in wall-clock times', async () => {
    const path = freshPath();
    let ahead = 0;
    const { journal } = await StateJournal.open(path, { wallAhead: () => ahead });
    const states = new GroupStates((change) => journal.record(change));
    const failure = (i: number) => ({ flow: 'f', eventId: `e${i}`, eventType: 't', error: `boom ${i}`, receivedAt: i, startedAt: i + 1, finishedAt: i + 2 });
    for (let i = 0; i < 250; i++) {
      states.tryStart(`k${i}`, 'f', run(`e${i}`), i);
      states.release(`k${i}`, failure(i));
    }
    // Freed without a failure (a run that never started): nothing to list.
    states.tryStart('quiet', 'f', run('quiet'), 1);
    states.release('quiet');
    // Written while the process's steady clock is 1 s behind the wall clock (it was stepped since it started).
    ahead = 1_000;
    await journal.compact(() => states.list(0));
    // A plugin's error may be megabytes, and a type any length: the journal keeps their start, and no half of a character (an emoji's surrogate pair).
    states.tryStart('last', 'f', run('last'), 300);
    states.release('last', { ...failure(300), eventId: 'last', eventType: 't'.repeat(100_000), error: `${'x'.repeat(1_999)}${'🙂'.repeat(500_000)}` });
    await journal.close();

    const kept = [...Array.from({ length: 99 }, (_, i) => failure(151 + i)), { ...failure(300), eventId: 'last', eventType: `${'t'.repeat(2_000)}…`, error: `${'x'.repeat(1_999)}…` }];
    const wall = kept.map((f, i) => ({ key: i < 99 ? `k${151 + i}` : 'last', phase: 'failed', ...f, receivedAt: f.receivedAt + 1_000, startedAt: f.startedAt + 1_000, finishedAt: f.finishedAt + 1_000 }));
    const first = await reopen(path);
    expect(first).toEqual({ states: [], failures: wall, problems: [] });
    // Opening rewrote the journal (a snapshot): the failures are in it, read back by the next start too.
    expect(await reopen(path)).toEqual(first);
    expect(JSON.parse(lines(path)[0]!)).toMatchObject({ records: 100 });
    // Read by a process whose own clock is behind the wall: in its own times.
    const { journal: behind, recovered } = await StateJournal.open(path, { wallAhead: () => 1_000 });
    await behind.close();
    expect(recovered.failures[0]).toMatchObject({ eventId: 'e151', receivedAt: 151, finishedAt: 153 });
  });

  it('a group whose run failed and that then ran again keeps its new state through a rewrite: the snapshot\'s failure of it is older', async () => {
    const path = freshPath();
    const { journal } = await StateJournal.open(path);
    const states = new GroupStates((change) => journal.record(change));
    const failure = { flow: 'f', eventId: 'a', eventType: 't', error: 'boom', receivedAt: 1, startedAt: 2, finishedAt: 3 };
    // The notice's run failed; its re-send ran and cools down, and the re-send of another group is in progress.
    states.tryStart('a', 'f', run('a'), 1);
    states.release('a', failure);
    states.tryStart('a', 'f', run('a'), 4);
    states.succeeded('a', 5, 8e12);
    states.tryStart('b', 'f', run('b'), 1);
    states.release('b', { ...failure, eventId: 'b' });
    states.tryStart('b', 'f', run('b'), 6);
    await journal.compact(() => states.list(0));
    await journal.close();

    const expected = {
      states: [
        { key: 'a', flow: 'f', phase: 'cooling', eventId: 'a', since: 5, until: 8e12 + 5 },
        { key: 'b', flow: 'f', phase: 'running', eventId: 'b', since: 6, run: run('b') },
      ],
      failures: [
        { key: 'a', phase: 'failed', ...failure },
        { key: 'b', phase: 'failed', ...failure, eventId: 'b' },
      ],
      problems: [],
    };
    expect(await reopen(path)).toEqual(expected);
    // Opening rewrote it as a snapshot again: the next start reads the same.
    expect(await reopen(path)).toEqual(expected);
    // A snapshot with its failures after its states (as 12d33fe wrote them) reads the same; an appended failure frees its group.
    const [header] = lines(path);
    const snapshot = [...expected.states, ...expected.failures].map((r) => JSON.stringify(r));
    writeFileSync(path, `${[header, ...snapshot, JSON.stringify({ key: 'b', phase: 'failed', ...failure, eventId: 'b2' })].join('\n')}\n`);
    expect(await reopen(path)).toEqual({ ...expected, states: expected.states.slice(0, 1), failures: [...expected.failures, { key: 'b', phase: 'failed', ...failure, eventId: 'b2' }] });
  });

  it('skips a last line cut short by kill -9, naming its line', async () => {
    const path = freshPath();
    const { journal } = await StateJournal.open(path);
    journal.record({ key: 'a', flow: 'f', phase: 'running', eventId: 'e', since: 1 });
    await journal.close();
    appendFileSync(path, '{"key":"b","flow":"f","pha');
    const recovered = await reopen(path);
    expect(recovered.states.map((s) => s.key)).toEqual(['a']);
    expect(recovered.problems).toEqual([{ line: 3, reason: 'not JSON (a write cut short?)' }]);
  });

  it('skips records of the wrong shape with their line instead of crashing on them', async () => {
    const path = freshPath();
    const good = JSON.stringify({ key: 'ok', flow: 'f', phase: 'cooling', eventId: 'e', since: 1, until: 8e12 });
    const bad = ['42', 'null', '[]', '"text"', '{}', '{"key":"x","flow":"f","phase":"cooling","eventId":"e","since":1}', '{"key":"y","flow":"f","phase":"cooling","eventId":"e","since":1,"until":1e300}', '{"key":"z","flow":"f","phase":"retrying","eventId":"e","since":1}', '{"key":"w","phase":"gone"}'];
    const { journal } = await StateJournal.open(path);
    await journal.close();
    writeFileSync(path, [...bad, good, ''].join('\n'));
    const recovered = await reopen(path);
    expect(recovered.states.map((s) => s.key)).toEqual(['ok']);
    expect(recovered.problems.map((p) => p.line)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(recovered.problems[5]!.reason).toMatch(/^not a run-state record: until: /);
  });

  it('keeps a journal with a damaged line in the middle as it was, where its problems\' line numbers can be looked up, before rewriting it', async () => {
    const path = freshPath();
    const { journal } = await StateJournal.open(path);
    await journal.close();
    const cooling = (key: string) => JSON.stringify({ key, flow: 'f', phase: 'cooling', eventId: 'e', since: 1, until: 8e12 });
    // Edited by hand: a cooldown whose closing brace went missing.
    const text = `${cooling('a')}\n${cooling('b').slice(0, -1)}\n${cooling('c')}\n`;
    writeFileSync(path, text);
    const { journal: reopened, recovered, keptAs } = await StateJournal.open(path);
    await reopened.close();
    expect(recovered.states.map((s) => s.key)).toEqual(['a', 'c']);
    expect(recovered.problems).toEqual([{ line: 2, reason: 'not JSON (a write cut short?)' }]);
    expect(keptAs).toBe(`${path}.unreadable`);
    expect(readFileSync(keptAs!, 'utf8')).toBe(text);
    expect(readFileSync(keptAs!, 'utf8').split('\n')[recovered.problems[0]!.line - 1]).toBe(cooling('b').slice(0, -1));
    // The journal itself is rewritten without the line; a clean journal keeps no copy.
    expect(readFileSync(path, 'utf8')).not.toContain('"key":"b"');
    rmSync(keptAs!);
    const clean = await StateJournal.open(path);
    await clean.journal.close();
    expect(clean.keptAs).toBeUndefined();
  });

  it('refuses a journal a later version wrote, leaving it as it is, instead of dropping what it cannot read (a rollback)', async () => {
    const path = freshPath();
    const { journal } = await StateJournal.open(path);
    await journal.close();
    // A later format: its records carry a field this version does not know.
    const text = `${JSON.stringify({ journal: 'hollowtrees-run-state', version: 7, records: 1 })}\n${JSON.stringify({ key: 'a', flow: 'f', phase: 'cooling', eventId: 'e', since: 1, until: 8e12, epoch: 7 })}\n`;
    writeFileSync(path, text);
    await expect(StateJournal.open(path)).rejects.toThrow(JournalFromNewerVersion);
    await expect(StateJournal.open(path)).rejects.toThrow('it was written by a later Hollowtrees (journal format 7; this one reads format 6 and earlier)');
    expect(readFileSync(path, 'utf8')).toBe(text);
  });

  it('reads a journal the previous formats wrote (format 2: runs without the step they go on with; format 3: that step without the plugins passed)', async () => {
    const path = freshPath();
    await (await StateJournal.open(path)).journal.close();
    const running = { key: 'a', flow: 'f', eventId: 'a', since: 1, phase: 'running', run: run('a', { next: 1 }) };
    writeFileSync(path, `${JSON.stringify({ journal: 'hollowtrees-run-state', version: 2, records: 1 })}\n${JSON.stringify(running)}\n`);
    expect(await reopen(path)).toEqual({ states: [running], failures: [], problems: [] });
    const stepped = { ...running, run: run('a', { next: 1, at: { plugin: 'b', occurrence: 0 } }) };
    writeFileSync(path, `${JSON.stringify({ journal: 'hollowtrees-run-state', version: 3, records: 1 })}\n${JSON.stringify(stepped)}\n`);
    expect(await reopen(path)).toEqual({ states: [stepped], failures: [], problems: [] });
  });

  it('a queued run claimed is marked started by one short line, in the file before its first plugin call, synced by the run\'s next write: a backlog\'s claims cost no sync of their own; a run of format 4 reads as it was written', async () => {
    const path = freshPath();
    const disk = slowDisk(false);
    const { journal } = await StateJournal.open(path, { openFile: disk.openFile });
    const store = new JournalRunStateStore(journal);
    for (const key of ['a', 'b']) store.tryStart(key, 'f', run(key, { queued: true }), 1);
    await store.commit();
    const syncs = disk.syncs;
    await store.claim('a', run('a', { queued: true }));
    // Written: a kill -9 during the plugin call keeps it (the kernel has it), so a crash loop counts its restarts.
    expect(lines(path).at(-1)).toBe(JSON.stringify({ key: 'a', phase: 'started' }));
    // Nor synced later on its own: the run's end is.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(disk.syncs).toBe(syncs);
    store.succeeded('a', 2, 8e12);
    await store.commit();
    expect(disk.syncs).toBe(syncs + 1);
    // A marker alone is synced by the next flush, as at close.
    await store.claim('b', run('b', { queued: true }));
    expect(await journal.flush()).toBe(true);
    expect(disk.syncs).toBe(syncs + 2);
    // A claim whose write holds more than markers (a run's event not yet committed) syncs before the plugin acts.
    store.tryStart('c', 'f', run('c', { queued: true }), 3);
    await store.claim('c', run('c', { queued: true }));
    expect(disk.syncs).toBe(syncs + 3);
    await store.close();
    expect((await readJournal(path)).states.map((s) => [s.key, s.phase, s.run?.queued])).toEqual([['a', 'cooling', undefined], ['b', 'running', undefined], ['c', 'running', undefined]]);
    // Format 4 wrote no `queued`: its running runs count a restart as they did.
    const format4 = { key: 'c', flow: 'f', eventId: 'c', since: 1, phase: 'running', run: run('c') };
    writeFileSync(path, `${JSON.stringify({ journal: 'hollowtrees-run-state', version: 4, records: 1 })}\n${JSON.stringify(format4)}\n`);
    expect(await reopen(path)).toEqual({ states: [format4], failures: [], problems: [] });
  });

  it('notices a snapshot cut short at a line boundary', async () => {
    const path = freshPath();
    const { journal } = await StateJournal.open(path);
    const states = new GroupStates((change) => journal.record(change));
    for (const key of ['a', 'b', 'c']) states.tryStart(key, 'f', run(key), 1);
    await journal.compact(() => states.list(1));
    await journal.close();
    const [header, first] = lines(path);
    expect(JSON.parse(header!)).toEqual({ journal: 'hollowtrees-run-state', version: 6, records: 3 });
    writeFileSync(path, `${header}\n${first}\n`);
    const recovered = await reopen(path);
    expect(recovered.states.map((s) => s.key)).toEqual(['a']);
    expect(recovered.problems).toEqual([{ line: 3, reason: 'the snapshot announces 3 records but the file ends after 1: it was cut short' }]);
  });

  it('a change recorded while a compaction writes its snapshot is on disk once flush() says so', async () => {
    const { path, journal, states } = await journalWithCooldown();
    let snapshotTaken!: () => void;
    const taken = new Promise<void>((resolve) => (snapshotTaken = resolve));
    const compaction = journal.compact(() => {
      snapshotTaken();
      return states.list(3);
    });
    await taken;
    // While the snapshot is written (temporary file, fsync, rename), a run starts and its sender waits for the flush.
    states.tryStart('b', 'f', run('b'), 4);
    expect(await journal.flush()).toBe(true);
    await compaction;
    await journal.close();
    expect((await reopen(path)).states.map((s) => s.key)).toEqual(['a', 'b']);
  });

  it('compacts to the live states on open and when it grows, keeping them readable', async () => {
    const path = freshPath();
    const { journal } = await StateJournal.open(path, { compactAfter: 10 });
    const states = new GroupStates((change) => journal.record(change));
    for (let i = 0; i < 20; i++) {
      states.tryStart(`g${i}`, 'f', run(`e${i}`), 0);
      if (i % 2) states.release(`g${i}`);
    }
    await journal.flush();
    expect(journal.needsCompaction).toBe(true);
    await journal.compact(() => states.list(0));
    expect(journal.needsCompaction).toBe(false);
    expect(lines(path)).toHaveLength(11);
    states.release('g0');
    await journal.close();
    expect((await reopen(path)).states).toHaveLength(9);
  });

  it('compacts once the records appended since the last rewrite pass compactAfterBytes, however few they are', async () => {
    const path = freshPath();
    const { journal } = await StateJournal.open(path, { compactAfterBytes: 64 * 1024 });
    const states = new GroupStates((change) => journal.record(change));
    // Three runs whose events carry 30 KB each: few records, many bytes.
    for (const key of ['a', 'b', 'c']) {
      states.tryStart(key, 'f', { ...run(key), event: { ...run(key).event, data: { note: 'x'.repeat(30_000) } } }, 0);
      await journal.flush();
      expect([key, journal.needsCompaction]).toEqual([key, key === 'c']);
    }
    await journal.compact(() => states.list(0));
    expect(journal.needsCompaction).toBe(false);
    await journal.close();
  });

  it('reads back a journal larger than one read of the file, and rewrites it in pieces, lines and characters cut across both', async () => {
    const path = freshPath();
    const { journal } = await StateJournal.open(path);
    const states = new GroupStates((change) => journal.record(change));
    // Keys of two- and four-byte characters, so that reads of 64 KiB end inside lines and inside characters;
    // 1.4 MB of records, so that the rewrite at the next open writes more than one piece.
    const keys = Array.from({ length: 6_000 }, (_, i) => `grüße-🌲-${i}`);
    for (const key of keys) states.tryStart(key, 'f', run(key), 0);
    await journal.close();
    const read = await readJournal(path);
    expect(read.problems).toEqual([]);
    expect(read.states.map((s) => s.key)).toEqual(keys);
    const { journal: reopened, recovered } = await StateJournal.open(path);
    await reopened.close();
    expect(recovered.states).toEqual(read.states);
    const rewritten = await readJournal(path);
    expect([rewritten.problems, rewritten.states]).toEqual([[], read.states]);
    expect(lines(path)).toHaveLength(1 + keys.length);
  });

  it('reads back a run whose event is as large as a 64 MiB body limit lets through as fast as the same bytes in runs of 1 MiB events, not in minutes', async () => {
    const description = (mib: number): string => 'x'.repeat(mib * 1024 * 1024);
    const large = (id: string, mib: number): CloudEvent => ({ ...event(id), data: { labels: { instance_id: id }, annotations: { description: description(mib) } } });
    /** Writes runs of `events`, then reads them back, measuring the CPU time the read took. */
    const timeRead = async (events: CloudEvent[]): Promise<{ ms: number; read: JournalContents }> => {
      const path = freshPath();
      const { journal } = await StateJournal.open(path);
      const states = new GroupStates((change) => journal.record(change));
      for (const e of events) states.tryStart(e.id, 'f', run(e.id, { event: e }), 1);
      await journal.close();
      const before = process.cpuUsage();
      const read = await readJournal(path);
      const used = process.cpuUsage(before);
      return { ms: (used.user + used.system) / 1000, read };
    };
    // One line of 24 MiB (a CloudEvent whose data carries a large annotation, taken with server.limits.maxBodyBytes 64MiB),
    // against 24 lines of 1 MiB, compared by CPU time, not wall time: other processes on a busy machine do not count.
    const many = await timeRead(Array.from({ length: 24 }, (_, i) => large(`e${i}`, 1)));
    const one = await timeRead([large('big', 24)]);
    expect([one.read.problems, one.read.states.map((s) => s.run?.event)]).toEqual([[], [large('big', 24)]]);
    expect(many.read.states).toHaveLength(24);
    // Searched again from the line's start at each 64 KiB read, the one line took 28 to 75 s, twenty times the 24 lines.
    expect(one.ms).toBeLessThan(4 * many.ms);
  }, 120_000);

  it('cuts a snapshot into pieces of about the size asked, which together are the header and one line per state', () => {
    const states = Array.from({ length: 50 }, (_, i): GroupState => ({ key: `g${i}`, flow: 'f', eventId: `e${i}`, since: 1, phase: 'cooling', until: 2 }));
    const pieces = [...snapshotPieces(states, 500)];
    expect(pieces.length).toBeGreaterThan(5);
    expect(pieces.slice(0, -1).every((piece) => piece.length >= 500 && piece.length < 500 + 100)).toBe(true);
    const text = pieces.join('');
    expect(text.split('\n')).toEqual([JSON.stringify({ journal: 'hollowtrees-run-state', version: 6, records: 50 }), ...states.map((s) => JSON.stringify(s)), '']);
  });

  it('a check of the file while a compaction swaps it waits for the swap: no false "replaced", no read of the closed file', async () => {
    const path = freshPath();
    let armed = false;
    let tmpOpened: (() => void) | undefined;
    let releaseTmp: (() => void) | undefined;
    let releaseIdentity: (() => void) | undefined;
    const identityGate = new Promise<void>((r) => (releaseIdentity = r));
    const openFile: OpenJournalFile = async (at) => {
      const file = await openJournalFile(at);
      if (armed && at.endsWith('.tmp')) {
        await new Promise<void>((r) => {
          releaseTmp = r;
          tmpOpened?.();
        });
      }
      return { ...file, identity: async () => (armed ? (await identityGate, file.identity()) : file.identity()) };
    };
    const { journal } = await StateJournal.open(path, { openFile });
    const states = new GroupStates((change) => journal.record(change));
    states.tryStart('a', 'f', run('a'), 1);
    await journal.flush();
    armed = true;
    const opening = new Promise<void>((r) => (tmpOpened = r));
    const compaction = journal.compact(() => states.list(0));
    await opening;
    // The periodic check starts while the new file is being opened, before the rename.
    const check = journal.verify(() => states.list(0));
    await new Promise((r) => setTimeout(r, 20));
    releaseTmp!();
    await compaction;
    releaseIdentity!();
    expect(await check).toBeUndefined();
    await journal.close();
    expect((await reopen(path)).states.map((s) => s.key)).toEqual(['a']);
  });

  it('group-commits: records that arrive while a sync runs share the next sync', async () => {
    const path = freshPath();
    const disk = slowDisk();
    const { held } = disk;
    const { journal } = await StateJournal.open(path, { openFile: disk.openFile });
    const states = new GroupStates((change) => journal.record(change));
    states.tryStart('first', 'f', run('first'), 1);
    const first = journal.flush();
    // Polled, not slept on: the append before the sync runs on the thread pool, slower on a busy machine.
    await expect.poll(() => disk.syncs, { timeout: 5_000 }).toBe(1);
    // 1,000 runs finish one after another, each in its own turn of the event loop, while the first sync is slow.
    const durable: Array<Promise<boolean>> = [];
    for (let i = 0; i < 1_000; i++) {
      await new Promise((r) => setImmediate(r));
      states.tryStart(`g${i}`, 'f', run(`e${i}`), 1);
      durable.push(journal.flush());
    }
    expect(disk.syncs).toBe(1);
    held.shift()!();
    expect(await first).toBe(true);
    await expect.poll(() => disk.syncs, { timeout: 5_000 }).toBe(2);
    held.shift()!();
    expect(await Promise.all(durable)).toEqual(durable.map(() => true));
    expect(disk.syncs).toBe(2);
    expect(journal.syncCount).toBe(2);
    await journal.close();
    expect((await reopen(path)).states).toHaveLength(1_001);
  });

  it('rewrites itself from memory when its file was deleted or replaced while running', async () => {
    const { path, journal, states } = await journalWithCooldown();
    expect(await journal.verify(() => states.list(3))).toBeUndefined();

    rmSync(path);
    expect(await journal.verify(() => states.list(3))).toBe('deleted');
    expect((await readJournal(path)).states.map((s) => s.key)).toEqual(['a']);

    writeFileSync(`${path}.other`, '');
    renameSync(`${path}.other`, path);
    expect(await journal.verify(() => states.list(3))).toBe('replaced');
    states.tryStart('b', 'f', run('b'), 4);
    await journal.close();
    expect((await reopen(path)).states.map((s) => s.key)).toEqual(['a', 'b']);
  });
});

describe('StateJournal when the disk fails', () => {
  it('a run whose own start the full disk kept out of the file is not claimed (its sender was refused and sends again); a run already in the file is, and so is one whose start got in once the disk was back', async () => {
    const path = freshPath();
    const disk = fullDisk(false);
    const { journal } = await StateJournal.open(path, { openFile: disk.openFile, onError: () => {} });
    const store = new JournalRunStateStore(journal);
    const [before, during, back] = [run('before', { queued: true }), run('during', { queued: true }), run('back', { queued: true })];
    store.tryStart('before', 'f', before, 1);
    expect(await store.commit()).toBe(true);
    disk.full = true;
    store.tryStart('during', 'f', during, 2);
    expect(await store.commit()).toBe(false);
    expect(await store.claim('during', during)).toEqual({ claim: 'unavailable' });
    expect(store.get('during')).toBeUndefined();
    // Its marker fails to write too, but the run is in the file: it goes on, as a restart would resume it.
    expect(await store.claim('before', before)).toEqual({ claim: 'held' });
    store.tryStart('back', 'f', back, 3);
    disk.full = false;
    expect(await store.claim('back', back)).toEqual({ claim: 'held' });
    await store.close();
    expect((await readJournal(path)).states.map((s) => s.key)).toEqual(['before', 'back']);
  });

  it('reports a failed write, is not durable until the disk is back, then writes the kept lines', async () => {
    const path = freshPath();
    const errors: Array<[string, number]> = [];
    // The real file, or /dev/full while `disk.full` is set.
    const disk = fullDisk(false);
    const { journal } = await StateJournal.open(path, { openFile: disk.openFile, onError: (err, count) => errors.push([(err as NodeJS.ErrnoException).code ?? '', count]) });
    disk.full = true;
    journal.record({ key: 'a', flow: 'f', phase: 'running', eventId: 'e', since: 1 });
    expect(await journal.flush()).toBe(false);
    expect(journal.durable).toBe(false);
    journal.record({ key: 'a', flow: 'f', phase: 'cooling', eventId: 'e', since: 2, until: 99 });
    expect(await journal.flush()).toBe(false);
    expect(errors).toEqual([['ENOSPC', 1], ['ENOSPC', 2]]);

    disk.full = false;
    expect(await journal.flush()).toBe(true);
    expect(journal.durable).toBe(true);
    await journal.close();
    expect((await reopen(path))).toEqual({ states: [{ key: 'a', flow: 'f', phase: 'cooling', eventId: 'e', since: 2, until: 99 }], failures: [], problems: [] });
  });

  it('a failed run whose line was appended but not synced (EIO) is written again, and read back once', async () => {
    const path = freshPath();
    let syncFails = false;
    const openFile = syncFailing(() => syncFails, 'fdatasync');
    const { journal } = await StateJournal.open(path, { openFile });
    const states = new GroupStates((change) => journal.record(change));
    const failure = { flow: 'f', eventId: 'a', eventType: 't', error: 'boom', receivedAt: 1, startedAt: 2, finishedAt: 3 };
    states.tryStart('a', 'f', run('a'), 1);
    states.release('a', failure);
    syncFails = true;
    expect(await journal.flush()).toBe(false);
    syncFails = false;
    expect(await journal.flush()).toBe(true);
    await journal.close();
    // The lines were appended twice (the retry cannot know the first append landed).
    expect(lines(path).filter((l) => l.includes('"failed"'))).toHaveLength(2);
    expect(await reopen(path)).toEqual({ states: [], failures: [{ key: 'a', phase: 'failed', ...failure }], problems: [] });
  });

  it('a compaction that cannot open its new file (EMFILE) keeps the old journal in use: what flush() calls durable survives kill -9', async () => {
    const path = freshPath();
    let opensFail = false;
    // The process is out of file descriptors (a wave of connections) when the compaction opens the new file.
    const openFile: OpenJournalFile = (at) => (opensFail ? Promise.reject(Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE' })) : openJournalFile(at));
    const { journal } = await StateJournal.open(path, { openFile });
    const states = new GroupStates((change) => journal.record(change));
    states.tryStart('a', 'f', run('a'), 1);
    expect(await journal.flush()).toBe(true);
    opensFail = true;
    await expect(journal.compact(() => states.list(1))).rejects.toThrow('EMFILE');
    states.tryStart('b', 'f', run('b'), 2);
    expect(await journal.flush()).toBe(true);
    // kill -9 now: the restart reads the file at `path`, without close().
    expect((await readJournal(path)).states.map((s) => s.key)).toEqual(['a', 'b']);
    opensFail = false;
    await journal.close();
  });

  it('a compaction that fails leaves no snapshot behind: on a disk short of space it would hold the room the appends need', async () => {
    const path = freshPath();
    let opensFail = false;
    const openFile: OpenJournalFile = (at) => (opensFail ? Promise.reject(Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE' })) : openJournalFile(at));
    const { journal } = await StateJournal.open(path, { openFile });
    const states = new GroupStates((change) => journal.record(change));
    for (let i = 0; i < 100; i++) states.tryStart(`g${i}`, 'f', run(`g${i}`), 1);
    expect(await journal.flush()).toBe(true);
    // Fails once the whole snapshot is written: the most a failed compaction can leave.
    opensFail = true;
    await expect(journal.compact(() => states.list(1))).rejects.toThrow('EMFILE');
    opensFail = false;
    expect(readdirSync(dirname(path)).sort()).toEqual(['state.jsonl']);
    await journal.close();
  });

  it('says at close how many changes the full disk kept from being saved, instead of dropping them silently', async () => {
    const path = freshPath();
    const disk = fullDisk(false);
    const { journal } = await StateJournal.open(path, { openFile: disk.openFile, onError: () => {} });
    journal.record({ key: 'a', flow: 'f', phase: 'running', eventId: 'e', since: 1 });
    expect(await journal.flush()).toBe(true);
    // Shutdown on a full disk: the run ended and cools down, but that cannot be written.
    disk.full = true;
    journal.record({ key: 'a', flow: 'f', phase: 'cooling', eventId: 'e', since: 2, until: 8e12 });
    await expect(journal.close()).rejects.toThrow(`1 run-state change could not be written to the journal before closing (ENOSPC: no space left on device, write): after the restart, runs that ended since may run again and their cooldowns are missing`);
    expect((await reopen(path)).states).toMatchObject([{ key: 'a', phase: 'running' }]);
  });

  it('says at close that only run start marks went unsynced when the last sync fails with nothing else unwritten, not "0 changes" and lost cooldowns', async () => {
    const path = freshPath();
    let syncFails = false;
    const openFile = syncFailing(() => syncFails, 'fsync');
    const { journal } = await StateJournal.open(path, { openFile, onError: () => {} });
    const store = new JournalRunStateStore(journal);
    store.tryStart('a', 'f', run('a', { queued: true }), 1);
    await store.commit();
    // Appended, left for the run's next write to sync; the disk fails before then.
    await store.claim('a', run('a', { queued: true }));
    syncFails = true;
    await expect(journal.close()).rejects.toThrow('1 run start mark could not be synced to the journal before closing (EIO: i/o error, fsync): after a power cut, that run counts no restart; no run state is lost');
  });

  it('a disk full for longer than the lines it keeps leaves the file behind memory: not durable until it is rewritten from memory, which the store\'s upkeep does', async () => {
    const path = freshPath();
    const disk = fullDisk(false);
    const errors: number[] = [];
    const { journal } = await StateJournal.open(path, { openFile: disk.openFile, maxUnwrittenLines: 3, onError: (_err, count) => errors.push(count) });
    const store = new JournalRunStateStore(journal);
    store.tryStart('a', 'f', run('a'), 1);
    expect(await store.commit()).toBe(true);
    disk.full = true;
    // Group a's run succeeds, then three more runs start: four changes, one more than are kept.
    store.succeeded('a', 2, 8e12);
    for (const key of ['b', 'c', 'd']) store.tryStart(key, 'f', run(key), 3);
    expect(await store.commit()).toBe(false);
    expect(errors).toEqual([4]);

    disk.full = false;
    // The file misses a change it could not keep (a's cooldown): nothing may be called durable on it.
    expect(await store.commit()).toBe(false);
    expect(store.durable).toBe(false);
    await store.maintain(4);
    expect(store.durable).toBe(true);
    expect(await store.commit()).toBe(true);
    // kill -9 now: the restart holds a's cooldown (it would run a's plugins again if it read a's run as cut short).
    expect((await readJournal(path)).states.map((s) => [s.key, s.phase])).toEqual([['a', 'cooling'], ['b', 'running'], ['c', 'running'], ['d', 'running']]);
    await store.close();
  });

  it('a shutdown once the disk is back, before the upkeep rewrote the file, writes the changes it dropped: the store rewrites it from memory as it closes', async () => {
    const path = freshPath();
    const disk = fullDisk(false);
    const { journal } = await StateJournal.open(path, { openFile: disk.openFile, maxUnwrittenLines: 1, onError: () => {} });
    const store = new JournalRunStateStore(journal);
    store.tryStart('a', 'f', run('a'), 1);
    expect(await store.commit()).toBe(true);
    disk.full = true;
    // a's run succeeds and b's starts while the disk is full: two changes, one more than are kept.
    store.succeeded('a', 2, 8e12);
    store.tryStart('b', 'f', run('b'), 3);
    expect(await store.commit()).toBe(false);
    // Space freed, then SIGTERM within the 5 s between two checks of the journal.
    disk.full = false;
    await store.close();
    // The restart holds a's cooldown (read as cut short, a's run would call its plugins again) and resumes b.
    expect((await readJournal(path)).states.map((s) => [s.key, s.phase])).toEqual([['a', 'cooling'], ['b', 'running']]);
  });

  it('a store whose lock was lost does not rewrite the file as it closes, though it dropped changes: the rewrite would replace what the file\'s new holder wrote', async () => {
    const path = freshPath();
    const disk = fullDisk(false);
    const { journal } = await StateJournal.open(path, { openFile: disk.openFile, maxUnwrittenLines: 1, onError: () => {} });
    const lost = new AbortController();
    const store = new JournalRunStateStore(journal, undefined, [], [], { lost: lost.signal, confirm: async () => {}, release: async () => {} });
    store.tryStart('a', 'f', run('a'), 1);
    disk.full = true;
    store.tryStart('b', 'f', run('b'), 2);
    expect(await store.commit()).toBe(false);
    disk.full = false;
    // Another process took the file over (this one was stopped past the lock's stale time) and started a run of its own.
    const next = await StateJournal.open(path);
    const newHolder = new JournalRunStateStore(next.journal, undefined, next.recovered.states);
    newHolder.tryStart('c', 'f', run('c'), 3);
    expect(await newHolder.commit()).toBe(true);
    lost.abort();
    await expect(store.close()).rejects.toThrow('could not be written to the journal before closing');
    expect((await readJournal(path)).states.map((s) => s.key)).toEqual(['c']);
    await newHolder.close();
  });

  it('a journal whose open file fails its writes (its descriptor closed under it: EBADF) is rewritten to a new file by the store\'s upkeep, rather than failing until a restart', async () => {
    const path = freshPath();
    let opened: JournalFile | undefined;
    const openFile: OpenJournalFile = async (at) => (opened = await openJournalFile(at));
    const { journal } = await StateJournal.open(path, { openFile, onError: () => {} });
    const store = new JournalRunStateStore(journal);
    store.tryStart('a', 'f', run('a'), 1);
    expect(await store.commit()).toBe(true);
    // The file the journal appends to goes bad while the disk is fine (a stale NFS handle, a device reset, a closed descriptor).
    await opened!.close();
    store.succeeded('a', 2, 8e12);
    expect(await store.commit()).toBe(false);
    await store.maintain(3);
    expect(store.durable).toBe(true);
    store.tryStart('b', 'f', run('b'), 4);
    expect(await store.commit()).toBe(true);
    expect((await readJournal(path)).states.map((s) => [s.key, s.phase])).toEqual([['a', 'cooling'], ['b', 'running']]);
    await store.close();
  });

  it('a journal whose descriptor was closed under it (EBADF, which its close() fails with too) is rewritten by the upkeep, which none of the old file\'s errors fails', async () => {
    const path = freshPath();
    const { journal } = await StateJournal.open(path, { onError: () => {} });
    const store = new JournalRunStateStore(journal);
    store.tryStart('a', 'f', run('a'), 1);
    expect(await store.commit()).toBe(true);
    // The descriptor itself goes (as EBADF does): every call on the file fails, its close() as well.
    const fd = readdirSync('/proc/self/fd').find((n) => { try { return readlinkSync(`/proc/self/fd/${n}`) === path; } catch { return false; } });
    closeSync(Number(fd));
    store.succeeded('a', 2, 8e12);
    expect(await store.commit()).toBe(false);
    // The rewrite's new file is in use by then: the old one's failing close is no failure of the upkeep.
    await expect(store.maintain(3)).resolves.toBeUndefined();
    expect(store.durable).toBe(true);
    store.tryStart('b', 'f', run('b'), 4);
    expect(await store.commit()).toBe(true);
    expect((await readJournal(path)).states.map((s) => [s.key, s.phase])).toEqual([['a', 'cooling'], ['b', 'running']]);
    await store.close();
  });

  it('ignores records after close', async () => {
    const path = freshPath();
    const { journal } = await StateJournal.open(path);
    await journal.close();
    journal.record({ key: 'late', flow: 'f', phase: 'running', eventId: 'e', since: 1 });
    await journal.flush();
    expect((await reopen(path)).states).toEqual([]);
  });
});
