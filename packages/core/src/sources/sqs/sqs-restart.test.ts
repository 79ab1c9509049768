import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labelsOf } from '@hollowtrees/grpcplugin';
import { pollUntil, startSqsStandIn, type SqsStandIn } from '@hollowtrees/testkit';
import { afterEach, expect, it } from 'vitest';
import { killAllCli, startCli } from '../../../test/support/cli-process.js';
import { ageKilledHolderLock } from '../../../test/support/killed-holder-lock.js';
import { startRecordingPlugin, type RecordingPlugin } from '../../../test/support/recording-plugin.js';

let sqs: SqsStandIn | undefined;
let plugin: RecordingPlugin | undefined;
afterEach(async () => {
  killAllCli();
  await plugin?.close();
  await sqs?.close();
});

const warning = (instance: string): string =>
  JSON.stringify({
    version: '0',
    id: `evt-${instance}`,
    'detail-type': 'EC2 Spot Instance Interruption Warning',
    source: 'aws.ec2',
    account: '123456789012',
    time: '2026-11-29T18:40:12Z',
    region: 'us-east-1',
    resources: [],
    detail: { 'instance-id': instance, 'instance-action': 'terminate' },
  });

const state = (): string => `queue holds ${sqs?.queue('interruptions')?.list().length ?? 0} messages; plugin got ${plugin?.calls.length ?? 0} calls`;
/** Resolves when `check` holds (polling every 50 ms), or fails after `ms` saying where things stand. */
const eventually = (check: () => boolean, ms = 15_000): Promise<void> => pollUntil(check, ms, state);

it('core killed with messages in flight: after the restart every message is acted on exactly once and deleted', async () => {
  const done = ['i-0aaaaaaaaaaaaaaa1', 'i-0aaaaaaaaaaaaaaa2', 'i-0aaaaaaaaaaaaaaa3'];
  const cut = ['i-0bbbbbbbbbbbbbbb1', 'i-0bbbbbbbbbbbbbbb2', 'i-0bbbbbbbbbbbbbbb3'];
  let phase = 1;
  /** Plugin answers that reached core, by instance: what "acted on" means. */
  const acted = new Map<string, number>();
  sqs = await startSqsStandIn();
  const queue = sqs.createQueue('interruptions', { visibilityTimeoutSeconds: 1 });
  plugin = await startRecordingPlugin(async (event) => {
    const instance = labelsOf(event)['instance_id']!;
    // Before the kill the runs of `cut` never answer: they are in flight when core dies.
    if (phase === 1 && cut.includes(instance)) await new Promise(() => {});
    acted.set(instance, (acted.get(instance) ?? 0) + 1);
  });
  const dir = mkdtempSync(join(tmpdir(), 'hollowtrees-sqs-restart-'));
  const file = join(dir, 'config.yaml');
  writeFileSync(
    file,
    `
state: { file: "${join(dir, 'runs.jsonl')}" }
server: { listen: 127.0.0.1:0, shutdownGracePeriod: 1s }
plugins:
  rec: { type: grpc, address: "${plugin.address}", timeout: 20s, retry: { attempts: 1 } }
flows:
  spot:
    allowedEvents: [aws.ec2.spot.interruption-warning]
    groupBy: [instance_id]
    cooldown: 10m
    plugins: [rec]
sources:
  sqs:
    - { url: "${queue.url}", region: us-east-1, endpoint: "${sqs.url}", waitTimeSeconds: 1, visibilityTimeout: 1s }
`,
  );
  const env = { ...process.env, AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_EC2_METADATA_DISABLED: 'true' };

  // The runs of `done` succeed, but SQS refuses their deletes: they are acted on, their messages still on the queue.
  sqs.faults.fail(1_000, { code: 'InternalFailure', message: 'We encountered an internal error. Please try again.', status: 500 }, { service: 'sqs', action: 'DeleteMessageBatch' });
  const first = startCli(['--config', file], { env });
  await first.url();
  for (const instance of [...done, ...cut]) queue.send(warning(instance));
  await plugin.waitForCalls(6);
  await eventually(() => first.lines.filter((l) => l['msg'] === 'flow run succeeded').length === 3);
  first.child.kill('SIGKILL');
  await first.exited;
  expect(queue.list()).toHaveLength(6);
  ageKilledHolderLock(join(dir, 'runs.jsonl'));

  phase = 2;
  sqs.faults.clear();
  const second = startCli(['--config', file], { env });
  expect(await second.waitFor((l) => l['msg'] === 'run state restored')).toMatchObject({ cooling: 3, resumed: 3 });
  await eventually(() => queue.list().length === 0);

  // Every instance acted on once: `done` before the kill, `cut` by the resumed runs; every redelivery was deduplicated.
  expect(Object.fromEntries(acted)).toEqual(Object.fromEntries([...done, ...cut].map((i) => [i, 1])));
  // The redeliveries of `cut` were deleted only once the resumed runs had succeeded: had one failed, its message would still be there.
  expect(second.lines.filter((l) => l['msg'] === 'flow run succeeded').map((l) => l['groupKey'])).toHaveLength(3);
});
