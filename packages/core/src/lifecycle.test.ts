import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Code, PluginError, type CloudEvent } from '@hollowtrees/grpcplugin';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { killAllCli, startCli } from '../test/support/cli-process.js';
import { ageKilledHolderLock } from '../test/support/killed-holder-lock.js';
import { canMountPrivateTmpfs, underPrivateTmpfs } from '../test/support/private-mount.js';
import { startRecordingPlugin, type RecordingPlugin } from '../test/support/recording-plugin.js';
import { readJournal } from './state/state-journal.js';

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
/** A structured-mode CloudEvent of the type the flow below takes, with an extension and data beyond the labels. */
const cloudEvent = (instance: string) => ({
  specversion: '1.0',
  id: `ce-${instance}`,
  source: '//node-watcher/test',
  type: 'prometheus.server.alert.SpotInstanceTerminating',
  time: '2026-11-25T10:00:00Z',
  region: 'eu-west-1',
  data: { labels: { instance_id: instance }, action: 'terminate' },
});
const postEvent = (url: string, instance: string) =>
  fetch(`${url}/api/v1/events`, { method: 'POST', headers: { 'content-type': 'application/cloudevents+json' }, body: JSON.stringify(cloudEvent(instance)) });

/** A flow that drains then replaces, one try each, its runs journalled in `stateFile`; `drainExtra` adds to the drain plugin's settings. */
const drainThenReplace = (stateFile: string, drainAddress: string, replaceAddress: string, drainExtra = '') => `
server: { listen: 127.0.0.1:0 }
state: { file: "${stateFile}" }
plugins:
  drain: { type: grpc, address: "${drainAddress}",${drainExtra} retry: { attempts: 1 } }
  replace: { type: grpc, address: "${replaceAddress}", retry: { attempts: 1 } }
flows:
  spot:
    allowedEvents: [prometheus.server.alert.SpotInstanceTerminating]
    groupBy: [instance_id]
    cooldown: 10m
    plugins: [drain, replace]
`;

/**
 * Env that makes core say on stderr, `SIGHUP listeners: N` (or SIGTERM, SIGINT), each time it has added a listener for
 * the signal: a test sends it at the point of start-up it is about, never before core listens for it. The CLI's own
 * first listeners keep signals that come while it loads; proper-lockfile's signal-exit adds one on import, which alone
 * would end the process on a SIGHUP; `runCommand` adds its own next.
 */
