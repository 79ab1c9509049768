/** What an error code of the file system means for a file Hollowtrees reads or writes, in words. */
const FILE_PROBLEMS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file or directory',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a part of its path is a file, not a directory',
  EEXIST: 'a part of its path is a file, not a directory',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota is used up',
};

/**
 * Why a file could not be used, in words followed by the system's code ("permission denied
 * (EACCES)"), or the code alone when it has no words here. By the code only: the system's message
 * repeats the path, which may have come from `${VAR}`. Undefined for an error that is not the file
 * system's.
 */
export function fileProblem(err: unknown): string | undefined {
  const { code } = err as NodeJS.ErrnoException;
  if (typeof code !== 'string' || !code.startsWith('E')) return undefined;
  const why = FILE_PROBLEMS[code];
  return why ? `${why} (${code})` : code;
}
