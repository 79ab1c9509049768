import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OccurrenceFile } from './occurrence-file.js';

const OWNER = '4567890123456789012 3f1c2a9e-8d47-4b6f-9a2e-5c7d1e0b4a61';
const freshPath = (): string => join(mkdtempSync(join(tmpdir(), 'occurrences-')), 'occurrences.json');

/** An occurrence file at `path` for `owner`, with the errors it reports. */
function open(path: string, owner = OWNER): { file: OccurrenceFile; errors: string[] } {
  const errors: string[] = [];
  return { file: new OccurrenceFile(path, owner, (err) => errors.push(err.message)), errors };
}

describe('OccurrenceFile', () => {
  it('gives the next process of the same instance and boot the states saved, and no error for a file not written yet', () => {
    const path = freshPath();
    const first = open(path);
    expect(first.file.state('maintenance-event')).toBeUndefined();
    first.file.save('maintenance-event', { present: true, seen: 2, returnedAt: '2026-12-02T11:00:00.000Z' });
    first.file.save('preempted', { present: false, seen: 0 });
    const next = open(path);
    expect(next.file.state('maintenance-event')).toEqual({ present: true, seen: 2, returnedAt: '2026-12-02T11:00:00.000Z' });
    expect(next.file.state('preempted')).toEqual({ present: false, seen: 0 });
    expect([...first.errors, ...next.errors]).toEqual([]);
  });

  it("takes nothing of another boot's or instance's file: what it says is over", () => {
    const path = freshPath();
    open(path).file.save('maintenance-event', { present: true, seen: 1 });
    expect(open(path, '4567890123456789012 9b0e4d7c-2a51-4f83-b6c9-1d8e3a7f5c20').file.state('maintenance-event')).toBeUndefined();
    expect(open(path, '9999 3f1c2a9e-8d47-4b6f-9a2e-5c7d1e0b4a61').file.state('maintenance-event')).toBeUndefined();
  });

  it('a file that is no JSON is reported and taken as empty; entries that are no state are left out', () => {
    const path = freshPath();
    writeFileSync(path, '{"owner":');
    const garbled = open(path);
    expect(garbled.file.state('maintenance-event')).toBeUndefined();
    expect(garbled.errors).toEqual([expect.stringContaining(`cannot read ${path}`)]);

    writeFileSync(path, JSON.stringify({ owner: OWNER, values: { 'maintenance-event': { present: 'yes', seen: 1 }, preempted: { present: true, seen: 1.5 }, other: { present: true, seen: 1, returnedAt: 5 }, kept: { present: true, seen: 1 } } }));
    const odd = open(path);
    expect(['maintenance-event', 'preempted', 'other', 'kept'].map((k) => odd.file.state(k))).toEqual([undefined, undefined, undefined, { present: true, seen: 1 }]);
    expect(odd.errors).toEqual([]);
    writeFileSync(path, 'null');
    expect(open(path).file.state('kept')).toBeUndefined();
  });

  it('a file it cannot read or write is reported, and the states are still held in memory', () => {
    const dir = mkdtempSync(join(tmpdir(), 'occurrences-'));
    mkdirSync(join(dir, 'a-directory'));
    const unreadable = open(join(dir, 'a-directory'));
    expect(unreadable.errors).toEqual([expect.stringContaining('cannot read'), expect.stringContaining('cannot write')]);
    const unwritable = open(join(dir, 'no-such-dir', 'occurrences.json'));
    unwritable.file.save('maintenance-event', { present: true, seen: 1 });
    // At start, and at the save.
    expect(unwritable.errors).toEqual(Array(2).fill(expect.stringContaining(`cannot write ${join(dir, 'no-such-dir', 'occurrences.json')}`)));
    expect(unwritable.file.state('maintenance-event')).toEqual({ present: true, seen: 1 });
  });

  it('a file it cannot write is reported at start, not first at the maintenance it was set for', () => {
    const dir = mkdtempSync(join(tmpdir(), 'occurrences-'));
    const path = join(dir, 'no-such-dir', 'occurrences.json');
    expect(open(path).errors).toEqual([expect.stringContaining(`cannot write ${path}`)]);
    // One it can write is there from the start, for this instance and boot.
    const fresh = freshPath();
    expect(open(fresh).errors).toEqual([]);
    expect(JSON.parse(readFileSync(fresh, 'utf8'))).toEqual({ owner: OWNER, values: {} });
  });

  it('writes the whole file through a temporary one, leaving no temporary file behind', () => {
    const path = freshPath();
    open(path).file.save('maintenance-event', { present: false, seen: 1 });
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({ owner: OWNER, values: { 'maintenance-event': { present: false, seen: 1 } } });
    expect(() => readFileSync(`${path}.tmp`)).toThrow(/ENOENT/);
  });
});