function reportingSignalListeners(): NodeJS.ProcessEnv {
  const preload = join(dir, 'report-signal-listeners.cjs');
  writeFileSync(preload, `const on = process.on; process.on = function (name, fn) { on.call(this, name, fn); if (/^SIG(HUP|TERM|INT)$/.test(name)) process.stderr.write(name + ' listeners: ' + process.listenerCount(name) + '\\n'); return this; };`);
  return { ...process.env, NODE_OPTIONS: `--require ${preload}` };
}

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
  it('after kill -9 mid-run and a restart: the cooldown still holds and the cut run resumes by itself, once', async () => {
    let release!: () => void;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    // The first call for i-slow never answers before the kill; the resumed one does.
    const rec = await startRecordingPlugin((event, _ctx, index) => (instanceOf(event) === 'i-slow' && index === 1 ? blocked : undefined));
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

    // Started at once: the lock of the killed process is taken over, its pid being dead.
    const second = startCli(['--config', file]);
    const secondUrl = await second.url();
    expect(await second.waitFor((l) => l.msg === 'run state restored')).toMatchObject({ cooling: 1, resumed: 1, interrupted: 0 });
    await second.waitFor((l) => l.msg === 'flow run succeeded' && l.groupKey === 'spot:{instance_id="i-slow"}');
    const groups = (await (await fetch(`${secondUrl}/api/v1/status/groups`)).json()) as Array<{ key: string; phase: string }>;
    expect(groups.map((g) => [g.key, g.phase]).sort()).toEqual([['spot:{instance_id="i-done"}', 'cooling'], ['spot:{instance_id="i-slow"}', 'cooling']]);

    // New occurrences of both groups are deduplicated.
    await post(secondUrl, alert('i-done', '2026-11-25T10:01:00Z'));
    await post(secondUrl, alert('i-slow', '2026-11-25T10:01:00Z'));
    await new Promise((r) => setTimeout(r, 200));
    expect(rec.calls.map((c) => instanceOf(c.event))).toEqual(['i-done', 'i-slow', 'i-slow']);
    release();
  });

  it('a CloudEvent answered 200 survives kill -9: its cut run resumes after the restart with the event as it was sent', async () => {
    let release!: () => void;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    const rec = await startRecordingPlugin((_event, _ctx, index) => (index === 0 ? blocked : undefined));
    plugins.push(rec);
    const stateFile = join(dir, 'events-state', 'runs.jsonl');
    const file = writeConfig(config(rec.address, `state: { file: "${stateFile}" }`));
    const first = startCli(['--config', file]);
    expect((await postEvent(await first.url(), 'i-event')).status).toBe(200);
    await rec.waitForCalls(1);
    first.child.kill('SIGKILL');
    await first.exited;
    ageKilledHolderLock(stateFile);

    const second = startCli(['--config', file]);
    await second.url();
    expect(await second.waitFor((l) => l.msg === 'run state restored')).toMatchObject({ resumed: 1 });
    await second.waitFor((l) => l.msg === 'flow run succeeded' && l.groupKey === 'spot:{instance_id="i-event"}');
    expect(rec.calls).toHaveLength(2);
    const { region, ...attributes } = cloudEvent('i-event');
    expect(rec.calls[1]!.event).toEqual({ ...attributes, datacontenttype: 'application/json', extensions: { region: { type: 'string', value: region } } });
    expect(rec.calls[1]!.event).toEqual(rec.calls[0]!.event);
    release();
  });

  it('after kill -9 during the second plugin of a run, the restart goes on with that plugin: the first, which succeeded, is not called again', async () => {
    let release!: () => void;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    const drain = await startRecordingPlugin(() => ({ attributes: { drained: 'yes' } }));
    const replace = await startRecordingPlugin((_event, _ctx, index) => (index === 0 ? blocked : undefined));
    plugins.push(drain, replace);
    const stateFile = join(dir, 'steps', 'runs.jsonl');
    const file = writeConfig(drainThenReplace(stateFile, drain.address, replace.address));
    const first = startCli(['--config', file]);
    expect((await post(await first.url(), alert('i-1'))).status).toBe(200);
    await replace.waitForCalls(1);
    first.child.kill('SIGKILL');
    await first.exited;
    ageKilledHolderLock(stateFile);

    const second = startCli(['--config', file]);
    await second.url();
    expect(await second.waitFor((l) => l.msg === 'run state restored')).toMatchObject({ resumed: 1 });
    await second.waitFor((l) => l.msg === 'flow run succeeded');
    expect([drain.calls.length, replace.calls.length]).toEqual([1, 2]);
    // The resumed call still sees what drain returned.
    expect((replace.calls[1]!.event.data as { labels: Record<string, string> }).labels).toMatchObject({ instance_id: 'i-1', drained: 'yes' });
    release();
  });

  it('a second process on the same state file exits 2 naming the file and the holder', async () => {
    const stateFile = join(dir, 'locked', 'runs.jsonl');
    const file = writeConfig(config('127.0.0.1:1', `state: { file: "${stateFile}" }`));
    const holder = startCli(['--config', file]);
    await holder.url();
    const second = startCli(['--config', file]);
    expect(await second.exited).toBe(2);
    expect(second.stderr()).toContain(`${file}: state.file: ${stateFile} is in use by pid ${holder.child.pid} on host `);
    holder.child.kill('SIGTERM');
    expect(await holder.exited).toBe(0);
    // Released at a clean stop: the next process starts.
    const third = startCli(['--config', file]);
    await third.url();
  });

  it("a relative state.file is the one beside the config file, whatever directory core is started in", async () => {
    const confDir = join(dir, 'conf');
    mkdirSync(confDir);
    const file = writeConfig(config('127.0.0.1:1', 'state: { file: runs.jsonl }'), 'conf/relative-state.yaml');
    const elsewhere = mkdtempSync(join(tmpdir(), 'hollowtrees-cwd-'));
    const first = startCli(['--config', file], { cwd: elsewhere });
    await first.url();
    expect(existsSync(join(confDir, 'runs.jsonl'))).toBe(true);
    expect(existsSync(join(elsewhere, 'runs.jsonl'))).toBe(false);
    // Started from another directory, a second core finds the same file, held.
    const second = startCli(['--config', file], { cwd: tmpdir() });
    expect(await second.exited).toBe(2);
    expect(second.stderr()).toContain(`state.file: ${join(confDir, 'runs.jsonl')} is in use by pid ${first.child.pid}`);
  });
});

describe('state journal removed while running', () => {
  it('is noticed within seconds, logged as an error, and written again from memory', async () => {
    const rec = await startRecordingPlugin();
    plugins.push(rec);
    const stateFile = join(dir, 'removed', 'runs.jsonl');
    const core = startCli(['--config', writeConfig(config(rec.address, `state: { file: "${stateFile}" }`))]);
    const url = await core.url();
    await post(url, alert('i-kept'));
    await core.waitFor((l) => l.msg === 'flow run succeeded');
    rmSync(stateFile);
    expect(await core.waitFor((l) => l.msg === 'the state journal was deleted while running; rewrote it from memory')).toMatchObject({ level: 'error', file: stateFile });
    expect(readFileSync(stateFile, 'utf8')).toContain('"key":"spot:{instance_id=\\"i-kept\\"}","flow":"spot","phase":"cooling"');
  });
});

describe('a restart on a flow that lists a plugin twice', () => {
  it('a run cut short at notify after drain goes on after the notify that follows drain in [notify, drain, notify, replace]: drain acts once', async () => {
    let release!: () => void;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    let cut = true;
    const [drain, notify, replace] = await Promise.all([startRecordingPlugin(), startRecordingPlugin(() => (cut ? blocked : undefined)), startRecordingPlugin()]);
    plugins.push(drain, notify, replace);
    const stateFile = join(dir, 'twice', 'runs.jsonl');
    const flowOf = (steps: string) => `
server: { listen: 127.0.0.1:0, shutdownGracePeriod: 100ms }
state: { file: "${stateFile}" }
plugins:
  drain: { type: grpc, address: "${drain.address}", retry: { attempts: 1 } }
  notify: { type: grpc, address: "${notify.address}", retry: { attempts: 1 } }
  replace: { type: grpc, address: "${replace.address}", retry: { attempts: 1 } }
flows:
  spot:
    allowedEvents: [prometheus.server.alert.SpotInstanceTerminating]
    groupBy: [instance_id]
    cooldown: 10m
    plugins: ${steps}
`;
    const first = startCli(['--config', writeConfig(flowOf('[drain, notify, replace]'))]);
    expect((await post(await first.url(), alert('i-1'))).status).toBe(200);
    await notify.waitForCalls(1);
    // The grace period ends with notify's call in flight: the run stays in the journal, to go on with notify.
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    cut = false;

    const second = startCli(['--config', writeConfig(flowOf('[notify, drain, notify, replace]'))]);
    await second.url();
    expect(await second.waitFor((l) => l.msg === 'run state restored')).toMatchObject({ resumed: 1, abandoned: 0 });
    await second.waitFor((l) => l.msg === 'flow run succeeded');
    expect([drain, notify, replace].map((p) => p.calls.length)).toEqual([1, 2, 1]);
    release();
  });
});

