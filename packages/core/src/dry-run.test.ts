import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pollUntil, startSqsStandIn, type SqsStandIn } from '@hollowtrees/testkit';
import { afterEach, expect, it } from 'vitest';
import { startRecordingPlugin, type RecordingPlugin } from '../test/support/recording-plugin.js';
import { startTestCore, type TestCore } from '../test/support/start-core.js';

let plugin: RecordingPlugin | undefined;
let sqs: SqsStandIn | undefined;
const cores: TestCore[] = [];
afterEach(async () => {
  for (const core of cores.splice(0)) await core.close();
  await plugin?.close();
  await sqs?.close();
});

/** Starts core on `yaml` and closes it after the test. */
async function start(yaml: string, dryRun: boolean): Promise<TestCore> {
  const core = await startTestCore(yaml, { dryRun });
  cores.push(core);
  return core;
}

const flow = `
flows:
  spot:
    allowedEvents: [prometheus.server.alert.*, aws.ec2.spot.interruption-warning]
    groupBy: [instance_id]
    cooldown: 10m
    plugins: [drain]
`;
const alert = [{ labels: { alertname: 'SpotInstanceTerminating', instance_id: 'i-0abc123' }, startsAt: '2026-11-25T10:00:00Z' }];

it("a dry run holds no group in the state file: the core that acts on it later runs the alert the dry run ran, instead of deduplicating it", async () => {
  plugin = await startRecordingPlugin();
  const yaml = `state: { file: "${join(mkdtempSync(join(tmpdir(), 'hollowtrees-dry-run-')), 'runs.jsonl')}" }
plugins:
  drain: { type: grpc, address: "${plugin.address}" }
${flow}`;
  const dry = await start(yaml, true);
  expect(await (await fetch(`${dry.url}/api/v1/status`)).json()).toMatchObject({ state: { backend: 'memory' } });
  expect((await dry.post('/api/v2/alerts', alert)).status).toBe(200);
  await pollUntil(() => dry.logs.some((l) => l['msg'] === 'flow run succeeded'), 10_000, () => 'the dry run has not run the alert');
  expect(dry.logs.find((l) => l['msg'] === 'dry run: run state is kept in memory only')).toMatchObject({ level: 'warn', backend: 'file' });
  await cores.pop()?.close();

  const real = await start(yaml, false);
  expect((await real.post('/api/v2/alerts', alert)).status).toBe(200);
  expect(await plugin.waitForCalls(1)).toHaveLength(1);
  expect(real.logs.filter((l) => l['msg'] === 'event deduplicated')).toEqual([]);
});

it("a dry run does not read sources.sqs: it would hide the queue's notices from the core that acts on them, and delete them", async () => {
  sqs = await startSqsStandIn();
  const queue = sqs.createQueue('interruptions');
  const yaml = `plugins:
  drain: { type: grpc, address: "127.0.0.1:1" }
${flow}
sources:
  sqs:
    - { url: "${queue.url}", region: us-east-1, endpoint: "${sqs.url}", waitTimeSeconds: 1 }
`;
  queue.send(JSON.stringify({ version: '0', id: 'evt-1', 'detail-type': 'EC2 Spot Instance Interruption Warning', source: 'aws.ec2', account: '123456789012', time: '2026-11-29T18:40:12Z', region: 'us-east-1', resources: [], detail: { 'instance-id': 'i-0abc123', 'instance-action': 'terminate' } }));
  const dry = await start(yaml, true);
  const status = (await (await fetch(`${dry.url}/api/v1/status/sources`)).json()) as Array<{ kind: string }>;
  expect(status.map((s) => s.kind)).toEqual(['http']);
  expect(sqs.callsTo('ReceiveMessage')).toEqual([]);
  expect(queue.list()).toMatchObject([{ receiveCount: 0 }]);
  expect(dry.logs.find((l) => l['msg'] === 'dry run: sources.sqs are not read')).toMatchObject({ level: 'warn', queues: 1 });
});
