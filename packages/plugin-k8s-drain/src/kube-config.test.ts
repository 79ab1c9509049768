import { writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { tempDir } from '@hollowtrees/testkit';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadKubeConfig } from './kube-config.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  vi.unstubAllEnvs();
  for (const c of cleanups.splice(0)) await c();
});

/** A kubeconfig of one cluster, user and context, each named `name`, in `dir`. */
async function kubeconfig(dir: string, file: string, name: string): Promise<string> {
  const path = join(dir, file);
  await writeFile(path, `current-context: ${name}\nclusters:\n- name: ${name}\n  cluster: {server: 'https://${file}.example:6443'}\nusers:\n- name: ${name}\n  user: {token: t}\ncontexts:\n- name: ${name}\n  context: {cluster: ${name}, user: ${name}}\n`);
  return path;
}

describe('loadKubeConfig with a $KUBECONFIG list', () => {
  it('names the file where the client stopped: one repeating an earlier file\'s cluster, not a later file that is missing', async () => {
    const dir = await tempDir('kube-config');
    cleanups.push(dir.remove);
    // Two kubeadm kubeconfigs both name their cluster "kubernetes": the client refuses to merge the second.
    const [first, second, missing] = [await kubeconfig(dir.path, 'a', 'kubernetes'), await kubeconfig(dir.path, 'b', 'kubernetes'), join(dir.path, 'missing')];
    const list = [first, second, missing].join(delimiter);
    vi.stubEnv('KUBECONFIG', list);
    expect(() => loadKubeConfig()).toThrow(new Error(`$KUBECONFIG ${second} (one of ${list}): Duplicate cluster: kubernetes`));
  });

  it('names the missing file of a list whose other files merge', async () => {
    const dir = await tempDir('kube-config');
    cleanups.push(dir.remove);
    const [first, missing] = [await kubeconfig(dir.path, 'a', 'one'), join(dir.path, 'missing')];
    const list = [first, missing].join(delimiter);
    vi.stubEnv('KUBECONFIG', list);
    expect(() => loadKubeConfig()).toThrow(new Error(`$KUBECONFIG ${missing} (one of ${list}): no such file or directory`));
  });
});