describe('shutdown under load', () => {
  it('SIGTERM with runs queued and in flight past the grace period: every accepted alert runs after the restart, none twice', async () => {
    // Slow calls while the first process runs, so its SIGTERM finds runs in flight and queued; the second
    // process's calls answer at once: what it shows is that each of those runs, once, not how fast.
    let slow = true;
    const rec = await startRecordingPlugin(() => (slow ? new Promise((r) => setTimeout(r, 400)) : undefined));
    plugins.push(rec);
    const stateFile = join(dir, 'load', 'runs.jsonl');
    const text = config(rec.address, `state: { file: "${stateFile}" }`).replace('shutdownGracePeriod: 10s', 'shutdownGracePeriod: 100ms').replace('cooldown: 10m', 'cooldown: 10m\n    concurrency: 3');
    const file = writeConfig(text);
    const first = startCli(['--config', file]);
    const url = await first.url();
    const instances = Array.from({ length: 30 }, (_, i) => `i-${i}`);
    const answers = await Promise.all(instances.map((id) => post(url, alert(id))));
    expect(answers.map((a) => a.status)).toEqual(instances.map(() => 200));
    await rec.waitForCalls(3);
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    slow = false;
    const doneBefore = new Set(first.lines.filter((l) => l.msg === 'flow run succeeded').map((l) => l.groupKey));
    expect(doneBefore.size).toBeLessThan(30);

    const second = startCli(['--config', file]);
    await second.url();
    expect(await second.waitFor((l) => l.msg === 'run state restored')).toMatchObject({ resumed: 30 - doneBefore.size });
    for (let i = 0; second.lines.filter((l) => l.msg === 'flow run succeeded').length < 30 - doneBefore.size; i++) {
      if (i > 200) throw new Error('the resumed runs did not all finish');
      await new Promise((r) => setTimeout(r, 50));
    }
    const doneAfter = second.lines.filter((l) => l.msg === 'flow run succeeded').map((l) => l.groupKey);
    expect(new Set([...doneBefore, ...doneAfter]).size).toBe(30);
    expect(doneAfter.filter((key) => doneBefore.has(key))).toEqual([]);
  });
});

describe('restarts counted against a run (MAX_RESTARTS)', () => {
  const succeeded = (instance: string) => (l: Record<string, unknown>) => l.msg === 'flow run succeeded' && l.groupKey === `spot:{instance_id="${instance}"}`;
  /** A config whose flow runs one run at a time, on a state file of its own, with `graceMs` of shutdown grace. */
  const oneAtATime = (address: string, name: string, graceMs: number): string =>
    writeConfig(config(address, `state: { file: "${join(dir, name, 'runs.jsonl')}" }`).replace('shutdownGracePeriod: 10s', `shutdownGracePeriod: ${graceMs}ms`).replace('cooldown: 10m', 'cooldown: 10m\n    concurrency: 1'));

  it('a backlog queued behind a slow plugin survives 7 graceful restarts (SIGTERM) and each of its runs is called once in the end, none given up', { timeout: 90_000 }, async () => {
    // Each busy-N run's first call lasts until core cancels it: at each restart one holds the only slot, and the backlog waits.
    const busy = Array.from({ length: 7 }, (_, i) => `busy-${i}`);
    const backlog = ['b-1', 'b-2', 'b-3'];
    const callsOf = (instance: string): number => rec.calls.filter((c) => instanceOf(c.event) === instance).length;
    const rec: RecordingPlugin = await startRecordingPlugin((event, { signal }) =>
      instanceOf(event).startsWith('busy-') && callsOf(instanceOf(event)) === 1 ? new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('cancelled')))) : undefined,
    );
    plugins.push(rec);
    const file = oneAtATime(rec.address, 'backlog', 100);
    for (let restart = 0; restart < busy.length; restart++) {
      const core = startCli(['--config', file]);
      const url = await core.url();
      if (restart === 0) {
        for (const instance of [...busy, ...backlog]) expect((await post(url, alert(instance))).status).toBe(200);
      } else {
        expect(await core.waitFor((l) => l.msg === 'run state restored')).toMatchObject({ resumed: busy.length - restart + 1 + backlog.length, abandoned: 0 });
      }
      // The run cut short at the last restart goes on and succeeds; the next busy run then holds the slot.
      await expect.poll(() => callsOf(busy[restart]!), { timeout: 10_000, interval: 20 }).toBe(1);
      if (restart > 0) expect(callsOf(busy[restart - 1]!)).toBe(2);
      expect(backlog.map(callsOf)).toEqual([0, 0, 0]);
      core.child.kill('SIGTERM');
      expect(await core.exited).toBe(0);
    }
    const last = startCli(['--config', file]);
    await last.url();
    expect(await last.waitFor((l) => l.msg === 'run state restored')).toMatchObject({ resumed: 1 + backlog.length, abandoned: 0 });
    for (const instance of backlog) await last.waitFor(succeeded(instance));
    expect(backlog.map(callsOf)).toEqual([1, 1, 1]);
    // Each busy run: its call cut short, then the one that succeeded.
    expect(busy.map(callsOf)).toEqual(busy.map(() => 2));
  });

  it('a run whose first call makes core exit each time is given up after 5 restarts; the runs queued behind it are not, and run once', { timeout: 90_000 }, async () => {
    let corePid = 0;
    let backlogQueued!: () => void;
    const queued = new Promise<void>((resolve) => (backlogQueued = resolve));
    // i-crash's call kills core (an OOM kill in its first plugin call) before it can answer: the first one once the backlog is queued behind it.
    const rec: RecordingPlugin = await startRecordingPlugin(async (event) => {
      if (instanceOf(event) !== 'i-crash') return;
      await queued;
      process.kill(corePid, 'SIGKILL');
      await new Promise(() => {});
    });
    plugins.push(rec);
    const callsOf = (instance: string): number => rec.calls.filter((c) => instanceOf(c.event) === instance).length;
    const backlog = ['b-1', 'b-2', 'b-3'];
    const file = oneAtATime(rec.address, 'crash-loop', 10_000);
    /** Starts core once the last one's lock is aged: each start would otherwise wait 2-4 s for the killed holder's lock. */
    const start = () => {
      if (corePid !== 0) ageKilledHolderLock(join(dir, 'crash-loop', 'runs.jsonl'));
      const core = startCli(['--config', file]);
      corePid = core.child.pid!;
      return core;
    };
    const first = start();
    const url = await first.url();
    expect((await post(url, alert('i-crash'))).status).toBe(200);
    await rec.waitForCalls(1);
    for (const instance of backlog) expect((await post(url, alert(instance))).status).toBe(200);
    backlogQueued();
    expect(await first.exited).toBeNull();
    // Each start resumes i-crash first, and it stops core again.
    for (let restart = 1; restart <= 5; restart++) {
      expect(await start().exited).toBeNull();
      expect(callsOf('i-crash')).toBe(restart + 1);
    }
    const last = start();
    await last.url();
    expect(await last.waitFor((l) => l.msg === 'run state restored')).toMatchObject({ resumed: backlog.length, abandoned: 1 });
    for (const instance of backlog) await last.waitFor(succeeded(instance));
    expect(backlog.map(callsOf)).toEqual([1, 1, 1]);
    expect(callsOf('i-crash')).toBe(6);
  });
});

