import { open } from 'node:fs/promises';

/**
 * Makes the renames and creations in `dir` durable (fsync of the directory): a rename is an entry of its directory,
 * which a power cut can undo, leaving the file under its old name, until the directory itself is synced.
 */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
