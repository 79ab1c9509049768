import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Code, PluginError } from '@hollowtrees/grpcplugin';
import { startAwsStandIn, startKubeApiServer, startSqsStandIn, STARTS_STEPPED_ENV, WALL_CLOCK_STEPPED, wallClockStepPreload, type KubeApiServer, type SqsStandIn } from '@hollowtrees/testkit';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { killAllCli, startCli, type CliProcess } from '../test/support/cli-process.js';
import { startRecordingPlugin, type RecordingPlugin } from '../test/support/recording-plugin.js';

const dir = mkdtempSync(join(tmpdir(), 'hollowtrees-clock-step-'));
const STEP_MS = 2 * 60 * 60 * 1000;
/** Preloaded into core: SIGUSR2 steps its wall clock 2 h forward, and leaves the monotonic clock alone. */
const STEP_PRELOAD = wallClockStepPreload(STEP_MS);

let fileCount = 0;
const writeConfig = (text: string): string => {
  const path = join(dir, `config-${++fileCount}.yaml`);
  writeFileSync(path, text);
  return path;
};
const config = (pluginAddress: string, extra: string) => `
${extra}
server: { listen: 127.0.0.1:0 }
log: { level: debug }
plugins:
  rec: { type: grpc, address: "${pluginAddress}", retry: { attempts: 1 } }
flows:
  spot:
    allowedEvents: [prometheus.server.alert.SpotInstanceTerminating, aws.ec2.spot.interruption-warning, aws.ec2.spot.price-surge]
    groupBy: [instance_id]
    cooldown: 10m
    runRetry: { attempts: 2, initialBackoff: 4s, maxBackoff: 4s, multiplier: 1 }
    plugins: [rec]
`;
const alertOf = (instance: string): string => JSON.stringify([{ labels: { alertname: 'SpotInstanceTerminating', instance_id: instance }, startsAt: '2026-11-25T10:00:00Z' }]);
const post = (url: string, instance = 'i-0abc'): Promise<Response> => fetch(`${url}/api/v2/alerts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: alertOf(instance) });

const plugins: RecordingPlugin[] = [];
let sqs: SqsStandIn | undefined;
let kube: KubeApiServer | undefined;
afterEach(async () => {
  killAllCli();
  for (const p of plugins.splice(0)) await p.close();
  await sqs?.close();
  sqs = undefined;
  await kube?.close();
  kube = undefined;
});

/** The state settings of `state.backend: kubernetes` on a new kube-apiserver stand-in (`kube`); `lease`: more settings of it. */
async function kubernetesState(lease = ''): Promise<string> {
  kube = await startKubeApiServer();
  const kubeconfig = join(dir, `kubeconfig-${kube.port}`);
  writeFileSync(kubeconfig, kube.kubeConfigFileText());
  return `state: { backend: kubernetes, kubernetes: { namespace: ops, kubeconfig: "${kubeconfig}"${lease} } }`;
}

/** The cooldown end the Lease of `instance`'s group holds, in ms since the epoch. */
function leaseCooldownEnd(instance: string): number {
  const lease = kube!.cluster.leases.all().find((l) => l.metadata?.annotations?.['hollowtrees.io/group-key']?.includes(instance));
  return Date.parse(lease?.metadata?.annotations?.['hollowtrees.io/cooldown-until'] ?? '');
}

/** The message of the line core logs next (from line `from`) about an event: deduplicated, or a run's end. */
const nextVerdict = async (core: CliProcess, from: number): Promise<unknown> =>
  (await core.waitFor((l) => typeof l.msg === 'string' && (l.msg.startsWith('event deduplicated') || l.msg.startsWith('flow run')), from)).msg;

/** Core on `extra` (its state settings) with the wall clock it reads steppable. */
async function startSteppable(rec: RecordingPlugin, extra: string, env: NodeJS.ProcessEnv = {}): Promise<{ core: CliProcess; url: string }> {
  const core = startCli(['--config', writeConfig(config(rec.address, extra))], { env: { ...process.env, ...env, NODE_OPTIONS: `--import ${STEP_PRELOAD}` } });
  return { core, url: await core.url() };
}

/** Steps core's wall clock 2 h forward and waits until it has. */
async function stepWallClock(core: CliProcess): Promise<void> {
  core.child.kill('SIGUSR2');
  while (!core.stderr().includes(WALL_CLOCK_STEPPED)) await new Promise((r) => setTimeout(r, 10));
}

/**
 * That the run in core's status API, and its receipt-to-first-call metric, count from receipt to the plugin call on one
 * clock: a receipt on the other would be 2 h off (-7,200 s).
 */
async function expectReceiptBeforeFirstCall(url: string): Promise<void> {
  const [run] = (await (await fetch(`${url}/api/v1/status/runs`)).json()) as Array<{ receivedAt: string; startedAt: string }>;
  const waited = Date.parse(run!.startedAt) - Date.parse(run!.receivedAt);
  expect(waited).toBeGreaterThanOrEqual(0);
  expect(waited).toBeLessThan(60_000);
  const metrics = await (await fetch(`${url}/metrics`)).text();
  const seconds = Number(/^hollowtrees_receipt_to_first_plugin_call_seconds_sum\{flow="spot"\} (\S+)$/m.exec(metrics)?.[1]);
  expect(seconds).toBeGreaterThanOrEqual(0);
  expect(seconds).toBeLessThan(60);
}

describe('a step of the wall clock while core runs', () => {
  it.each([
    ['memory', ''],
    ['file', `state: { file: "${join(dir, 'runs.jsonl')}" }`],
  ])('2 h forward: a re-sent alert inside its cooldown is still deduplicated, the plugin not called again (state.backend %s)', async (_backend, extra) => {
    const rec = await startRecordingPlugin();
    plugins.push(rec);
    const { core, url } = await startSteppable(rec, extra);
    expect((await post(url)).status).toBe(200);
    await core.waitFor((l) => l.msg === 'flow run succeeded');

    await stepWallClock(core);
    const from = core.lines.length;
    expect((await post(url)).status).toBe(200);
    const next = await core.waitFor((l) => typeof l.msg === 'string' && (l.msg.startsWith('event deduplicated') || l.msg.startsWith('flow run')), from);
    expect(next.msg).toBe('event deduplicated: its group is cooling down');
    expect(rec.calls).toHaveLength(1);
    // The status API still counts the cooldown, and shows its end on core's wall clock (2 h ahead of this one's).
    const groups = (await (await fetch(`${url}/api/v1/status/groups`)).json()) as Array<{ phase: string; until: string }>;
    expect(groups.map((g) => g.phase)).toEqual(['cooling']);
    expect(Math.abs(Date.parse(groups[0]!.until) - (Date.now() + STEP_MS + 10 * 60_000))).toBeLessThan(60_000);
  });

  it('2 h forward during a retry wait, then a reload: the retry still waits its backoff rather than coming at once', async () => {
    const rec = await startRecordingPlugin((_event, _ctx, index) => {
      if (index === 0) throw new PluginError(Code.Unavailable, 'not yet');
    });
    plugins.push(rec);
    const { core, url } = await startSteppable(rec, '');
    expect((await post(url)).status).toBe(200);
    await core.waitFor((l) => l.msg === 'flow run failed on a retryable code; it will be tried again');
    const failedAt = Date.now();

    await stepWallClock(core);
    // The reload hands the waiting run to the new engine, which waits what is left of the backoff.
    const from = core.lines.length;
    core.child.kill('SIGHUP');
    await core.waitFor((l) => l.msg === 'configuration reloaded', from);
    await core.waitFor((l) => l.msg === 'flow run succeeded', from);
    expect(rec.calls).toHaveLength(2);
    // 4 s backoff (multiplied by a jitter of 0.5 to 1): at least 2 s after the failure.
    expect(rec.calls[1]!.at - failedAt).toBeGreaterThanOrEqual(1_900);
  });

  it('2 h forward, then an SQS notice: its run counts the time from receipt on the same clock as its plugin call (status API, receipt-to-first-call metric)', async () => {
    sqs = await startSqsStandIn();
    const queue = sqs.createQueue('interruptions');
    const rec = await startRecordingPlugin();
    plugins.push(rec);
    const notice = { version: '0', id: 'evt-1', 'detail-type': 'EC2 Spot Instance Interruption Warning', source: 'aws.ec2', account: '123456789012', time: '2026-11-29T18:40:12Z', region: 'us-east-1', resources: [], detail: { 'instance-id': 'i-0aaaaaaaaaaaaaaa1', 'instance-action': 'terminate' } };
    const sources = `sources: { sqs: [{ url: "${queue.url}", region: us-east-1, endpoint: "${sqs.url}", waitTimeSeconds: 1 }] }`;
    const { core, url } = await startSteppable(rec, sources, { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_EC2_METADATA_DISABLED: 'true' });
    await stepWallClock(core);
    queue.send(JSON.stringify(notice));
    await core.waitFor((l) => l.msg === 'flow run succeeded');

    await expectReceiptBeforeFirstCall(url);
  });

  it('2 h forward, then a Spot price surge: its run counts the time from receipt on the same clock as its plugin call (status API, receipt-to-first-call metric)', async () => {
    const aws = await startAwsStandIn();
    const rec = await startRecordingPlugin();
    plugins.push(rec);
    const pool = { instanceType: 'm5.large', availabilityZone: 'us-east-1a' };
    const sources = `sources: { spotPrice: [{ region: us-east-1, endpoint: "${aws.url}", interval: 250ms, instanceTypes: [m5.large], availabilityZones: [us-east-1a], maxPrice: 0.2 }] }`;
    try {
      // Prices as AWS samples them, on the wall clock core reads after its step.
      aws.ec2.spotPrices.set(pool, 0.05, new Date(Date.now() + STEP_MS - 60 * 60_000));
      const { core, url } = await startSteppable(rec, sources, { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_EC2_METADATA_DISABLED: 'true' });
      await stepWallClock(core);
      aws.ec2.spotPrices.set(pool, 0.31, new Date(Date.now() + STEP_MS));
      await core.waitFor((l) => l.msg === 'flow run succeeded');
      await expectReceiptBeforeFirstCall(url);
    } finally {
      await aws.close();
    }
  });

  it('2 h forward, then a run, then a restart (state.backend file): the cooldown it wrote still holds on the restarted process, which starts on the stepped wall clock', async () => {
    const rec = await startRecordingPlugin();
    plugins.push(rec);
    const extra = `state: { file: "${join(dir, 'restarted.jsonl')}" }`;
    const { core } = await startSteppable(rec, extra);
    await stepWallClock(core);
    expect((await post(await core.url())).status).toBe(200);
    await core.waitFor((l) => l.msg === 'flow run succeeded');
    core.child.kill('SIGTERM');
    expect(await core.exited).toBe(0);

    const { core: restarted, url } = await startSteppable(rec, extra, { [STARTS_STEPPED_ENV]: '1' });
    expect(await restarted.waitFor((l) => l.msg === 'run state restored')).toMatchObject({ cooling: 1 });
    const from = restarted.lines.length;
    expect((await post(url)).status).toBe(200);
    const next = await restarted.waitFor((l) => typeof l.msg === 'string' && (l.msg.startsWith('event deduplicated') || l.msg.startsWith('flow run')), from);
    expect(next.msg).toBe('event deduplicated: its group is cooling down');
    expect(rec.calls).toHaveLength(1);
  });

  it('2 h forward: times shown to people are on core\'s wall clock (a source\'s last receive and last error in the status API, the `until` of a deduplicated re-send in its log line)', async () => {
    const rec = await startRecordingPlugin();
    plugins.push(rec);
    const { core, url } = await startSteppable(rec, '');
    expect((await post(url)).status).toBe(200);
    await core.waitFor((l) => l.msg === 'flow run succeeded');

    await stepWallClock(core);
    const from = core.lines.length;
    expect((await post(url)).status).toBe(200);
    const deduplicated = await core.waitFor((l) => l.msg === 'event deduplicated: its group is cooling down', from);
    const coreNow = Date.now() + STEP_MS;
    expect(Math.abs(Date.parse(String(deduplicated.until)) - (coreNow + 10 * 60_000))).toBeLessThan(60_000);
    expect((await fetch(`${url}/api/v2/alerts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[{}]' })).status).toBe(400);
    const [http] = (await (await fetch(`${url}/api/v1/status/sources`)).json()) as Array<{ lastReceiveAt: string; lastError: { at: string } }>;
    expect(Math.abs(Date.parse(http!.lastReceiveAt) - coreNow)).toBeLessThan(30_000);
    expect(Math.abs(Date.parse(http!.lastError.at) - coreNow)).toBeLessThan(30_000);
  });

  it('2 h forward: an alert posted resolved (API v2: its endsAt before its receipt, on Prometheus\' clock and core\'s) is taken as resolved, not acted on as firing', async () => {
    const rec = await startRecordingPlugin();
    plugins.push(rec);
    const { core, url } = await startSteppable(rec, '');
    await stepWallClock(core);
    // Prometheus, on a clock that agrees with core's stepped one, says the alert ended a minute ago.
    const endsAt = new Date(Date.now() + STEP_MS - 60_000).toISOString();
    const resolved = JSON.stringify([{ labels: { alertname: 'SpotInstanceTerminating', instance_id: 'i-0res' }, startsAt: '2026-11-25T10:00:00Z', endsAt }]);
    const from = core.lines.length;
    expect((await fetch(`${url}/api/v2/alerts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: resolved })).status).toBe(200);
    const next = await core.waitFor((l) => l.msg === 'event matched no flow' || (typeof l.msg === 'string' && l.msg.startsWith('flow run')), from);
    expect(next).toMatchObject({ msg: 'event matched no flow', type: 'prometheus.server.alert.SpotInstanceTerminating.resolved' });
    expect(rec.calls).toHaveLength(0);
  });

  it('2 h forward (state.backend kubernetes): a re-sent alert inside its cooldown is still deduplicated, the plugin not called again; Leases still get wall-clock times', async () => {
    const rec = await startRecordingPlugin();
    plugins.push(rec);
    const { core, url } = await startSteppable(rec, await kubernetesState());
    expect((await post(url)).status).toBe(200);
    await core.waitFor((l) => l.msg === 'flow run succeeded');
    // Written before the step: the cooldown's end on the wall clock, as every replica reads it.
    expect(Math.abs(leaseCooldownEnd('i-0abc') - (Date.now() + 10 * 60_000))).toBeLessThan(60_000);

    await stepWallClock(core);
    let from = core.lines.length;
    expect((await post(url)).status).toBe(200);
    expect(await nextVerdict(core, from)).toBe('event deduplicated: its group is cooling down');
    expect(rec.calls).toHaveLength(1);

    // A cooldown begun after the step is written on core's wall clock (2 h ahead of this one's), not its steady clock.
    from = core.lines.length;
    expect((await post(url, 'i-0def')).status).toBe(200);
    expect(await nextVerdict(core, from)).toBe('flow run succeeded');
    await vi.waitFor(() => expect(Math.abs(leaseCooldownEnd('i-0def') - (Date.now() + STEP_MS + 10 * 60_000))).toBeLessThan(60_000), { timeout: 5_000 });
    const groups = (await (await fetch(`${url}/api/v1/status/groups`)).json()) as Array<{ phase: string; until: string }>;
    expect(groups.map((g) => g.phase)).toEqual(['cooling', 'cooling']);
    for (const group of groups) expect(Math.abs(Date.parse(group.until) - (Date.now() + STEP_MS + 10 * 60_000))).toBeLessThan(60_000);
  });

  it('2 h forward on one of two replicas (state.backend kubernetes) during its run: the other neither runs the group beside it nor after it; a replica killed after the step is still taken over once its Lease expires', async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    // The first call of each group is held: i-0abc's until the test releases it, i-0def's for good (its replica is killed).
    const rec = await startRecordingPlugin(async (_event, _ctx, index) => {
      if (index === 0) await released;
      if (index === 1) await new Promise(() => {});
    });
    plugins.push(rec);
    const state = await kubernetesState(', leaseDuration: 3s, renewInterval: 1s');
    const [stepped, other] = await Promise.all([startSteppable(rec, state), startSteppable(rec, state)]);
    expect((await post(stepped!.url)).status).toBe(200);
    await rec.waitForCalls(1);
    await stepWallClock(stepped!.core);

    // Longer than the Lease (3 s): only the stepped replica's renewals keep it, and they do.
    const from = other!.core.lines.length;
    for (let i = 0; i < 10; i++) {
      expect((await post(other!.url)).status).toBe(200);
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(other!.core.lines.slice(from).filter((l) => l.msg === 'event deduplicated: a run of its group is in progress' && l.replica !== undefined).length).toBeGreaterThan(5);
    expect(rec.calls).toHaveLength(1);
    release();
    await stepped!.core.waitFor((l) => l.msg === 'flow run succeeded');
    // Once its next list of the Leases saw the run end there, the other replica finds the group cooling.
    const coolingThere = (l: Record<string, unknown>): boolean => l.msg === 'event deduplicated: its group is cooling down' && l.replica !== undefined;
    for (let i = 0; i < 20 && !other!.core.lines.slice(from).some(coolingThere); i++) {
      expect((await post(other!.url)).status).toBe(200);
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(other!.core.lines.slice(from).some(coolingThere)).toBe(true);
    expect(rec.calls).toHaveLength(1);

    // Expiry is judged on the other replica's monotonic clock, not on the stepped renewTime (2 h ahead): it still ends.
    expect((await post(stepped!.url, 'i-0def')).status).toBe(200);
    await rec.waitForCalls(2);
    stepped!.core.child.kill('SIGKILL');
    const killedAt = Date.now();
    const takenOver = other!.core.waitFor((l) => l.msg === 'run of another replica interrupted: it stopped renewing its Lease; this replica takes the group over', from);
    while (rec.calls.length < 3 && Date.now() - killedAt < 20_000) {
      await post(other!.url, 'i-0def');
      await new Promise((r) => setTimeout(r, 250));
    }
    await takenOver;
    expect(rec.calls).toHaveLength(3);
    expect(rec.calls[2]!.at - killedAt).toBeGreaterThanOrEqual(2_500);
  }, 60_000);
});