/** Whether the disk-full tests can run here: a tmpfs of their own stands in for a small disk. */
const mountable = canMountPrivateTmpfs();

describe('disk full at run time', () => {
  if (!mountable && process.env.CI) throw new Error('CI: this machine must let unshare -m mount a tmpfs (run as root) for the disk-full tests');

  it.skipIf(!mountable)('readiness turns false and alerts get 503 while run state cannot be written; both come back with the disk', async () => {
    const rec = await startRecordingPlugin();
    plugins.push(rec);
    const disk = mkdtempSync(join(tmpdir(), 'hollowtrees-small-disk-'));
    const file = writeConfig(config(rec.address, `state: { file: "${join(disk, 'runs.jsonl')}" }`));
    // core runs with a 256 KiB tmpfs of its own over \`disk\`; the test reaches it through /proc/PID/root.
    const core = startCli(['--config', file], { wrap: underPrivateTmpfs(disk, 'size=256k') });
    const url = await core.url();
    expect((await post(url, alert('i-before'))).status).toBe(200);

    const filler = `/proc/${core.child.pid}/root${disk}/filler`;
    try {
      writeFileSync(filler, Buffer.alloc(1024 * 1024));
    } catch (err) {
      expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
    }
    // The journal's last page still had room: alerts are taken until it is full too.
    let refused: Response | undefined;
    let firstRefused = '';
    for (let i = 0; i < 50 && !refused; i++) {
      firstRefused = `i-full-${i}`;
      const answer = await post(url, alert(firstRefused));
      if (answer.status !== 200) refused = answer;
    }
    expect(refused?.status).toBe(503);
    expect(await refused!.json()).toMatchObject({ errorType: 'state_unavailable' });
    expect((await fetch(`${url}/-/ready`)).status).toBe(503);
    expect((await post(url, alert('i-refused'))).status).toBe(503);
    const refusedEvent = await postEvent(url, 'i-refused-event');
    expect(refusedEvent.status).toBe(503);
    expect(await refusedEvent.json()).toMatchObject({ errorType: 'state_unavailable', error: 'run state cannot be saved to disk right now, so the events cannot be promised; retry later' });
    const failing = (l: { msg?: unknown }): boolean => l.msg?.toString().startsWith('could not write run state') === true;
    expect(await core.waitFor(failing)).toMatchObject({ level: 'error', err: { code: 'ENOSPC' } });
    // The journal tries again every second: two more tries, and the outage is still one error line, not one per try.
    await new Promise((r) => setTimeout(r, 2_500));

    rmSync(filler);
    for (let i = 0; (await fetch(`${url}/-/ready`)).status !== 200; i++) {
      if (i > 100) throw new Error('readiness did not come back with the disk');
      await new Promise((r) => setTimeout(r, 50));
    }
    expect((await post(url, alert('i-after'))).status).toBe(200);
    await core.waitFor((l) => l.msg === 'flow run succeeded' && l.groupKey === 'spot:{instance_id="i-after"}');
    // One line says the outage is over, and how many writes failed in it.
    const back = core.lines.filter((l) => l.msg?.toString().startsWith('run state can be written again') === true);
    expect(back).toMatchObject([{ level: 'info' }]);
    expect(back[0]!.failedWrites).toBeGreaterThanOrEqual(3);
    expect(core.lines.filter(failing)).toHaveLength(1);
    // What kill -9 now leaves: a write the full disk cut short is at most one unreadable line, the lines written after it
    // (those kept and written again with the disk) all read back.
    const left = await readJournal(`/proc/${core.child.pid}/root${disk}/runs.jsonl`);
    expect(left.problems.length).toBeLessThanOrEqual(1);
    const cooling = left.states.filter((s) => s.phase === 'cooling').map((s) => s.key);
    expect(cooling).toEqual(expect.arrayContaining(['spot:{instance_id="i-before"}', 'spot:{instance_id="i-after"}']));
    // The alert refused before dispatch never ran; its re-send now does.
    expect(rec.calls.map((c) => instanceOf(c.event))).not.toContain('i-refused');
    // Nor did the first one refused, whose start the full disk kept from the journal after it was dispatched: acting, it
    // would have acted again on its re-send after a restart (kill -9) before the disk had room. Its re-send is its one run.
    expect(rec.calls.map((c) => instanceOf(c.event))).not.toContain(firstRefused);
    expect((await post(url, alert(firstRefused))).status).toBe(200);
    await core.waitFor((l) => l.msg === 'flow run succeeded' && l.groupKey === `spot:{instance_id="${firstRefused}"}`);
    expect(rec.calls.filter((c) => instanceOf(c.event) === firstRefused)).toHaveLength(1);
  });

  it.skipIf(!mountable)('SIGTERM while a run\'s end cannot be written: the shutdown says at error that the run may act again after the restart', async () => {
    let release!: () => void;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    const rec = await startRecordingPlugin(() => blocked);
    plugins.push(rec);
    const disk = mkdtempSync(join(tmpdir(), 'hollowtrees-small-disk-'));
    const file = writeConfig(config(rec.address, `state: { file: "${join(disk, 'runs.jsonl')}" }`));
    const core = startCli(['--config', file], { wrap: underPrivateTmpfs(disk, 'size=64k') });
    const url = await core.url();
    // The run is on disk (200), its plugin acting, when the disk fills.
    expect((await post(url, alert('i-1'))).status).toBe(200);
    await rec.waitForCalls(1);
    try {
      writeFileSync(`/proc/${core.child.pid}/root${disk}/filler`, Buffer.alloc(1024 * 1024));
    } catch (err) {
      expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
    }
    // The journal's last page may still have room for the run's end: filled with blank lines, which a reader skips.
    try {
      appendFileSync(`/proc/${core.child.pid}/root${disk}/runs.jsonl`, '\n'.repeat(64 * 1024));
    } catch (err) {
      expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
    }
    release();
    await core.waitFor((l) => l.msg === 'flow run succeeded');
    core.child.kill('SIGTERM');
    expect(await core.exited).toBe(0);
    expect(core.lines.find((l) => l.msg === 'could not close the run-state store')).toMatchObject({
      level: 'error',
      err: { message: expect.stringContaining('after the restart, runs that ended since may run again and their cooldowns are missing') },
    });
  });
});

