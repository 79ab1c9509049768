import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { beforeEach, describe, expect, it, vi } from 'vitest';

// A power cut can undo a rename whose directory was not synced. What is renamed and synced is made observable by
// recording wrappers around the real node:fs/promises (the file system is real; the order of the calls is what is read).
const operations: string[] = [];
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...real,
    rename: async (from: string, to: string) => {
      await real.rename(from, to);
      operations.push(`rename ${to}`);
    },
    open: async (...args: Parameters<typeof real.open>) => {
      const handle = await real.open(...args);
      const sync = handle.sync.bind(handle);
      handle.sync = async () => {
        await sync();
        operations.push(`sync ${String(args[0])}`);
      };
      return handle;
    },
  };
});
// Test files share one module graph per worker (vitest.config.ts: isolate false): loaded afresh here, under the mock.
vi.resetModules();
const { StateJournal } = await import('./state-journal.js');
beforeEach(() => {
  operations.length = 0;
});

describe('StateJournal: the .unreadable copy of a damaged journal', () => {
  it('is renamed into place and its directory synced before the journal is rewritten without the lines it keeps: a power cut then cannot leave the rewrite and no copy', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'hollowtrees-journal-')), 'state.jsonl');
    const cooling = (key: string): string => JSON.stringify({ key, flow: 'f', phase: 'cooling', eventId: 'e', since: 1, until: 8e12 });
    const text = `${cooling('a')}\n${cooling('b').slice(0, -1)}\n`;
    writeFileSync(path, text);
    const { journal, keptAs } = await StateJournal.open(path);
    await journal.close();
    expect(readFileSync(keptAs!, 'utf8')).toBe(text);
    const copied = operations.indexOf(`rename ${keptAs!}`);
    const rewritten = operations.indexOf(`rename ${path}`);
    const dirSynced = operations.indexOf(`sync ${dirname(path)}`, copied);
    expect(copied).toBeGreaterThanOrEqual(0);
    expect(dirSynced).toBeGreaterThan(copied);
    expect(dirSynced).toBeLessThan(rewritten);
  });
});
