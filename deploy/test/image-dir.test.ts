import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { spawnCaptured, startOnFreePort, tempDir, waitForOutput, type Spawned } from '@hollowtrees/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './repo.js';

// The directory the container image holds, made by the script the Dockerfile runs, then every
// binary started from it as the image would: `node /app/bin/<name>.mjs`, in an empty working
// directory, with no workspace (no node_modules, no pnpm links) anywhere above it.
const run = promisify(execFile);
const PACKAGES = { hollowtrees: 'packages/core', 'hollowtrees-k8s-drain': 'packages/plugin-k8s-drain', 'hollowtrees-aws-spot': 'packages/plugin-aws-spot' } as const;

let tmp: { path: string; remove: () => Promise<void> };
let app: string;
let emptyCwd: string;
const started: Spawned[] = [];

beforeAll(async () => {
  tmp = await tempDir('image-dir');
  app = join(tmp.path, 'app');
  emptyCwd = join(tmp.path, 'cwd');
  await mkdir(emptyCwd);
  await run(process.execPath, [join(REPO_ROOT, 'scripts/build-image-dir.mjs'), app], { cwd: REPO_ROOT });
}, 180_000);

afterAll(async () => {
  for (const proc of started) await proc.kill();
  await tmp?.remove();
});

const NO_NODE_PATH = { NODE_PATH: undefined };
const binOf = (bin: string): string => join(app, 'bin', `${bin}.mjs`);

/** Runs `node <app>/bin/<bin>.mjs args` in the empty directory, with no NODE_PATH to lean on. */
function start(bin: string, args: readonly string[]): Spawned {
  const proc = spawnCaptured(bin, process.execPath, [binOf(bin), ...args], NO_NODE_PATH, emptyCwd);
  started.push(proc);
  return proc;
}

/** Starts the image's core as {@link start} does, on a free port (a new one if another process took it first), ready once `readiness` answers 200. */
async function startCore(readiness: string): Promise<{ core: Spawned; port: number }> {
  const { proc, port } = await startOnFreePort('hollowtrees', process.execPath, (p) => [binOf('hollowtrees'), '--listen', `127.0.0.1:${p}`], readiness, { timeoutMs: 20_000, env: NO_NODE_PATH, cwd: emptyCwd });
  started.push(proc);
  return { core: proc, port };
}

async function versionOf(dir: string): Promise<string> {
  return (JSON.parse(await readFile(join(REPO_ROOT, dir, 'package.json'), 'utf8')) as { version: string }).version;
}

/** Every symbolic link under `dir`, with where it points. */
async function symlinks(dir: string): Promise<Array<{ link: string; target: string }>> {
  const found: Array<{ link: string; target: string }> = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isSymbolicLink()) found.push({ link: path, target: resolve(dirname(path), await readlink(path)) });
    else if (entry.isDirectory()) found.push(...(await symlinks(path)));
  }
  return found;
}