describe('disk full at start', () => {
  it.skipIf(!mountable)('a disk with room for the rewritten journal but not for a copy of it, torn by kill -9: core starts, keeps the cooldown, logs that the copy was not kept and keeps the copy an earlier start made', async () => {
    const rec = await startRecordingPlugin();
    plugins.push(rec);
    const disk = mkdtempSync(join(tmpdir(), 'hollowtrees-small-disk-'));
    const journal = join(mkdtempSync(join(tmpdir(), 'hollowtrees-journal-')), 'runs.jsonl');
    // 200 groups that cooled down and were freed (some 120 KiB of journal), one still cooling, and the line kill -9 cut short.
    const cooling = (key: string, until: number) => JSON.stringify({ key, flow: 'spot', phase: 'cooling', eventId: 'e', since: Date.now(), until });
    const held = 'spot:{instance_id="i-held"}';
    const lines = Array.from({ length: 200 }, (_, i) => `spot:{instance_id="i-${i}-${'x'.repeat(250)}"}`).flatMap((key) => [cooling(key, 1), JSON.stringify({ key, phase: 'free' })]);
    writeFileSync(journal, `${[...lines, cooling(held, Date.now() + 300_000)].join('\n')}\n{"key":"spot:{instance_`);
    // The tmpfs of 256 KiB keeps 40 KiB free beside the journal: the rewrite (a few hundred bytes) fits, a copy does not.
    // A copy an earlier start kept (one page) is the operator's only evidence of that start's lines: the failed copy must not take it.
    const earlier = 'kept by an earlier start\n';
    const fill = 256 * 1024 - statSync(journal).size - 4 * 1024 - 40 * 1024;
    const file = writeConfig(config(rec.address, `state: { file: "${join(disk, 'runs.jsonl')}" }`));
    const setup = `cp ${journal} ${disk}/runs.jsonl && printf '${earlier.trim()}\\n' > ${disk}/runs.jsonl.unreadable && head -c ${fill} /dev/zero > ${disk}/filler`;
    const core = startCli(['--config', file], { wrap: underPrivateTmpfs(disk, 'size=256k', setup) });
    const notKept = await core.waitFor((l) => l.msg?.toString().startsWith('could not keep the journal as it was') === true);
    expect(notKept).toMatchObject({ level: 'error', err: { code: 'ENOSPC' } });
    const onDisk = `/proc/${core.child.pid}/root${disk}`;
    expect(readFileSync(`${onDisk}/runs.jsonl.unreadable`, 'utf8')).toBe(earlier);
    // Nor may a half-made copy hold the room the journal's appends need.
    expect(readdirSync(onDisk).filter((name) => name.startsWith('runs.jsonl.unreadable'))).toEqual(['runs.jsonl.unreadable']);
    expect(await core.waitFor((l) => l.msg === 'run state restored')).toMatchObject({ cooling: 1, unreadableLines: 1 });
    const url = await core.url();
    expect((await post(url, alert('i-held'))).status).toBe(200);
    expect((await post(url, alert('i-new'))).status).toBe(200);
    await core.waitFor((l) => l.msg === 'flow run succeeded' && l.groupKey === 'spot:{instance_id="i-new"}');
    expect(rec.calls.map((c) => instanceOf(c.event))).toEqual(['i-new']);
  });
});

