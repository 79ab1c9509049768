import { open, type FileHandle } from 'node:fs/promises';

/** Identity of a file on disk, to notice when the journal was deleted or replaced under us. */
export interface FileIdentity {
  dev: number;
  ino: number;
  /** 0 once the file was deleted while still open. */
  nlink: number;
}

/**
 * The append-only file under the journal. Every call runs on libuv's thread
 * pool, so a slow `fdatasync` never holds the event loop.
 */
export interface JournalFile {
  append(text: string): Promise<void>;
  /** Makes what was appended durable (fdatasync). */
  sync(): Promise<void>;
  /** The identity of the open file (fstat). */
  identity(): Promise<FileIdentity>;
  close(): Promise<void>;
}

/** Opens `path` for appending, creating it. */
export type OpenJournalFile = (path: string) => Promise<JournalFile>;

/** The real file. */
export const openJournalFile: OpenJournalFile = async (path) => fileHandleJournal(await open(path, 'a'));

function fileHandleJournal(handle: FileHandle): JournalFile {
  return {
    append: async (text) => {
      // appendFile loops until every byte is written; a bare write() may stop short on a full disk.
      await handle.appendFile(text);
    },
    sync: () => handle.datasync(),
    identity: async () => {
      const { dev, ino, nlink } = await handle.stat();
      return { dev, ino, nlink };
    },
    close: () => handle.close(),
  };
}
