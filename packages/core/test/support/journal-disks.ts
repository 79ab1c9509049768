import { open } from 'node:fs/promises';
import { openJournalFile, type JournalFile } from '../../src/state/journal-file.js';

/** The real journal file behind a disk whose fdatasync a test holds, as a slow disk would. */
export interface SlowDisk {
  /** Opens the real file with the held sync; pass as `StateJournal.open`'s `openFile`. */
  openFile(path: string): Promise<JournalFile>;
  /** While true, each sync waits in {@link SlowDisk.held} until the test calls it. */
  holding: boolean;
  /** One release per held sync, oldest first. */
  readonly held: Array<() => void>;
  /** Syncs started, held or not. */
  readonly syncs: number;
}

export function slowDisk(holding = true): SlowDisk {
  let syncs = 0;
  const disk: SlowDisk = {
    holding,
    held: [],
    get syncs() { return syncs; },
    async openFile(path) {
      const file = await openJournalFile(path);
      return { ...file, sync: async () => {
        syncs++;
        if (disk.holding) await new Promise<void>((resolve) => disk.held.push(resolve));
        await file.sync();
      } };
    },
  };
  return disk;
}

/** The real journal file whose appends go to /dev/full (every write fails with ENOSPC) while `full` is set. */
export interface FullDisk {
  /** Opens the real file with failing appends; pass as `StateJournal.open`'s `openFile`. */
  openFile(path: string): Promise<JournalFile>;
  full: boolean;
}

export function fullDisk(full = true): FullDisk {
  const disk: FullDisk = {
    full,
    async openFile(path) {
      const file = await openJournalFile(path);
      const device = await open('/dev/full', 'w');
      return {
        ...file,
        append: async (text) => {
          if (disk.full) await device.write(text);
          else await file.append(text);
        },
        close: async () => {
          await device.close();
          await file.close();
        },
      };
    },
  };
  return disk;
}
