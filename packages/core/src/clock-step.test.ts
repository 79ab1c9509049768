import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Code, PluginError } from '@hollowtrees/grpcplugin';
import { startSqsStandIn, type SqsStandIn } from '@hollowtrees/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { killAllCli, startCli, type CliProcess } from '../test/support/cli-process.js';
import { startRecordingPlugin, type RecordingPlugin } from '../test/support/recording-plugin.js';

const dir = mkdtempSync(join(tmpdir(), 'hollowtrees-clock-step-'));
const STEP_MS = 2 * 60 * 60 * 1000;
/**
 * Preloaded into core: SIGUSR2 steps the wall clock (`Date.now()`) 2 h forward, as NTP does after
 * a VM resumed, and leaves the monotonic clock (`performance.now()`) alone, as the system does.
 */
const STEP_PRELOAD = join(dir, 'step-wall-clock.mjs');
writeFileSync(
  STEP_PRELOAD,
  `const wall = Date.now;
// HOLLOWTREES_TEST_STEPPED: the process starts on a wall clock stepped already, as one started after the step.
let ahead = process.env.HOLLOWTREES_TEST_STEPPED ? ${STEP_MS} : 0;
if (ahead) Object.defineProperty(performance, 'timeOrigin', { value: performance.timeOrigin + ahead });
Date.now = () => wall() + ahead;
process.on('SIGUSR2', () => {
  ahead += ${STEP_MS};
  process.stderr.write('wall clock stepped\\n');
});
`,
);

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
    allowedEvents: [prometheus.server.alert.SpotInstanceTerminating, aws.ec2.spot.interruption-warning]
    groupBy: [instance_id]
    cooldown: 10m
    runRetry: { attempts: 2, initialBackoff: 4s, maxBackoff: 4s, multiplier: 1 }
    plugins: [rec]
`;
const alert = JSON.stringify([{ labels: { alertname: 'SpotInstanceTerminating', instance_id: 'i-0abc' }, startsAt: '2026-11-25T10:00:00Z' }]);
const post = (url: string): Promise<Response> => fetch(`${url}/api/v2/alerts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: alert });

const plugins: RecordingPlugin[] = [];
let sqs: SqsStandIn | undefined;
afterEach(async () => {
  killAllCli();
  for (const p of plugins.splice(0)) await p.close();
  await sqs?.close();
  sqs = undefined;
});

/** Core on `extra` (its state settings) with the wall clock it reads steppable. */
async function startSteppable(rec: RecordingPlugin, extra: string, env: NodeJS.ProcessEnv = {}): Promise<{ core: CliProcess; url: string }> {
  const core = startCli(['--config', writeConfig(config(rec.address, extra))], { env: { ...process.env, ...env, NODE_OPTIONS: `--import ${STEP_PRELOAD}` } });
  return { core, url: await core.url() };
}

/** Steps core's wall clock 2 h forward and waits until it has. */
async function stepWallClock(core: CliProcess): Promise<void> {
  core.child.kill('SIGUSR2');
  while (!core.stderr().includes('wall clock stepped')) await new Promise((r) => setTimeout(r, 10));
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

    const [run] = (await (await fetch(`${url}/api/v1/status/runs`)).json()) as Array<{ receivedAt: string; startedAt: string }>;
    const waited = Date.parse(run!.startedAt) - Date.parse(run!.receivedAt);
    expect(waited).toBeGreaterThanOrEqual(0);
    expect(waited).toBeLessThan(60_000);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    const seconds = Number(/^hollowtrees_receipt_to_first_plugin_call_seconds_sum\{flow="spot"\} (\S+)$/m.exec(metrics)?.[1]);
    expect(seconds).toBeGreaterThanOrEqual(0);
    expect(seconds).toBeLessThan(60);
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

    const { core: restarted, url } = await startSteppable(rec, extra, { HOLLOWTREES_TEST_STEPPED: '1' });
    expect(await restarted.waitFor((l) => l.msg === 'run state restored')).toMatchObject({ cooling: 1 });
    const from = restarted.lines.length;
    expect((await post(url)).status).toBe(200);
    const next = await restarted.waitFor((l) => typeof l.msg === 'string' && (l.msg.startsWith('event deduplicated') || l.msg.startsWith('flow run')), from);
    expect(next.msg).toBe('event deduplicated: its group is cooling down');
    expect(rec.calls).toHaveLength(1);
  });
});