describe('the image directory (scripts/build-image-dir.mjs)', () => {
  it('holds one entry point per binary, and the packages with production dependencies only', async () => {
    expect((await readdir(join(app, 'bin'))).sort()).toEqual(
      [...Object.keys(PACKAGES), ...(existsSync(join(REPO_ROOT, 'packages/node-watcher')) ? ['hollowtrees-node-watcher'] : []), 'tcp-probe']
        .map((b) => `${b}.mjs`)
        .sort(),
    );
    // devDependencies (testkit, the stand-ins) stay out of the image.
    for (const bin of Object.keys(PACKAGES)) expect(existsSync(join(app, bin, 'node_modules/@hollowtrees/testkit'))).toBe(false);
    expect(existsSync(join(app, 'hollowtrees/node_modules/@hollowtrees/grpcplugin/dist/index.js'))).toBe(true);
    expect(existsSync(join(app, 'hollowtrees/src'))).toBe(false);
  });

  it('is what the Dockerfile builds: this script into /app, on a distroless Node base whose node the exec probes name, run as non-root', async () => {
    const dockerfile = await readFile(join(REPO_ROOT, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^ && node scripts\/build-image-dir\.mjs \/app$/m);
    expect(dockerfile).toMatch(/^COPY --from=build \/app \/app$/m);
    // The final stage: node at /nodejs/bin/node (the manifests' exec probes), a numeric non-root user.
    expect(dockerfile.split(/^FROM /m).at(-1)).toMatch(/^gcr\.io\/distroless\/nodejs22-debian12:nonroot\n[\s\S]*^USER 65532:65532$/m);
    const cmd = JSON.parse(/^CMD (.+)$/m.exec(dockerfile)![1]!) as string[];
    expect(existsSync(join(app, cmd[0]!.replace(/^\/app\//, '')))).toBe(true);
  });

  it('has no link leading out of itself, so it runs where the workspace is not', async () => {
    const outside = (await symlinks(app)).filter(({ target }) => relative(app, target).startsWith('..'));
    expect(outside).toEqual([]);
  });

  // The node watcher too: every bin prints its version alone, so a script reads each the same way.
  const versioned = { ...PACKAGES, ...(existsSync(join(REPO_ROOT, 'packages/node-watcher')) ? { 'hollowtrees-node-watcher': 'packages/node-watcher' } : {}) };
  it.each(Object.entries(versioned))('%s --version prints its package version from an empty directory', async (bin, dir) => {
    const proc = start(bin, ['--version']);
    expect(await proc.exited, proc.output()).toBe('code 0');
    expect(proc.output().trim()).toBe(await versionOf(dir));
  });

  it('core serves an alert, runs its flow, and exits 0 on SIGTERM sent to node itself', async () => {
    const { core, port } = await startCore('/-/ready');
    const res = await fetch(`http://127.0.0.1:${port}/api/v2/alerts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ labels: { alertname: 'SpotInstanceTerminating', instance_id: 'i-0image' }, startsAt: '2026-11-25T10:00:00Z' }]),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'success', accepted: 1 });
    const ran = JSON.parse(await waitForOutput(core, /flow run succeeded/, 20_000)) as Record<string, unknown>;
    expect(ran).toMatchObject({ flow: 'demo', outcome: 'succeeded' });
    core.child.kill('SIGTERM');
    expect(await core.exited, core.output()).toBe('code 0');
  });

  it('tcp-probe.mjs passes on a listening port and fails on a closed one or a bad argument', async () => {
    const { core, port } = await startCore('/-/healthy');
    const probe = (target: string): Spawned => start('tcp-probe', [target]);
    expect(await probe(`127.0.0.1:${port}`).exited).toBe('code 0');
    await core.kill();
    const closed = probe(`127.0.0.1:${port}`);
    expect(await closed.exited).toBe('code 1');
    expect(closed.output()).toContain('ECONNREFUSED');
    expect(await probe('9000').exited).toBe('code 2');
  });

  // Node 20.19+ loads an ES module through require() when the exports map has a condition it
  // takes ('default'; 'import' alone is not one).
  it.each([
    ['hollowtrees', '@hollowtrees/grpcplugin', 'serve'],
    ['hollowtrees', '@hollowtrees/core', 'startHollowtrees'],
    ['hollowtrees-k8s-drain', '@hollowtrees/plugin-k8s-drain', 'createDrainHandler'],
    ['hollowtrees-aws-spot', '@hollowtrees/plugin-aws-spot', 'AwsSpotReplaceHandler'],
  ])('a CommonJS script in %s can require() %s', async (bin, pkg, name) => {
    const script = join(app, bin, 'require-check.cjs');
    await writeFile(
      script,
      `const m = require(${JSON.stringify(pkg)});
if (typeof m[${JSON.stringify(name)}] !== 'function') throw new Error('no ${name} in ' + Object.keys(m));
console.log('required', Object.keys(m).length, 'exports');\n`,
    );
    const { stdout } = await run(process.execPath, [script], { cwd: emptyCwd });
    expect(stdout).toMatch(/^required \d+ exports/);
  });
});
