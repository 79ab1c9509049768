import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** True when this machine lets a child process mount a tmpfs in its own mount namespace (root, or user namespaces). */
export function canMountPrivateTmpfs(): boolean {
  const target = mkdtempSync(join(tmpdir(), 'hollowtrees-mount-probe-'));
  return spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `mount -t tmpfs -o size=64k tmpfs ${target}`]).status === 0;
}

/**
 * A command prefix (for `spawn`, or `startCli`'s `wrap`) that runs the command in a mount namespace of its own
 * with a tmpfs over `dir` mounted with `options` (e.g. `size=256k`, `ro`), which no other process sees;
 * `setup`, a shell command, runs first on the mounted tmpfs (e.g. to put a file there).
 */
export function underPrivateTmpfs(dir: string, options: string, setup = 'true'): string[] {
  return ['unshare', '-m', '--propagation', 'private', 'sh', '-c', `mount -t tmpfs -o ${options} tmpfs ${dir} && ${setup} && exec "$0" "$@"`];
}
