import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Code, PluginError, labelsOf } from '@hollowtrees/grpcplugin';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from './config/load-config.js';
import { movableClock } from '../test/support/movable-clock.js';
import { startRecordingPlugin, type RecordingPlugin } from '../test/support/recording-plugin.js';
import { startTestCore, type TestCore } from '../test/support/start-core.js';

const EXAMPLE_PLUGIN = new URL('../../../examples/grpc-plugin/dist/main.js', import.meta.url).pathname;
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const spotConfig = (address: string, extra = '') => `
plugins:
  rec:
    type: grpc
    address: ${address}
    timeout: 5s
    retry: { attempts: 3, initialBackoff: 20ms, maxBackoff: 100ms }
flows:
  spot:
    allowedEvents: [prometheus.server.alert.SpotTerminationNotice]
    groupBy: [instance_id]
    cooldown: 10m
    plugins: [rec]
${extra}`;

const spotAlert = (instance = 'i-0abc123', startsAt = '2026-11-25T10:00:00.123Z') => ({
  labels: { alertname: 'SpotTerminationNotice', instance_id: instance, node: 'ip-10-0-1-23', cluster_name: 'prod' },
  annotations: { summary: `Spot instance ${instance} will be reclaimed` },
  startsAt,
  endsAt: '2099-01-01T00:00:00Z',
  generatorURL: 'http://prometheus:9090/graph?g0.expr=x',
});