describe('graceful shutdown', () => {
  it('SIGTERM with a slow plugin call in flight: readiness goes false, new alerts get 503, the run completes, state is saved, exit 0', async () => {
    // The call answers once the test has seen the shutdown: the process must still be up for the checks made meanwhile.
    let release!: () => void;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    const rec = await startRecordingPlugin(async () => {
      await blocked;
      return { attributes: { slow: 'done' } };
    });
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
    release();
    expect(await core.exited).toBe(0);
    expect(core.lines.find((l) => l.msg === 'flow run succeeded')).toMatchObject({ groupKey: 'spot:{instance_id="i-1"}' });
    expect(rec.calls).toHaveLength(1);
    const saved = readFileSync(stateFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { key: string; phase: string });
    expect(saved.at(-1)).toMatchObject({ key: 'spot:{instance_id="i-1"}', phase: 'cooling' });
  });
});

describe('stop signals', () => {
  it('SIGTERM, then SIGINT while a run is in flight: the second signal exits at once (1), whichever it is', async () => {
    let release!: () => void;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    const rec = await startRecordingPlugin(() => blocked);
    plugins.push(rec);
    const core = startCli(['--config', writeConfig(config(rec.address).replace('shutdownGracePeriod: 10s', 'shutdownGracePeriod: 1m'))]);
    try {
      expect((await post(await core.url(), alert('i-1'))).status).toBe(200);
      await rec.waitForCalls(1);
      core.child.kill('SIGTERM');
      await core.waitFor((l) => l.msg === 'shutting down');
      core.child.kill('SIGINT');
      expect(await core.exited).toBe(1);
    } finally {
      release();
    }
  });

  it('a SIGTERM that comes while the CLI still loads its modules is kept: core starts, then stops gracefully, exit 0', async () => {
    const core = startCli(['--config', writeConfig('server: { listen: "127.0.0.1:0" }\nflows:\n  f: { allowedEvents: [a.b], plugins: [log] }\n')], { env: reportingSignalListeners() });
    await vi.waitFor(() => expect(core.stderr()).toContain('SIGTERM listeners: 1'), { timeout: 15_000, interval: 1 });
    core.child.kill('SIGTERM');
    expect(await core.exited).toBe(0);
    expect(core.lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['hollowtrees started', 'shutting down', 'hollowtrees stopped']));
  });
});

