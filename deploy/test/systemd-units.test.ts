import { execFile, spawnSync } from 'node:child_process';
import { cp, mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createLogger, parseConfig, startHollowtrees, type Hollowtrees } from '@hollowtrees/core';
import { serve } from '@hollowtrees/grpcplugin';
import { tempDir } from '@hollowtrees/testkit';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './repo.js';

// The VM units, checked by systemd's own tools: each unit file is valid, and with the shared
// prefix drop-in (hollowtrees-.service.d/hardening.conf) systemd rates each service's exposure
// low; without the drop-in it would be high, so the drop-in is what hardens them.
const UNITS_DIR = join(REPO_ROOT, 'deploy/systemd');
const run = promisify(execFile);
const hasSystemd = spawnSync('systemd-analyze', ['--version'], { stdio: 'ignore' }).status === 0;
if (!hasSystemd) {
  const message = 'systemd-analyze is not installed: deploy/systemd units are NOT verified';
  if (process.env['CI'] === 'true') throw new Error(message);
  console.warn(`\n!!! SKIPPED: ${message}\n`);
}

/** The bin each unit runs, as its package declares it. */
const BIN_OF_UNIT: Record<string, string> = {
  'hollowtrees-core.service': 'hollowtrees',
  'hollowtrees-k8s-drain.service': 'hollowtrees-k8s-drain',
  'hollowtrees-aws-spot.service': 'hollowtrees-aws-spot',
  'hollowtrees-node-watcher.service': 'hollowtrees-node-watcher',
};
const PACKAGE_OF_BIN: Record<string, string> = {
  hollowtrees: 'core',
  'hollowtrees-k8s-drain': 'plugin-k8s-drain',
  'hollowtrees-aws-spot': 'plugin-aws-spot',
  'hollowtrees-node-watcher': 'node-watcher',
};

/**
 * The node watcher unit's ExecStart arguments after its bin, as systemd passes them when no env file
 * sets anything: `${VAR}` expanded from the unit's own Environment= lines, a word of its own staying
 * one argument, empty when the variable is unset.
 */
async function watcherArgs(): Promise<string[]> {
  const unit = await readFile(join(UNITS_DIR, 'hollowtrees-node-watcher.service'), 'utf8');
  const env = Object.fromEntries([...unit.matchAll(/^Environment=(\w+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));
  return /^ExecStart=(.*)$/m.exec(unit)![1]!.split(/\s+/).slice(2).map((word) => word.replace(/\$\{(\w+)\}/g, (_, name: string) => env[name] ?? ''));
}

/** systemd's overall exposure score (0 safest, 10 most exposed) of `unit` installed under `root`. */
async function exposure(root: string, unit: string): Promise<number> {
  const { stdout } = await run('systemd-analyze', ['security', '--offline=yes', `--root=${root}`, '--no-pager', unit]);
  const score = /Overall exposure level for \S+: ([\d.]+)/.exec(stdout)?.[1];
  if (!score) throw new Error(`no exposure level in:\n${stdout}`);
  return Number(score);
}

describe.skipIf(!hasSystemd)('the systemd units (deploy/systemd)', () => {
  let tmp: { path: string; remove: () => Promise<void> };
  let units: string[];
  beforeAll(async () => {
    tmp = await tempDir('systemd-units');
    units = (await readdir(UNITS_DIR)).filter((f) => f.endsWith('.service'));
  });
  afterAll(() => tmp?.remove());

  it('has a unit per binary, each running `node` on the installed bin directly (no npx)', async () => {
    expect(units.sort()).toEqual(Object.keys(BIN_OF_UNIT).sort());
    for (const unit of units) {
      const text = await readFile(join(UNITS_DIR, unit), 'utf8');
      const bin = BIN_OF_UNIT[unit]!;
      expect(text, unit).toMatch(new RegExp(`^ExecStart=/usr/bin/node /opt/hollowtrees/node_modules/\\.bin/${bin} `, 'm'));
      const pkg = PACKAGE_OF_BIN[bin]!;
      expect(Object.keys((JSON.parse(await readFile(join(REPO_ROOT, 'packages', pkg, 'package.json'), 'utf8')) as { bin: object }).bin)).toEqual([bin]);
    }
  });

  it('runs the AWS plugin as examples/config.yaml, which the VM install copies, asks: hooks completed after the drain', async () => {
    const example = await readFile(join(REPO_ROOT, 'examples/config.yaml'), 'utf8');
    const asked = /--complete-lifecycle-hooks (\S+)/.exec(example)?.[1];
    expect(asked).toBe('after-drain');
    const unit = await readFile(join(UNITS_DIR, 'hollowtrees-aws-spot.service'), 'utf8');
    expect(/^ExecStart=.*$/m.exec(unit)?.[0]).toContain(`--complete-lifecycle-hooks ${asked}`);
  });

  it("serves the node watcher's metrics where examples/prometheus/prometheus.yml scrapes them: the node's address, not loopback", async () => {
    const args = await watcherArgs();
    const listen = args[args.indexOf('--listen') + 1]!;
    const [, v6, host = v6, port] = /^(?:\[(.*)\]|(.*)):(\d+)$/.exec(listen)!;
    const prometheus = parse(await readFile(join(REPO_ROOT, 'examples/prometheus/prometheus.yml'), 'utf8')) as { scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[] }> }> };
    const targets = prometheus.scrape_configs.find((j) => j.job_name === 'hollowtrees-node-watcher')!.static_configs.flatMap((c) => c.targets);
    expect(targets.length).toBeGreaterThan(0);
    for (const target of targets) expect(target, 'a scrape target of another machine').not.toMatch(/^(127\.|localhost|\[::1\])/);
    expect(targets.map((t) => t.split(':').at(-1))).toEqual(targets.map(() => port));
    // Every interface: a scrape of this machine's address from Prometheus' host reaches it.
    expect(['', '0.0.0.0', '::']).toContain(host);
    // And the watcher takes it (exit 1 is the metadata service not answering; 2 would be a usage error).
    const exit = await run(process.execPath, [join(REPO_ROOT, 'packages/node-watcher/dist/cli.js'), '--listen', listen.replace(/\d+$/, '0'), '--once', '--dry-run', '--cloud', 'aws', '--metadata-url', 'http://127.0.0.1:1']).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
    );
    expect(exit).toMatchObject({ code: 1, stderr: expect.not.stringContaining('--listen') as string });
  });

  it('has the node watcher, started before HOLLOWTREES_CORE_URL is set in its env file, say which variable to set', async () => {
    const { HOLLOWTREES_CORE_URL: _unset, ...env } = process.env;
    const exit = await run(process.execPath, [join(REPO_ROOT, 'packages/node-watcher/dist/cli.js'), ...(await watcherArgs())], { env }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
    );
    expect(exit).toMatchObject({ code: 2, stderr: expect.stringContaining('HOLLOWTREES_CORE_URL') as string });
  });

  it('passes systemd-analyze verify', async () => {
    const { stdout, stderr } = await run('systemd-analyze', ['verify', ...units.map((u) => join(UNITS_DIR, u))]);
    expect(`${stdout}${stderr}`.trim()).toBe('');
  });

  it('rates every unit as little exposed with the shared drop-in, and as exposed without it', async () => {
    const hardened = join(tmp.path, 'hardened/etc/systemd/system');
    const bare = join(tmp.path, 'bare/etc/systemd/system');
    await mkdir(hardened, { recursive: true });
    await mkdir(bare, { recursive: true });
    await cp(UNITS_DIR, hardened, { recursive: true });
    for (const unit of units) await cp(join(UNITS_DIR, unit), join(bare, unit));
    for (const unit of units) {
      expect(await exposure(join(tmp.path, 'hardened'), unit), unit).toBeLessThanOrEqual(2);
      expect(await exposure(join(tmp.path, 'bare'), unit), unit).toBeGreaterThan(8);
    }
  });
});