async function core(yaml: string, options?: Parameters<typeof startTestCore>[1]): Promise<TestCore> {
  const c = await startTestCore(yaml, options);
  cleanups.push(() => c.close());
  return c;
}
async function plugin(behaviour?: Parameters<typeof startRecordingPlugin>[0], options?: Parameters<typeof startRecordingPlugin>[1]): Promise<RecordingPlugin> {
  const p = await startRecordingPlugin(behaviour, options);
  cleanups.push(() => p.close());
  return p;
}
async function until(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Starts the example plugin as its README says, on an ephemeral port; yields its JSON output lines. */
async function startExamplePlugin(): Promise<{ address: string; lines: Array<Record<string, unknown>>; child: ChildProcess }> {
  const child = spawn(process.execPath, [EXAMPLE_PLUGIN, '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanups.push(() => new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  }));
  const lines: Array<Record<string, unknown>> = [];
  const address = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`example plugin exited with ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const json = JSON.parse(line) as Record<string, unknown>;
      lines.push(json);
      if (typeof json.address === 'string') resolve(json.address);
    });
  });
  return { address, lines, child };
}

describe('core with plugins over real gRPC', () => {
  it('a POSTed alert reaches the example plugin as a CloudEvent with the right fields', async () => {
    const example = await startExamplePlugin();
    const c = await core(spotConfig(example.address).replace('plugins: [rec]', 'plugins: [rec, log]'));
    expect((await c.post('/api/v2/alerts', [spotAlert()])).status).toBe(200);
    await until(() => example.lines.some((l) => l.msg === 'event received'));
    expect(example.lines.find((l) => l.msg === 'event received')).toMatchObject({
      flow: 'spot',
      attempt: 1,
      type: 'prometheus.server.alert.SpotTerminationNotice',
      id: expect.stringMatching(/^[0-9a-f]{32}$/),
      labels: { alertname: 'SpotTerminationNotice', instance_id: 'i-0abc123', node: 'ip-10-0-1-23', cluster_name: 'prod' },
    });
    // The attribute the example returns is merged into the event the next plugin (log) gets.
    await until(() => c.logs.some((l) => l.plugin === 'log'));
    const logged = c.logs.find((l) => l.plugin === 'log')!.event as { time: string; source: string; data: { labels: Record<string, string>; annotations: object } };
    expect(logged.time).toBe('2026-11-25T10:00:00.123Z');
    expect(logged.source).toBe('http://prometheus:9090');
    expect(logged.data.labels.example_handled_at).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(logged.data.annotations).toEqual({ summary: 'Spot instance i-0abc123 will be reclaimed' });
  });

  it("each flow's settings for a plugin reach it over gRPC with the calls of that flow only", async () => {
    const rec = await plugin();
    const pool = `
  pool:
    allowedEvents: [prometheus.server.alert.SpotTerminationNotice]
    groupBy: [instance_id]
    plugins: [{plugin: rec, config: {mode: pool, maxUnavailable: 2}}]`;
    const c = await core(spotConfig(rec.address, pool));
    await c.post('/api/v2/alerts', [spotAlert()]);
    await rec.waitForCalls(2);
    expect(rec.calls.map((call) => [call.flow, call.config]).sort()).toEqual([['pool', { mode: 'pool', maxUnavailable: '2' }], ['spot', {}]]);
  });

  it('a core started on log plugins only takes a gRPC plugin a reload adds, and calls it', async () => {
    const rec = await plugin();
    const c = await core('flows:\n  spot:\n    allowedEvents: [prometheus.server.alert.SpotTerminationNotice]\n    plugins: [log]\n');
    await c.reload(parseConfig(spotConfig(rec.address), 'test.yaml', {}));
    expect((await c.post('/api/v2/alerts', [spotAlert()])).status).toBe(200);
    const [call] = await rec.waitForCalls(1);
    expect(labelsOf(call!.event).instance_id).toBe('i-0abc123');
  });

  it('a reload a shutdown overtakes while it reads its files is refused: nothing is built that the shutdown would leave open', async () => {
    const rec = await plugin();
    const c = await core(spotConfig(rec.address));
    const closed = c.engine;
    const reloading = c.reload(parseConfig(spotConfig(rec.address).replace('cooldown: 10m', 'cooldown: 20m'), 'test.yaml', {}));
    await c.close();
    await expect(reloading).rejects.toThrow('shutting down: configuration not reloaded');
    // The engine (and plugins) the shutdown closed is still the one core runs: no second runtime left running.
    expect(c.engine).toBe(closed);
    expect(c.logs.filter((l) => l.msg === 'configuration reloaded')).toEqual([]);
  });

  it('after a reload the status API still lists the runs that finished before it, and the run the old engine finished after it', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const rec = await plugin((event) => (labelsOf(event).instance_id === 'i-slow' ? held : undefined));
    const c = await core(spotConfig(rec.address));
    await c.post('/api/v2/alerts', [spotAlert('i-done')]);
    await c.post('/api/v2/alerts', [spotAlert('i-slow')]);
    await rec.waitForCalls(2);
    const runs = async (): Promise<Array<{ groupKey: string; outcome: string }>> => (await (await fetch(`${c.url}/api/v1/status/runs`)).json()) as Array<{ groupKey: string; outcome: string }>;
    await until(() => c.logs.some((l) => l.msg === 'flow run succeeded'));
    // Still calling its plugin: the reload lets it finish on the old engine.
    const reloaded = c.reload(parseConfig(spotConfig(rec.address).replace('cooldown: 10m', 'cooldown: 20m'), 'test.yaml', {}));
    release();
    await reloaded;
    // A node watcher approving an Azure event waits for its run to be listed as succeeded here.
    expect((await runs()).map((r) => [r.groupKey, r.outcome])).toEqual([
      ['spot:{instance_id="i-slow"}', 'succeeded'],
      ['spot:{instance_id="i-done"}', 'succeeded'],
    ]);
  });

  it('after a reload the flows status counts the runs the old engine still calls plugins for and holds queued', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const rec = await plugin(() => held);
    const c = await core(spotConfig(rec.address).replace('cooldown: 10m', 'cooldown: 10m\n    concurrency: 1'));
    await c.post('/api/v2/alerts', [spotAlert('i-1'), spotAlert('i-2')]);
    await rec.waitForCalls(1);
    const reloaded = c.reload(parseConfig(spotConfig(rec.address).replace('cooldown: 10m', 'cooldown: 20m\n    concurrency: 1'), 'test.yaml', {}));
    const flows = (await (await fetch(`${c.url}/api/v1/status/flows`)).json()) as Array<{ name: string; running: number; queued: number }>;
    release();
    await reloaded;
    // Read as "nothing running", core would be restarted in the middle of a drain.
    expect(flows).toMatchObject([{ name: 'spot', running: 1, queued: 1 }]);
  });

  it('a shutdown while a reload\'s old engine still drains does not call a run lost that the new engine then tries again', async () => {
    let releaseOld!: () => void;
    const old = new Promise<void>((resolve) => (releaseOld = resolve));
    let releaseBusy!: () => void;
    const busy = new Promise<void>((resolve) => (releaseBusy = resolve));
    let failed = false;
    const rec = await plugin((event) => {
      const instance = labelsOf(event).instance_id;
      if (instance === 'i-old') return old;
      if (instance === 'i-busy') return busy;
      if (failed) return undefined;
      failed = true;
      throw new PluginError(Code.Unavailable, 'restarting');
    });
    const retrying = (cooldown: string): string =>
      spotConfig(rec.address, '  runRetry: { attempts: 2, initialBackoff: 500ms, maxBackoff: 500ms }\nserver: { shutdownGracePeriod: 10s }')
        .replace('retry: { attempts: 3, initialBackoff: 20ms, maxBackoff: 100ms }', 'retry: { attempts: 1 }')
        .replace('cooldown: 10m', `cooldown: ${cooldown}`)
        .replace('  runRetry', '    runRetry');
    const c = await core(retrying('10m'));
    await c.post('/api/v2/alerts', [spotAlert('i-old')]);
    await rec.waitForCalls(1);
    const reloaded = c.reload(parseConfig(retrying('20m'), 'test.yaml', {}));
    await c.post('/api/v2/alerts', [spotAlert('i-wait'), spotAlert('i-busy')]);
    await until(() => c.logs.some((l) => l.msg === 'flow run failed on a retryable code; it will be tried again'));
    const closed = c.close();
    // The old engine drains first; the new one still runs i-busy when i-wait's next try comes due.
    releaseOld();
    await reloaded;
    await until(() => rec.calls.filter((call) => labelsOf(call.event).instance_id === 'i-wait').length === 2);
    releaseBusy();
    await closed;
    expect(c.logs.filter((l) => l.msg === 'runs waiting for a retry are lost: without state.file nothing survives the restart')).toEqual([]);
  });

  it('50 concurrent copies of one alert start exactly one run', async () => {
    const rec = await plugin();
    const c = await core(spotConfig(rec.address));
    const responses = await Promise.all(Array.from({ length: 50 }, () => c.post('/api/v2/alerts', [spotAlert()])));
    expect(responses.every((r) => r.status === 200)).toBe(true);
    await rec.waitForCalls(1);
    await until(() => c.engine.recentRuns().length === 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(rec.calls).toHaveLength(1);
    expect(await c.metrics.engine.eventsDeduplicated.get()).toMatchObject({ values: [{ labels: { flow: 'spot' }, value: 49 }] });
  });

  it('a plugin that fails with UNAVAILABLE twice then succeeds gives one run with three attempts', async () => {
    const rec = await plugin((_e, ctx) => {
      if (ctx.attempt < 3) throw new PluginError(Code.Unavailable, 'warming up');
      return { attributes: { done: 'yes' } };
    });
    const c = await core(spotConfig(rec.address));
    await c.post('/api/v2/alerts', [spotAlert()]);
    await until(() => c.engine.recentRuns().length === 1);
    expect(rec.calls.map((call) => call.attempt)).toEqual([1, 2, 3]);
    expect(c.engine.recentRuns()[0]).toMatchObject({ outcome: 'succeeded', calls: [{ code: 'UNAVAILABLE' }, { code: 'UNAVAILABLE' }, { code: 'OK' }] });
  });

  it('a plugin that is down: the run waits for its next try with the group held, and completes once the plugin is back', async () => {
    const gone = await plugin();
    const port = Number(gone.address.split(':')[1]);
    await gone.close();
    // A wait between tries long enough that a loaded machine still sees the first one waiting.
    const c = await core(spotConfig(gone.address).replace('timeout: 5s', 'timeout: 300ms').replace('cooldown: 10m', 'cooldown: 10m\n    runRetry: { attempts: 10, initialBackoff: 2s, maxBackoff: 2s }'));
    expect((await c.post('/api/v2/alerts', [spotAlert()])).status).toBe(200);
    await until(() => c.engine.recentRuns().length === 1);
    expect(c.engine.recentRuns()[0]).toMatchObject({ outcome: 'retrying', error: expect.stringContaining('rec: UNAVAILABLE after 3 attempts') });
    expect(c.engine.groups()).toMatchObject([{ phase: 'retrying' }]);
    expect(await c.metrics.engine.runsWaitingForRetry.get()).toMatchObject({ values: [{ labels: { flow: 'spot' }, value: 1 }] });
    expect((await fetch(`${c.url}/-/healthy`)).status).toBe(200);
    // A re-send while the run waits is deduplicated, not a second run.
    expect((await c.post('/api/v2/alerts', [spotAlert()])).status).toBe(200);
    expect(await c.metrics.engine.eventsDeduplicated.get()).toMatchObject({ values: [{ labels: { flow: 'spot' }, value: 1 }] });

    const back = await plugin(undefined, { port });
    await until(() => c.engine.recentRuns()[0]?.outcome === 'succeeded', 10_000);
    expect(back.calls.map((call) => labelsOf(call.event).instance_id)).toEqual(['i-0abc123']);
    expect(c.engine.groups()).toMatchObject([{ phase: 'cooling' }]);
  });

  it('a cooldown blocks further runs of the group, then releases it', async () => {
    const rec = await plugin();
    // The 10 m cooldown ends when the test moves the clock past it, not while a busy machine pauses the test.
    const clock = movableClock();
    const c = await core(spotConfig(rec.address), { clock });
    await c.post('/api/v2/alerts', [spotAlert()]);
    await rec.waitForCalls(1);
    await until(() => c.engine.groups()[0]?.phase === 'cooling');
    await c.post('/api/v2/alerts', [spotAlert('i-0abc123', '2026-11-25T10:05:00Z')]); // a new occurrence, same group
    await new Promise((r) => setTimeout(r, 100));
    expect(rec.calls).toHaveLength(1);
    clock.advance(10 * 60_000);
    expect(c.engine.groups()).toEqual([]);
    await c.post('/api/v2/alerts', [spotAlert()]);
    await rec.waitForCalls(2);
    expect(rec.calls).toHaveLength(2);
  });

  it('a batch larger than all the room a flow has gets through in steps as the sender re-sends it, each alert run once', async () => {
    const rec = await plugin();
    const c = await core(spotConfig(rec.address).replace('cooldown: 10m', 'cooldown: 10m\n    queueBytes: 4096'));
    const ids = Array.from({ length: 20 }, (_, i) => `i-${i}`);
    const batch = JSON.stringify(ids.map((id) => spotAlert(id)));
    expect(Buffer.byteLength(batch)).toBeGreaterThan(4096);
    const answers: number[] = [];
    // Alertmanager's way: re-send the whole batch after a 503 until it is taken.
    for (let tries = 0; tries < 100 && answers.at(-1) !== 200; tries++) {
      const res = await fetch(`${c.url}/api/v2/alerts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: batch });
      answers.push(res.status);
      await res.arrayBuffer();
      if (res.status !== 200) await new Promise((r) => setTimeout(r, 20));
    }
    expect(answers.at(-1)).toBe(200);
    expect(answers.filter((a) => a === 503).length).toBeGreaterThan(0);
    await until(() => c.engine.recentRuns().length === ids.length);
    expect(rec.calls.map((call) => labelsOf(call.event).instance_id).sort()).toEqual([...ids].sort());
  });

  it('an alert a full queue cannot take turns the answer into 503 with Retry-After; the re-sent batch runs it, once', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const rec = await plugin(() => gate);
    const c = await core(spotConfig(rec.address).replace('cooldown: 10m', 'cooldown: 10m\n    concurrency: 1\n    queueSize: 1'));
    cleanups.push(() => release()); // runs first: core's shutdown must not wait for the held call
    const batch = JSON.stringify([spotAlert('i-1'), spotAlert('i-2'), spotAlert('i-3')]);
    const send = () => fetch(`${c.url}/api/v2/alerts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: batch });

    // i-1 runs (blocked in the plugin), i-2 waits in the queue, i-3 finds no room.
    const refused = await send();
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(await refused.json()).toEqual({
      status: 'error',
      errorType: 'queue_full',
      error: '1 of 3 alerts were not queued by every flow they match (flow "spot": its queue is full (queueSize 1)); retry later',
    });
    // Sent again while nothing has moved: refused before it is parsed, so no event is handed on or dropped again.
    const received = (await c.metrics.receiver.eventsReceived.get()).values;
    const early = await send();
    expect([early.status, early.headers.get('retry-after'), await early.json()]).toEqual([
      503,
      '1',
      { status: 'error', errorType: 'queue_full', error: 'no alerts can be queued now (flow "spot": its queue is full (queueSize 1)); retry later' },
    ]);
    expect((await c.metrics.receiver.eventsReceived.get()).values).toEqual(received);
    release();
    await until(() => c.engine.recentRuns().length === 2);

    // The sender re-sends the batch: i-1 and i-2 are cooling down, i-3 runs now.
    const accepted = await send();
    expect(accepted.status).toBe(200);
    await until(() => c.engine.recentRuns().length === 3);
    expect(rec.calls.map((call) => labelsOf(call.event).instance_id)).toEqual(['i-1', 'i-2', 'i-3']);
    expect(await c.metrics.engine.eventsDeduplicated.get()).toMatchObject({ values: [{ labels: { flow: 'spot' }, value: 2 }] });
    expect((await c.metrics.engine.eventsDropped.get()).values).toContainEqual({ labels: { flow: 'spot', reason: 'queue_full' }, value: 1 });
  });
});