describe('a stop Hollowtrees makes by itself', () => {
  it('losing the state file\'s lock stops the process with exit 1, a runtime failure systemd restarts', async () => {
    const stateFile = join(dir, 'lost-lock', 'runs.jsonl');
    const core = startCli(['--config', writeConfig(`server: { listen: "127.0.0.1:0" }\nstate: { file: "${stateFile}" }\nflows:\n  f: { allowedEvents: [a.b], plugins: [log] }\n`)]);
    await core.url();
    // The lock directory gone: its next refresh (every 2 s) finds the lock lost.
    rmSync(`${stateFile}.lock`, { recursive: true, force: true });
    await core.waitFor((l) => l.msg === 'hollowtrees stopped');
    expect(await core.exited).toBe(1);
  });

  it('losing the state file\'s lock while a run waits for its next try: the log speaks of the state file\'s lock, not of a Lease, and says who makes that try; the file keeps the run, and the restarted core makes it', async () => {
    const rec = await startRecordingPlugin((_event, _ctx, index) => {
      if (index === 0) throw new PluginError(Code.Unavailable, 'EC2 throttled');
    });
    plugins.push(rec);
    const stateFile = join(dir, 'lost-lock-waiting', 'runs.jsonl');
    const withRetry = (maxBackoff: string) =>
      writeConfig(config(rec.address, `state: { file: "${stateFile}" }`).replace('cooldown: 10m', `cooldown: 10m\n    runRetry: { attempts: 3, initialBackoff: 1h, maxBackoff: ${maxBackoff} }`));
    const core = startCli(['--config', withRetry('1h')]);
    expect((await post(await core.url(), alert('i-waiting'))).status).toBe(200);
    await core.waitFor((l) => l.msg === 'flow run failed on a retryable code; it will be tried again');
    // The lock directory gone: its next refresh (every 2 s) finds the lock lost.
    rmSync(`${stateFile}.lock`, { recursive: true, force: true });
    expect(await core.exited).toBe(1);
    expect(core.lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('a run waiting for its next try'))).toMatchObject({
      level: 'warn',
      flow: 'spot',
      groupKey: 'spot:{instance_id="i-waiting"}',
      msg: 'a run waiting for its next try lost its hold on the group: this process lost the lock on the state file; the process that holds the file next (this one restarted, or another) makes that try',
    });
    // Not freed on the way out: a `free` line would have the restart forget an accepted run.
    expect((await readJournal(stateFile)).states.map((s) => [s.key, s.phase])).toEqual([['spot:{instance_id="i-waiting"}', 'retrying']]);
    // Restarted with a shorter wait, so that the try comes due now.
    const restarted = startCli(['--config', withRetry('1s')]);
    expect(await restarted.waitFor((l) => l.msg === 'run state restored')).toMatchObject({ resumed: 1 });
    await restarted.waitFor((l) => l.msg === 'flow run succeeded' && l.groupKey === 'spot:{instance_id="i-waiting"}');
    expect(rec.calls.map((c) => instanceOf(c.event))).toEqual(['i-waiting', 'i-waiting']);
  });

  it('a core stopped (SIGSTOP) past its lock\'s stale time, whose file another core took over, acts no more when it wakes: the plugin after the call it had out is called once, by the new holder, an alert it is sent is refused, and the new holder\'s journal is not overwritten', { timeout: 30_000 }, async () => {
    let release!: () => void;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    const drain = await startRecordingPlugin((_event, _ctx, index) => (index === 0 ? blocked : undefined));
    const replace = await startRecordingPlugin();
    plugins.push(drain, replace);
    const stateFile = join(dir, 'stalled-holder', 'runs.jsonl');
    const file = writeConfig(drainThenReplace(stateFile, drain.address, replace.address, ' timeout: 60s,'));
    const stalled = startCli(['--config', file]);
    expect((await post(await stalled.url(), alert('i-1'))).status).toBe(200);
    await drain.waitForCalls(1);
    stalled.child.kill('SIGSTOP');
    const stoppedAt = Date.now();
    // Unrefreshed past the 10 s after which any holder's lock is stale (a paused VM, a frozen cgroup): taken over at once.
    const past = new Date(Date.now() - 11_000);
    utimesSync(`${stateFile}.lock`, past, past);
    const next = startCli(['--config', file]);
    await next.url();
    await next.waitFor((l) => l.msg === 'flow run succeeded');
    expect([drain.calls.length, replace.calls.length]).toEqual([2, 1]);
    // The stalled core wakes with its drain call answered, and an alert sent to it while it stood still.
    release();
    const sentWhileStopped = post(await stalled.url(), alert('i-2'));
    // Stopped for longer than a lock refresh (2 s), as a core whose lock went stale (10 s) always was.
    await new Promise((resolve) => setTimeout(resolve, Math.max(200, stoppedAt + 3_000 - Date.now())));
    stalled.child.kill('SIGCONT');
    // Answered 200, the alert would be on no disk the new holder reads: lost.
    expect((await sentWhileStopped).status).toBe(503);
    expect(await stalled.exited).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(replace.calls.length).toBe(1);
    expect(next.lines.some((l) => typeof l.msg === 'string' && l.msg.startsWith('the state journal was'))).toBe(false);
  });
});