describe('the VM install keeps run state where the unit keeps it', () => {
  it("core's unit and examples/config.yaml, which the VM install copies: a still-firing alert re-sent after a restart of the service is not acted on again", async () => {
    const unit = await readFile(join(UNITS_DIR, 'hollowtrees-core.service'), 'utf8');
    const stateDirectory = /^StateDirectory=(\S+)$/m.exec(unit)?.[1];
    expect(stateDirectory).toBe('hollowtrees');
    const root = await tempDir('vm-state');
    // The two plugins the example calls, each counting its calls (a dry run would keep no run state to restart with).
    const calls = { drain: 0, replace: 0 };
    const drain = await serve(0, { handle: async () => ({ attributes: { drained: String(++calls.drain) } }) });
    const replace = await serve(0, { handle: async () => ({ attributes: { replaced: String(++calls.replace) } }) });
    try {
      // systemd hands the service its StateDirectory as $STATE_DIRECTORY (/var/lib/hollowtrees); here, under a temporary root.
      const env = { STATE_DIRECTORY: join(root.path, 'var/lib', stateDirectory!), K8S_DRAIN_ADDRESS: `127.0.0.1:${drain.port}`, AWS_SPOT_ADDRESS: `127.0.0.1:${replace.port}` };
      const loaded = parseConfig(await readFile(join(REPO_ROOT, 'examples/config.yaml'), 'utf8'), join(REPO_ROOT, 'examples/config.yaml'), env);
      expect(loaded.config.state).toMatchObject({ backend: 'file', file: join(env.STATE_DIRECTORY, 'runs.jsonl') });

      const alert = JSON.stringify([{ labels: { alertname: 'SpotInstanceTerminating', instance_id: 'i-0abc123', instance_action: 'terminate' }, startsAt: '2026-12-01T10:00:00Z' }]);
      const send = async (core: Hollowtrees): Promise<void> => {
        const res = await fetch(`${core.url}/api/v2/alerts`, { method: 'POST', body: alert, headers: { 'content-type': 'application/json' } });
        expect(res.status).toBe(200);
      };
      const deduplicated = async (core: Hollowtrees): Promise<number> => {
        const text = await (await fetch(`${core.url}/metrics`)).text();
        return Number(/^hollowtrees_events_deduplicated_total\{flow="spot-replace"\} (\d+)$/m.exec(text)?.[1] ?? 0);
      };
      const start = (): Promise<Hollowtrees> => startHollowtrees(loaded, { listen: '127.0.0.1:0', logger: createLogger('silent') });

      const first = await start();
      await send(first);
      await first.close();
      // `systemctl restart hollowtrees-core`: the same alert, as Prometheus re-sends it each minute while it fires.
      const second = await start();
      try {
        await send(second);
        expect(await deduplicated(second)).toBe(1);
      } finally {
        await second.close();
      }
      // spot-replace and spot-drain each called aws-spot once, spot-drain k8s-drain once: nothing again after the restart.
      expect(calls).toEqual({ drain: 1, replace: 2 });
    } finally {
      await drain.close();
      await replace.close();
      await root.remove();
    }
  });
});
