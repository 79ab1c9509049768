import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';

const codeOf = (err: unknown): unknown => (err as NodeJS.ErrnoException).code;

/**
 * Makes `dir` and its missing parents, failing with the reason one cannot be
 * made. Node's recursive mkdir fails with ENOENT when a missing directory
 * cannot be made for another reason (a read-only file system, a used-up quota),
 * which reads as "no such file"; made one level at a time, each mkdir says
 * what stops it (EROFS, EDQUOT).
 */
export async function makeDirectory(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    if (codeOf(err) !== 'ENOENT') throw err;
    const parent = dirname(dir);
    if (parent !== dir) await makeDirectory(parent);
    await mkdir(dir).catch((err: unknown) => {
      // Made meanwhile by someone else: what was asked for is there.
      if (codeOf(err) !== 'EEXIST') throw err;
    });
  }
}