describe('reload on SIGHUP', () => {
  it('lets a run in flight finish on the old plugins, even past the shutdown grace period', async () => {
    // The call answers once the reload is done and the old plugins' grace period (200 ms) is over since, not after a
    // fixed 1.2 s that a slow reload on a busy machine could outlast (the run would then end before the reload).
    let release!: () => void;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    const rec = await startRecordingPlugin(async () => {
      await blocked;
      return { attributes: { slow: 'done' } };
    });
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
    setTimeout(release, 400);
    expect(await core.waitFor((l) => l.msg === 'flow run succeeded' || l.msg === 'flow run interrupted')).toMatchObject({ msg: 'flow run succeeded', groupKey: 'spot:{instance_id="i-reload"}' });
  });

  it('a SIGTERM while a reload’s old plugins still finish a run closes each plugin connection once', async () => {
    let release!: () => void;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    const rec = await startRecordingPlugin(() => blocked);
    plugins.push(rec);
    const text = config(rec.address);
    const file = writeConfig(text);
    // Logs each close of a grpc-js client (the plugin connection) with the client's number, on the process's stdout.
    const grpcJs = createRequire(createRequire(import.meta.url).resolve('@hollowtrees/grpcplugin/package.json')).resolve('@grpc/grpc-js');
    const preload = join(dir, 'report-grpc-client-close.cjs');
    writeFileSync(
      preload,
      `const { Client } = require(${JSON.stringify(grpcJs)}); const ids = new WeakMap(); let next = 0; const close = Client.prototype.close;
Client.prototype.close = function () { if (!ids.has(this)) ids.set(this, ++next); process.stdout.write(JSON.stringify({ msg: 'grpc client closed', client: ids.get(this) }) + '\\n'); return close.call(this); };`,
    );
    const core = startCli(['--config', file], { env: { ...process.env, NODE_OPTIONS: `--require ${preload}` } });
    const url = await core.url();
    await post(url, alert('i-overlap'));
    await rec.waitForCalls(1);
    writeFileSync(file, text.replace('cooldown: 10m', 'cooldown: 20m'));
    core.child.kill('SIGHUP');
    await core.waitFor((l) => l.msg === 'configuration reloaded');
    // The shutdown waits (grace period 10 s) for the run the reload's old plugins also wait for.
    core.child.kill('SIGTERM');
    await core.waitFor((l) => l.msg === 'shutting down');
    release();
    expect(await core.exited).toBe(0);
    const closed = core.lines.filter((l) => l.msg === 'grpc client closed').map((l) => l['client'] as number);
    // The old runtime's connection and the new one's: each closed, once.
    expect(closed.sort()).toEqual([1, 2]);
  });

  it('a SIGHUP while core is still starting is taken once started, not the end of the process', async () => {
    // A dead holder's lock on this host, stamped in the future: start-up waits 4 s for it to go unrefreshed,
    // however long this busy machine takes to boot the process.
    const stateFile = join(dir, `state-${++fileCount}.jsonl`);
    mkdirSync(`${stateFile}.lock`);
    const inAnHour = new Date(Date.now() + 3_600_000);
    utimesSync(`${stateFile}.lock`, inAnHour, inAnHour);
    const dead = spawnSync(process.execPath, ['-e', '']).pid;
    writeFileSync(`${stateFile}.holder`, JSON.stringify({ pid: dead, hostname: hostname(), since: new Date().toISOString() }));
    const text = (flow: string) => `state: { file: "${stateFile}" }\nserver: { listen: "127.0.0.1:0" }\nflows:\n  ${flow}: { allowedEvents: [a.b], plugins: [log] }\n`;
    const file = writeConfig(text('first'));
    // Once `runCommand` has added its own listener: start-up is waiting on the lock.
    const core = startCli(['--config', file], { env: reportingSignalListeners() });
    await vi.waitFor(() => expect(core.stderr()).toContain('SIGHUP listeners: 3'), { timeout: 15_000, interval: 5 });
    expect(core.lines.some((l) => l.msg === 'hollowtrees started')).toBe(false);
    writeFileSync(file, text('second'));
    core.child.kill('SIGHUP');
    await core.url();
    expect(await core.waitFor((l) => l.msg === 'configuration reloaded')).toMatchObject({ flows: ['second'] });
  });

  it('a SIGHUP that comes while the CLI still loads its modules (a config reloader right after a start) is taken once started, not the end of the process', async () => {
    const text = (flow: string) => `server: { listen: "127.0.0.1:0" }\nflows:\n  ${flow}: { allowedEvents: [a.b], plugins: [log] }\n`;
    const file = writeConfig(text('first'));
    const core = startCli(['--config', file], { env: reportingSignalListeners() });
    await vi.waitFor(() => expect(core.stderr()).toContain('SIGHUP listeners: 1'), { timeout: 15_000, interval: 1 });
    writeFileSync(file, text('second'));
    core.child.kill('SIGHUP');
    await core.url();
    expect(await core.waitFor((l) => l.msg === 'configuration reloaded')).toMatchObject({ flows: ['second'] });
  });

  it('takes a new log.level, so debug logging can be turned on without a restart', async () => {
    const text = (level: string) => `log: { level: ${level} }\nserver: { listen: "127.0.0.1:0" }\nflows:\n  other: { allowedEvents: [a.b], plugins: [log] }\n`;
    const file = writeConfig(text('info'));
    const core = startCli(['--config', file]);
    const url = await core.url();
    writeFileSync(file, text('debug'));
    core.child.kill('SIGHUP');
    const reloaded = await core.waitFor((l) => l.msg === 'configuration reloaded');
    expect(reloaded.needsRestart).toBeUndefined();
    expect((await post(url, alert('i-unmatched'))).status).toBe(200);
    // A debug line, written only at the level the reload set.
    expect(await core.waitFor((l) => l.msg === 'event matched no flow')).toMatchObject({ level: 'debug', flows: { other: expect.stringContaining('allowedEvents') as string } });
  });

  it('a second SIGHUP while the first is still reading the file: the file as it is now is the one left running', { timeout: 30_000 }, async () => {
    // The first reload's read is held open by a FIFO, as a slow disk or network filesystem would hold it; a
    // symlink, swapped as `kubectl apply` swaps a ConfigMap volume's files, is the --config path.
    const text = (flow: string) => `server: { listen: "127.0.0.1:0" }\nflows:\n  ${flow}: { allowedEvents: [a.b], plugins: [log] }\n`;
    const live = join(dir, `live-${++fileCount}.yaml`);
    const point = (target: string): void => {
      symlinkSync(target, `${live}.new`);
      renameSync(`${live}.new`, live);
    };
    point(writeConfig(text('started')));
    const core = startCli(['--config', live]);
    await core.url();
    const fifo = join(dir, `slow-${fileCount}.fifo`);
    execFileSync('mkfifo', [fifo]);
    point(fifo);
    core.child.kill('SIGHUP');
    // Opened for writing once core opened it for reading: the first reload is now reading, and waits for the end of the file.
    const slow = await open(fifo, 'w');
    try {
      point(writeConfig(text('latest')));
      core.child.kill('SIGHUP');
      // The second SIGHUP has been taken: reloaded at once, or waiting for the first.
      await core.waitFor((l) => l.msg === 'configuration reloaded' || l.msg === 'SIGHUP while the configuration is being read: read again once this read is done');
      await slow.writeFile(text('stale'));
    } finally {
      await slow.close();
    }
    await core.waitFor((l) => l.msg === 'configuration reloaded' && (l.flows as string[])[0] === 'stale');
    // The file holds "latest": that must be what runs, not the slow read that finished last.
    await vi.waitFor(() => expect(core.lines.filter((l) => l.msg === 'configuration reloaded').at(-1)).toMatchObject({ flows: ['latest'] }), { timeout: 10_000, interval: 50 });
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

    // Still the start-up timeouts in the receiver: a later reload says so again, though the last one had the same.
    writeFileSync(file, 'server: { listen: "127.0.0.1:0", timeouts: { idle: 2m } }\nflows:\n  fourth: { allowedEvents: [prometheus.server.alert.*], plugins: [log] }\n');
    const seen = core.lines.length;
    core.child.kill('SIGHUP');
    expect(await core.waitFor((l) => l.msg === 'configuration reloaded', seen)).toMatchObject({ flows: ['fourth'], needsRestart: ['timeouts'] });
  });
});
