import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CloudEvent } from '@hollowtrees/grpcplugin';
import { afterEach, describe, expect, it } from 'vitest';
import { killAllCli, startCli } from './test-support/cli-process.js';
import { startRecordingPlugin, type RecordingPlugin } from './test-support/recording-plugin.js';

const dir = mkdtempSync(join(tmpdir(), 'hollowtrees-lifecycle-'));
let fileCount = 0;
const writeConfig = (text: string, name = `config-${++fileCount}.yaml`): string => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

const plugins: RecordingPlugin[] = [];
afterEach(async () => {
  killAllCli();
  for (const p of plugins.splice(0)) await p.close();
});

const instanceOf = (event: CloudEvent): string => (event.data as { labels: { instance_id: string } }).labels.instance_id;
const alert = (instance: string, startsAt = '2026-11-25T10:00:00Z') =>
  JSON.stringify([{ labels: { alertname: 'SpotInstanceTerminating', instance_id: instance }, startsAt }]);
const post = (url: string, body: string) => fetch(`${url}/api/v2/alerts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });

const config = (pluginAddress: string, extra = '') => `
${extra}
server:
  listen: 127.0.0.1:0
  shutdownGracePeriod: 10s
plugins:
  rec: { type: grpc, address: "${pluginAddress}", timeout: 20s, retry: { attempts: 1 } }
flows:
  spot:
    allowedEvents: [prometheus.server.alert.SpotInstanceTerminating]
    groupBy: [instance_id]
    cooldown: 10m
    plugins: [rec]
`;

describe('durable run state', () => {
  it('after kill -9 mid-run and a restart: the cooldown still holds, the cut run is reported interrupted and re-runs on the next event', async () => {
    let release!: () => void;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    const rec = await startRecordingPlugin((event) => (instanceOf(event) === 'i-slow' ? blocked : undefined));
    plugins.push(rec);
    const file = writeConfig(config(rec.address, `state: { file: "${join(dir, 'state', 'runs.jsonl')}" }`));

    const first = startCli(['--config', file]);
    const firstUrl = await first.url();
    await post(firstUrl, alert('i-done'));
    await first.waitFor((l) => l.msg === 'flow run succeeded');
    await post(firstUrl, alert('i-slow'));
    await rec.waitForCalls(2);
    first.child.kill('SIGKILL');
    await first.exited;

    const second = startCli(['--config', file]);
    const secondUrl = await second.url();
    expect(await second.waitFor((l) => l.msg === 'run state restored')).toMatchObject({ cooling: 1, interrupted: 1 });
    const runs = (await (await fetch(`${secondUrl}/api/v1/status/runs`)).json()) as Array<{ groupKey: string; outcome: string }>;
    expect(runs).toEqual([expect.objectContaining({ groupKey: 'spot:{instance_id="i-slow"}', outcome: 'interrupted' })]);
    const groups = (await (await fetch(`${secondUrl}/api/v1/status/groups`)).json()) as Array<{ key: string; phase: string }>;
    expect(groups).toEqual([expect.objectContaining({ key: 'spot:{instance_id="i-done"}', phase: 'cooling' })]);

    // A new occurrence of the cooled-down group is deduplicated; the interrupted one runs again.
    await post(secondUrl, alert('i-done', '2026-11-25T10:01:00Z'));
    await post(secondUrl, alert('i-slow', '2026-11-25T10:01:00Z'));
    await rec.waitForCalls(3);
    await new Promise((r) => setTimeout(r, 200));
    expect(rec.calls.map((c) => instanceOf(c.event))).toEqual(['i-done', 'i-slow', 'i-slow']);
    release();
  });
});

describe('graceful shutdown', () => {
  it('SIGTERM with a slow plugin call in flight: readiness goes false, new alerts get 503, the run completes, state is saved, exit 0', async () => {
    const rec = await startRecordingPlugin(() => new Promise((r) => setTimeout(() => r({ attributes: { slow: 'done' } }), 1_500)));
    plugins.push(rec);
    const stateFile = join(dir, 'shutdown-state.jsonl');
    const core = startCli(['--config', writeConfig(config(rec.address, `state: { file: "${stateFile}" }`))]);
    const url = await core.url();
    await post(url, alert('i-1'));
    await rec.waitForCalls(1);
    core.child.kill('SIGTERM');
    await core.waitFor((l) => l.msg === 'shutting down');
    expect((await fetch(`${url}/-/ready`)).status).toBe(503);
    const refused = await post(url, alert('i-2'));
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: string }).error).toContain('shutting down');
    expect(await core.exited).toBe(0);
    expect(core.lines.find((l) => l.msg === 'flow run succeeded')).toMatchObject({ groupKey: 'spot:{instance_id="i-1"}' });
    expect(rec.calls).toHaveLength(1);
    const saved = readFileSync(stateFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { key: string; phase: string });
    expect(saved.at(-1)).toMatchObject({ key: 'spot:{instance_id="i-1"}', phase: 'cooling' });
  });
});

describe('reload on SIGHUP', () => {
  it('lets a run in flight finish on the old plugins, even past the shutdown grace period', async () => {
    const rec = await startRecordingPlugin(() => new Promise((r) => setTimeout(() => r({ attributes: { slow: 'done' } }), 1_200)));
    plugins.push(rec);
    const text = config(rec.address).replace('shutdownGracePeriod: 10s', 'shutdownGracePeriod: 200ms');
    const file = writeConfig(text);
    const core = startCli(['--config', file]);
    const url = await core.url();
    await post(url, alert('i-reload'));
    await rec.waitForCalls(1);
    writeFileSync(file, text.replace('cooldown: 10m', 'cooldown: 20m'));
    core.child.kill('SIGHUP');
    await core.waitFor((l) => l.msg === 'configuration reloaded');
    expect(await core.waitFor((l) => l.msg === 'flow run succeeded' || l.msg === 'flow run interrupted')).toMatchObject({ msg: 'flow run succeeded', groupKey: 'spot:{instance_id="i-reload"}' });
  });

  it('takes a good new config and keeps the old one when the new one is bad', async () => {
    const file = writeConfig('server: { listen: "127.0.0.1:0" }\nflows:\n  first: { allowedEvents: [a.b], plugins: [log] }\n');
    const core = startCli(['--config', file]);
    const url = await core.url();
    const flows = async () => ((await (await fetch(`${url}/api/v1/status/flows`)).json()) as Array<{ name: string }>).map((f) => f.name);
    expect(await flows()).toEqual(['first']);

    writeFileSync(file, 'server: { listen: "127.0.0.1:0", timeouts: { idle: 2m } }\nflows:\n  second: { allowedEvents: [prometheus.server.alert.*], plugins: [log] }\n');
    core.child.kill('SIGHUP');
    // The receiver's timeouts are set up with its server: the log says they wait for a restart.
    expect(await core.waitFor((l) => l.msg === 'configuration reloaded')).toMatchObject({ needsRestart: ['timeouts'] });
    expect(await flows()).toEqual(['second']);
    await post(url, alert('i-after-reload'));
    await core.waitFor((l) => l.msg === 'flow run succeeded' && l.flow === 'second');

    writeFileSync(file, 'flows:\n  third: { allowedEvents: [x], plugins: [nope] }\n');
    core.child.kill('SIGHUP');
    const rejected = await core.waitFor((l) => l.msg === 'configuration reload rejected; the running configuration stays');
    expect(rejected.problems).toEqual([`${file}: flows.third.plugins[0]: unknown plugin "nope" (known: log)`]);
    expect(await flows()).toEqual(['second']);
    expect((await fetch(`${url}/-/healthy`)).status).toBe(200);
  });
});
