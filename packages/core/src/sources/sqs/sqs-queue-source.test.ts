import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Code, labelsOf, PluginError, systemClock, type CloudEvent } from '@hollowtrees/grpcplugin';
import { pollUntil, startKubeApiServer, startSqsStandIn, type SqsQueue, type SqsStandIn } from '@hollowtrees/testkit';
import pino, { type Logger } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startRecordingPlugin, type RecordingPlugin } from '../../../test/support/recording-plugin.js';
import { startTestCore, type TestCore } from '../../../test/support/start-core.js';
import { readNoticeSample } from '../../../test/support/fixtures.js';
import type { RunProgress } from '../../flow/group-states.js';
import { KubernetesRunStateStore } from '../../state/kubernetes-store.js';
import { kubeLeaseApi, loadStoreKubeConfig } from '../../state/lease-api.js';
import { StoreMetrics } from '../../state/store-metrics.js';
import { parseConfig } from '../../config/load-config.js';
import type { SqsQueueConfig } from '../../config/schema.js';
import type { Acceptance, EventSink } from '../event-sink.js';
import { SqsMetrics } from './sqs-metrics.js';
import { SqsQueueSource } from './sqs-queue-source.js';

// The default credential chain reads these: no profile or instance metadata is looked for.
// Undone after the file: its worker runs other files next (vitest.config.ts, isolate false).
beforeAll(() => {
  vi.stubEnv('AWS_ACCESS_KEY_ID', 'test');
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test');
  vi.stubEnv('AWS_EC2_METADATA_DISABLED', 'true');
});
afterAll(() => vi.unstubAllEnvs());

/** A spot interruption warning for `instance`, with its own EventBridge id. */
const spotWarning = (instance: string, id = `evt-${instance}`): string => {
  const body = JSON.parse(readNoticeSample('spot-interruption-warning.json')) as { id: string; detail: Record<string, string> };
  body.id = id;
  body.detail['instance-id'] = instance;
  return JSON.stringify(body);
};

let sqs: SqsStandIn;
let queue: SqsQueue;
let plugin: RecordingPlugin;
let core: TestCore | undefined;

afterEach(async () => {
  await core?.close();
  core = undefined;
  await plugin?.close();
  await sqs?.close();
});

/** The config `start` gives core: its flow `spot` takes the queue's spot warnings into the plugin. */
const coreConfig = (visibility = '1s', queueExtra = '', configExtra = '', flowsExtra = ''): string => `${configExtra}
plugins:
  drain: { type: grpc, address: "${plugin.address}", timeout: 30s, retry: { attempts: 1 } }
flows:
  spot:
    allowedEvents: [aws.ec2.spot.interruption-warning]
    groupBy: [instance_id]
    cooldown: 10m
    runRetry: { attempts: 1 }
    plugins: [drain]
${flowsExtra}sources:
  sqs:
    - url: ${queue.url}
      region: us-east-2
      endpoint: ${sqs.url}
      waitTimeSeconds: 1
      visibilityTimeout: ${visibility}
${queueExtra}`;

type Behaviour = NonNullable<Parameters<typeof startRecordingPlugin>[0]>;

/** A plugin that answers UNAVAILABLE to the first call `matches` picks, and acts on every other. */
function unavailableOnce(matches: (...call: Parameters<Behaviour>) => boolean): Behaviour {
  let failed = false;
  return (...call) => {
    if (failed || !matches(...call)) return;
    failed = true;
    throw new PluginError(Code.Unavailable, 'the node did not answer');
  };
}

async function start(behaviour: Parameters<typeof startRecordingPlugin>[0], ...config: Parameters<typeof coreConfig>): Promise<void> {
  sqs = await startSqsStandIn();
  queue = sqs.createQueue('interruptions', { visibilityTimeoutSeconds: 1 });
  plugin = await startRecordingPlugin(behaviour);
  core = await startTestCore(coreConfig(...config));
}

const state = (): string => `queue holds ${queue.list().length} messages; plugin got ${plugin.calls.length} calls`;
/** Resolves when `check` holds (polling every 50 ms), or fails after `ms` saying where things stand. */
const eventually = (check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> => pollUntil(check, ms, state);
/** The queue is empty and the source is done with every message (its metrics counted: the delete's answer comes after the queue empties). */
const drained = (ms?: number): Promise<void> =>
  eventually(async () => queue.list().length === 0 && (await metric('hollowtrees_sqs_messages_in_flight', { queue: 'interruptions' })) === 0, ms);

const metric = async (name: string, labels: Record<string, string> = {}): Promise<number> => {
  // A histogram's _count and _sum are values of the metric itself, named by metricName.
  const values = (await core!.metrics.registry.getMetricsAsJSON()).flatMap((m) => m.values.map((v) => ({ ...v, name: (v as { metricName?: string }).metricName ?? m.name })));
  return values.find((v) => v.name === name && Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value ?? 0;
};

/** A promise the test resolves with `open()`: a plugin call held until the test lets it end. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/** The queue's messages deleted so far, by why. */
const deleted = async (): Promise<{ acted: number; deduplicated: number }> => ({
  acted: await metric('hollowtrees_sqs_messages_deleted_total', { queue: 'interruptions', reason: 'acted' }),
  deduplicated: await metric('hollowtrees_sqs_messages_deleted_total', { queue: 'interruptions', reason: 'deduplicated' }),
});

/** Two warnings (two EventBridge ids) for one instance, the second once the first's run has called the plugin: one group. */
async function secondWarningWhileRunning(): Promise<void> {
  queue.send(spotWarning('i-0b662ef9931388ba0', 'first'));
  await plugin.waitForCalls(1);
  queue.send(spotWarning('i-0b662ef9931388ba0', 'second'));
  await eventually(async () => (await metric('hollowtrees_sqs_messages_in_flight', { queue: 'interruptions' })) === 2);
}

/**
 * Another replica on the Leases of a Kubernetes stand-in, whose runs of the groups of `instance` in `flows` are in
 * progress; `key` names the first's group.
 */
async function otherReplicaRunning(instance: string, flows: readonly string[] = ['spot']): Promise<{ other: KubernetesRunStateStore; key: string; state: string; close: () => Promise<void> }> {
  const kube = await startKubeApiServer();
  const kubeconfig = join(mkdtempSync(join(tmpdir(), 'hollowtrees-sqs-')), 'kubeconfig');
  writeFileSync(kubeconfig, kube.kubeConfigFileText());
  const api = kubeLeaseApi(loadStoreKubeConfig(kube.kubeConfigFileText()), { namespace: 'ops', timeoutMs: 2_000, maxInFlight: 32, metrics: new StoreMetrics(new Registry()), clock: systemClock });
  const other = new KubernetesRunStateStore({ api, identity: 'other', leasePrefix: 'hollowtrees-', leaseDurationMs: 30_000, renewIntervalMs: 1_000, maxGroups: 10, clock: systemClock, logger: pino({ level: 'silent' }) });
  const close = async (): Promise<void> => {
    await other.close();
    await kube.close();
  };
  const keyOf = (flow: string): string => `${flow}:{instance_id="${instance}"}`;
  const run: RunProgress = { event: { id: 'first', source: 's', specversion: '1.0', type: 't' } as CloudEvent, attributes: {}, receivedAt: Date.now(), next: 0, attempt: 1, restarts: 0 };
  try {
    for (const flow of flows) {
      other.tryStart(keyOf(flow), flow, run, Date.now());
      expect((await other.claim(keyOf(flow), run)).claim).toBe('held');
    }
  } catch (err) {
    await close();
    throw err;
  }
  const state = `state:\n  backend: kubernetes\n  kubernetes: { namespace: ops, kubeconfig: "${kubeconfig}", leaseDuration: 30s, renewInterval: 1s }\n`;
  return { other, key: keyOf(flows[0]!), state, close };
}

/** A sink that notes the id of each event it is given and answers `answer` (by default: no flow matched). */
function notingSink(accepted: string[], answer: Partial<Acceptance> = {}, backend: EventSink['backend'] = 'memory'): EventSink {
  return {
    accept: (event) => {
      accepted.push(event.id);
      return { matched: 0, started: 0, deduplicated: 0, dropped: [], ...answer };
    },
    commit: () => Promise.resolve(true),
    durable: true,
    backend,
  };
}

/** What a sink answers for an event whose group runs on another replica. */
const RUNNING_ELSEWHERE: Partial<Acceptance> = { matched: 1, deduplicated: 1, runningElsewhere: 1 };

describe('SQS source', () => {
  it('a queue without a region anywhere is a configuration error naming the entry', async () => {
    const saved = process.env['AWS_REGION'];
    delete process.env['AWS_REGION'];
    sqs = await startSqsStandIn();
    plugin = await startRecordingPlugin();
    try {
      const started = startTestCore(`
plugins:
  drain: { type: grpc, address: "${plugin.address}" }
flows:
  spot: { allowedEvents: [aws.ec2.spot.interruption-warning], plugins: [drain] }
sources:
  sqs:
    - url: ${sqs.url}/000000000000/interruptions
      endpoint: ${sqs.url}
`);
      await expect(started).rejects.toMatchObject({ name: 'ConfigError', message: expect.stringContaining('sources.sqs[0].region: no region') as string });
    } finally {
      if (saved !== undefined) process.env['AWS_REGION'] = saved;
    }
  });

  it('takes the region of a FIPS queue URL (sqs-fips.<region>.amazonaws.com), with none set anywhere else, and acts on its notices', async () => {
    const saved = process.env['AWS_REGION'];
    delete process.env['AWS_REGION'];
    try {
      sqs = await startSqsStandIn();
      queue = sqs.createQueue('interruptions', { visibilityTimeoutSeconds: 1 });
      plugin = await startRecordingPlugin();
      // Before, only sqs.<region>.amazonaws.com named a region: core refused to start ("no region").
      core = await startTestCore(coreConfig().replace(`url: ${queue.url}\n      region: us-east-2`, 'url: https://sqs-fips.us-east-2.amazonaws.com/000000000000/interruptions'));
    } finally {
      if (saved !== undefined) process.env['AWS_REGION'] = saved;
    }
    queue.send(spotWarning('i-0b662ef9931388ba0'));
    await drained();
    expect(plugin.calls).toHaveLength(1);
  });

  it('acts on a spot interruption warning, then deletes its message', async () => {
    await start(() => {});
    queue.send(spotWarning('i-0b662ef9931388ba0'));
    await plugin.waitForCalls(1);
    await drained();
    expect(labelsOf(plugin.calls[0]!.event)).toMatchObject({ instance_id: 'i-0b662ef9931388ba0', instance_action: 'terminate', termination_time: '2026-11-29T18:42:12.000Z' });
    expect(await metric('hollowtrees_sqs_messages_received_total', { queue: 'interruptions' })).toBe(1);
    expect(await metric('hollowtrees_sqs_messages_deleted_total', { queue: 'interruptions', reason: 'acted' })).toBe(1);
    expect(await metric('hollowtrees_sqs_receive_to_first_plugin_call_seconds_count', { queue: 'interruptions' })).toBe(1);
    const status = (await (await fetch(`${core!.url}/api/v1/status/sources`)).json()) as Array<Record<string, unknown>>;
    expect(status.find((s) => s['kind'] === 'sqs')).toMatchObject({ name: 'interruptions', state: 'running', inFlight: 0, errors: 0, lastReceiveAt: expect.any(String) as string });
  });

  it('a failed run leaves the message; SQS hands it out again and the next run succeeds: one success, then deleted', async () => {
    await start((_event, _context, index) => {
      if (index === 0) throw new PluginError(Code.FailedPrecondition, 'node not ready');
    });
    queue.send(spotWarning('i-0b662ef9931388ba0'));
    await plugin.waitForCalls(2);
    await drained();
    expect(await metric('hollowtrees_sqs_messages_left_total', { queue: 'interruptions' })).toBe(1);
    expect(await metric('hollowtrees_sqs_messages_redelivered_total', { queue: 'interruptions' })).toBe(1);
    expect(await metric('hollowtrees_flow_runs_total', { flow: 'spot', outcome: 'succeeded' })).toBe(1);
    // Cooling down now: no third call, even after another visibility timeout.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(plugin.calls).toHaveLength(2);
  });

  it('keeps a message hidden while its run takes longer than the visibility timeout: never handed out mid-run', async () => {
    // A 2 s timeout, extended every 667 ms: a pause of the test worker (where SQS stands in too) up to 1.3 s lets no extension come too late.
    await start(() => new Promise((resolve) => setTimeout(resolve, 4_500)), '2s');
    queue.send(spotWarning('i-0b662ef9931388ba0'));
    await plugin.waitForCalls(1);
    await drained(10_000);
    expect(sqs.callsTo('ReceiveMessage').filter((c) => c.errorCode === undefined).length).toBeGreaterThan(1);
    expect(sqs.callsTo('ChangeMessageVisibilityBatch').length).toBeGreaterThanOrEqual(3);
    expect(await metric('hollowtrees_sqs_messages_received_total', { queue: 'interruptions' })).toBe(1);
    expect(plugin.calls).toHaveLength(1);
  });

  it('extends the visibility of many messages in progress with up to 10 calls at once, not one after another', async () => {
    const { promise: released, open: release } = gate();
    // Extended every 2 s. At 300 ms a call, 20 batches one after another take 6 s (rounds overlapping 3 deep at most);
    // 10 at a time, 0.6 s (never overlapping).
    await start(() => released, '6s', '      pollers: 4\n');
    for (let n = 0; n < 200; n++) queue.send(spotWarning(`i-${(0x20000000 + n).toString(16).padStart(17, '0')}`));
    await plugin.waitForCalls(200);
    sqs.latency.set(300);
    const before = sqs.callsTo('ChangeMessageVisibilityBatch').length;
    await eventually(() => sqs.callsTo('ChangeMessageVisibilityBatch').length >= before + 20);
    sqs.latency.set(0);
    release();
    await drained();
    expect(sqs.maxConcurrent('ChangeMessageVisibilityBatch')).toBeGreaterThanOrEqual(5);
    expect(sqs.maxConcurrent('ChangeMessageVisibilityBatch')).toBeLessThanOrEqual(10);
    expect(plugin.calls).toHaveLength(200);
  });

  it('a message handed out again while its run is in progress here (its extensions failed) is not deleted by the copy: a run that then fails leaves it, and it runs again', async () => {
    const { promise: failing, open: fail } = gate();
    await start(async (_event, _context, index) => {
      if (index > 0) return;
      await failing;
      throw new PluginError(Code.FailedPrecondition, 'node not ready');
    });
    // SQS refuses every extension: the message becomes visible mid-run and the poller receives it again.
    sqs.faults.fail(1_000, { code: 'AccessDenied', message: 'not allowed', status: 403 }, { service: 'sqs', action: 'ChangeMessageVisibilityBatch' });
    queue.send(spotWarning('i-0b662ef9931388ba0'));
    await plugin.waitForCalls(1);
    await eventually(async () => (await metric('hollowtrees_sqs_messages_received_total', { queue: 'interruptions' })) >= 2 && (await metric('hollowtrees_sqs_messages_in_flight', { queue: 'interruptions' })) === 1);
    sqs.faults.clear();
    fail();
    await eventually(async () => (await metric('hollowtrees_sqs_messages_left_total', { queue: 'interruptions' })) >= 1);
    // The copy deduplicated against the run and deleted with the newest receipt handle would have taken the notice with it.
    expect(queue.list()).toHaveLength(1);
    await plugin.waitForCalls(2);
    await drained();
    expect(await metric('hollowtrees_sqs_messages_deleted_total', { queue: 'interruptions', reason: 'acted' })).toBe(1);
    expect(await metric('hollowtrees_sqs_messages_deleted_total', { queue: 'interruptions', reason: 'deduplicated' })).toBe(0);
  });

  it('a second notice for a group whose run is in progress here is kept until that run ends; the run succeeds: it is deleted as deduplicated, never acted on', async () => {
    const { promise: released, open: release } = gate();
    await start(() => released);
    await secondWarningWhileRunning();
    // Two rounds of extensions later, the second is still held: not deleted while the run may yet fail.
    const extensions = sqs.callsTo('ChangeMessageVisibilityBatch').length;
    await eventually(() => sqs.callsTo('ChangeMessageVisibilityBatch').length >= extensions + 2);
    expect(queue.list()).toHaveLength(2);
    expect((await deleted()).deduplicated).toBe(0);
    release();
    await drained();
    expect(plugin.calls).toHaveLength(1);
    expect(await deleted()).toEqual({ acted: 1, deduplicated: 1 });
  });

  it('a second notice for a group whose run is in progress here is not lost when that run fails: both are left, and the next delivery acts once', async () => {
    const { promise: failing, open: fail } = gate();
    await start(async (_event, _context, index) => {
      if (index > 0) return;
      await failing;
      throw new PluginError(Code.FailedPrecondition, 'node not ready');
    });
    await secondWarningWhileRunning();
    fail();
    await eventually(async () => (await metric('hollowtrees_sqs_messages_left_total', { queue: 'interruptions' })) >= 2);
    expect(queue.list().map((m) => (JSON.parse(m.body) as { id: string }).id).sort()).toEqual(['first', 'second']);
    await plugin.waitForCalls(2);
    await drained();
    expect(plugin.calls).toHaveLength(2);
    expect(await deleted()).toEqual({ acted: 1, deduplicated: 1 });
  });

  it('a run longer than SQS\'s visibility cap (12 hours from a receive; 2 s here): the refusal is logged naming the message, the message handed out again goes on under its new handle, and is acted on once', async () => {
    const { promise: released, open: release } = gate();
    await start(() => released);
    queue.maxVisibilitySeconds = 2;
    const sent = queue.send(spotWarning('i-0b662ef9931388ba0'));
    await plugin.waitForCalls(1);
    const refused = (): Record<string, unknown> | undefined => core!.logs.find((l) => l['msg'] === 'SQS refused to extend the visibility of a message in progress; it will be handed out again, and its run goes on');
    await eventually(async () => refused() !== undefined && (await metric('hollowtrees_sqs_messages_redelivered_total', { queue: 'interruptions' })) >= 1);
    expect(refused()).toMatchObject({ queue: 'interruptions', messageId: sent.messageId, code: 'InvalidParameterValue', reason: expect.stringContaining('Total VisibilityTimeout for the message is beyond the limit') as string });
    release();
    await drained();
    expect(plugin.calls).toHaveLength(1);
    expect(await metric('hollowtrees_sqs_messages_deleted_total', { queue: 'interruptions', reason: 'acted' })).toBe(1);
    expect(await metric('hollowtrees_sqs_messages_deleted_total', { queue: 'interruptions', reason: 'deduplicated' })).toBe(0);
  });

  it('NOT_FOUND from a plugin ends it: the message is deleted and counted, not redelivered forever', async () => {
    await start(() => {
      throw new PluginError(Code.NotFound, 'no node for instance i-0b662ef9931388ba0');
    });
    queue.send(spotWarning('i-0b662ef9931388ba0'));
    await drained();
    expect(await metric('hollowtrees_sqs_messages_deleted_total', { queue: 'interruptions', reason: 'not_found' })).toBe(1);
    expect(plugin.calls).toHaveLength(1);
  });

  it.each([
    ['not JSON', '{"detail-type": "EC2 Spot Instance Interruption Warning", "id": 7', 'the message body is not JSON'],
    // 50 KB: within SQS's limit, and deep enough to overflow the stack of anything that walks it recursively.
    ['a warning whose detail nests 10,000 levels deep', spotWarning('i-0b662ef9931388bb1').replace('"detail":{', `"detail":{"extra":${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)},`), 'the message is nested more than 64 levels deep'],
  ])('a poison message (%s) is counted and deleted, and never blocks the messages behind it', async (_what, poison, reason) => {
    await start(() => {});
    queue.send(poison);
    queue.send(spotWarning('i-0b662ef9931388ba0'));
    await plugin.waitForCalls(1);
    await drained();
    expect(plugin.calls.map((c) => labelsOf(c.event).instance_id)).toEqual(['i-0b662ef9931388ba0']);
    expect(await metric('hollowtrees_sqs_messages_unprocessable_total', { queue: 'interruptions' })).toBe(1);
    expect(await metric('hollowtrees_sqs_messages_deleted_total', { queue: 'interruptions', reason: 'unprocessable' })).toBe(1);
    expect(core!.logs.find((l) => l['msg'] === 'SQS message is not a notice Hollowtrees can read; deleting it')).toMatchObject({ reason });
  });

  it('deletes without a run what needs none: a second copy of an event whose group cools down, an unmatched notice, a test notification', async () => {
    await start(() => {});
    queue.send(spotWarning('i-0b662ef9931388ba0', 'same-event'));
    await plugin.waitForCalls(1);
    await drained();
    queue.send(spotWarning('i-0b662ef9931388ba0', 'same-event'));
    queue.send(readNoticeSample('rebalance-recommendation.json'));
    queue.send(readNoticeSample('autoscaling-test-notification.json'));
    await drained();
    expect(plugin.calls).toHaveLength(1);
    expect(await metric('hollowtrees_sqs_messages_deleted_total', { queue: 'interruptions', reason: 'deduplicated' })).toBe(1);
    expect(await metric('hollowtrees_sqs_messages_deleted_total', { queue: 'interruptions', reason: 'unmatched' })).toBe(1);
    expect(await metric('hollowtrees_sqs_messages_deleted_total', { queue: 'interruptions', reason: 'ignored' })).toBe(1);
  });

  it('a message whose body does not match its MD5 (corrupted on the way) is left for its redrive policy, named in the log: the notices received with it are acted on', async () => {
    await start(() => {});
    const corrupted = queue.send(spotWarning('i-0b662ef9931388ba1'));
    Object.assign(corrupted, { md5OfBody: '00000000000000000000000000000000' });
    queue.send(spotWarning('i-0b662ef9931388ba0'));
    // The SDK's own check fails the whole receive: the sound notice beside it would never be acted on.
    await eventually(() => queue.list().length === 1 && corrupted.receiveCount >= 2);
    expect(plugin.calls.map((c) => labelsOf(c.event)['instance_id'])).toEqual(['i-0b662ef9931388ba0']);
    expect(queue.list()).toEqual([corrupted]);
    expect(core!.logs.find((l) => l['msg'] === 'SQS message body does not match its MD5 (MD5OfBody): not acted on; left for a redelivery, and for the dead-letter queue if it stays so')).toMatchObject({
      queue: 'interruptions',
      messageId: corrupted.messageId,
      md5OfBody: '00000000000000000000000000000000',
    });
    expect(await metric('hollowtrees_sqs_api_errors_total', { queue: 'interruptions', action: 'ReceiveMessage' })).toBe(0);
  });

  it('a message whose delete takes seconds (its first try unanswered) stays hidden meanwhile: not received again at every visibility timeout (each receive counted towards maxReceiveCount), and is deleted once, as acted', async () => {
    // A 2 s timeout, extended every 667 ms: a pause of the test worker up to 1.3 s lets no extension come too late.
    await start(() => {}, '2s', '      callTimeout: 4s\n');
    // The first try of the delete gets no answer for 4 s: two visibility timeouts.
    sqs.faults.noAnswer(1, { service: 'sqs', action: 'DeleteMessageBatch' });
    const notice = queue.send(spotWarning('i-0b662ef9931388ba0'));
    await drained();
    expect(plugin.calls).toHaveLength(1);
    expect(notice.receiveCount).toBe(1);
    expect(await deleted()).toEqual({ acted: 1, deduplicated: 0 });
  });

  it('a delete SQS refuses leaves the message; its redelivery is deduplicated and deleted, never acted on twice', async () => {
    await start(() => {});
    // Three 500s outlast the SDK's three attempts.
    sqs.faults.fail(3, { code: 'InternalFailure', message: 'We encountered an internal error. Please try again.', status: 500 }, { service: 'sqs', action: 'DeleteMessageBatch' });
    queue.send(spotWarning('i-0b662ef9931388ba0'));
    await drained();
    expect(plugin.calls).toHaveLength(1);
    expect(await metric('hollowtrees_sqs_api_errors_total', { queue: 'interruptions', action: 'DeleteMessageBatch' })).toBe(1);
    expect(await metric('hollowtrees_sqs_messages_deleted_total', { queue: 'interruptions', reason: 'deduplicated' })).toBe(1);
  });

  it('a flow with no cooldown: a delete SQS refuses leaves the message, and its redelivery to this core is deleted as deduplicated, not acted on a second time', async () => {
    sqs = await startSqsStandIn();
    queue = sqs.createQueue('interruptions', { visibilityTimeoutSeconds: 1 });
    plugin = await startRecordingPlugin(() => {});
    core = await startTestCore(coreConfig().replace('cooldown: 10m', 'cooldown: 0s'));
    sqs.faults.fail(3, { code: 'InternalFailure', message: 'We encountered an internal error. Please try again.', status: 500 }, { service: 'sqs', action: 'DeleteMessageBatch' });
    queue.send(spotWarning('i-0b662ef9931388ba0'));
    await drained();
    // Before, nothing of the run was kept once it ended: the redelivery ran the flow again, a second drain of the node.
    expect(plugin.calls).toHaveLength(1);
    expect(await metric('hollowtrees_sqs_messages_redelivered_total', { queue: 'interruptions' })).toBe(1);
    expect(await deleted()).toEqual({ acted: 0, deduplicated: 1 });
    expect(core!.logs.find((l) => l['msg'] === 'SQS message handed out again after this core acted on it (its delete failed, or SQS delivered it twice); deleted without acting again')).toMatchObject({ receiveCount: 2 });
  });

  it('a Health notice for two instances one of whose runs failed: its redelivery runs that one again, not the one acted on (a flow with no cooldown)', async () => {
    const [acted, failing] = ['i-0b662ef9931388ba0', 'i-0c1f2e3d4c5b6a798'];
    const health = '  health:\n    allowedEvents: [aws.health.ec2.scheduled-change]\n    groupBy: [instance_id]\n    runRetry: { attempts: 1 }\n    plugins: [drain]\n';
    await start(
      unavailableOnce((event) => labelsOf(event).instance_id === failing),
      '1s',
      '',
      '',
      health,
    );
    queue.send(readNoticeSample('health-scheduled-change.json'));
    await drained();
    const calls = (instance: string): number => plugin.calls.filter((c) => labelsOf(c.event).instance_id === instance).length;
    // Before, the message left for the failed run was dispatched whole again: the instance already drained was drained twice.
    expect([calls(acted), calls(failing)]).toEqual([1, 2]);
    expect(await metric('hollowtrees_sqs_messages_redelivered_total', { queue: 'interruptions' })).toBe(1);
  });

  it('a spot warning two flows take, one of whose runs failed: its redelivery runs that flow again, not the one that acted (no cooldown)', async () => {
    const replace = '  replace:\n    allowedEvents: [aws.ec2.spot.interruption-warning]\n    groupBy: [instance_id]\n    runRetry: { attempts: 1 }\n    plugins: [drain]\n';
    await start(
      unavailableOnce((_event, context) => context.flow === 'spot'),
      '1s',
      '',
      '',
      replace,
    );
    queue.send(spotWarning('i-0b662ef9931388ba0'));
    await drained();
    // Before, the message left for spot's failed run was dispatched to both flows again: replace acted twice.
    expect(plugin.calls.map((c) => c.flow).sort()).toEqual(['replace', 'spot', 'spot']);
    expect(await metric('hollowtrees_sqs_messages_redelivered_total', { queue: 'interruptions' })).toBe(1);
    expect(await deleted()).toEqual({ acted: 1, deduplicated: 0 });
    // The redelivery is a delivery replace passes by: counted as its deduplication.
    expect(await metric('hollowtrees_events_deduplicated_total', { flow: 'replace' })).toBe(1);
  });

  it.each([1, 4])('takes no more than maxInFlight messages at once, with %d pollers: the rest wait on the queue, visible to other replicas', async (pollers) => {
    const { promise: blocked, open: release } = gate();
    await start(() => blocked, '5s', `      maxInFlight: 2\n      pollers: ${pollers}\n`);
    for (const n of [1, 2, 3, 4, 5, 6, 7, 8, 9]) queue.send(spotWarning(`i-0b662ef993138800${n}`));
    await plugin.waitForCalls(2);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(plugin.calls).toHaveLength(2);
    expect(queue.visibleCount).toBe(7);
    expect(await metric('hollowtrees_sqs_messages_in_flight', { queue: 'interruptions' })).toBe(2);
    release();
    await plugin.waitForCalls(9);
    await drained();
  });

  it('keeps receiving through throttling, 5xx and dropped connections', async () => {
    await start(() => {});
    // Three in a row outlast the SDK's three attempts: the source backs off and receives again. The 503 after it the SDK retries itself.
    sqs.faults.throttle(2, { service: 'sqs', action: 'ReceiveMessage' });
    sqs.faults.dropConnection(1, { service: 'sqs', action: 'ReceiveMessage' });
    sqs.faults.unavailable(1, { service: 'sqs', action: 'ReceiveMessage' });
    queue.send(spotWarning('i-0b662ef9931388ba0'));
    await plugin.waitForCalls(1, 15_000);
    await drained(15_000);
    expect(await metric('hollowtrees_sqs_api_errors_total', { queue: 'interruptions', action: 'ReceiveMessage' })).toBe(1);
    expect(sqs.callsTo('ReceiveMessage').slice(0, 4).map((c) => c.errorCode)).toEqual(['RequestThrottled', 'RequestThrottled', 'drop-connection', 'ServiceUnavailable']);
  });

  it('an extension or a delete that gets no answer is abandoned after callTimeout and logged: the message is not held for good, and is deleted as deduplicated when redelivered', async () => {
    const { promise: released, open: release } = gate();
    await start(() => released, '1s', '      callTimeout: 500ms\n');
    sqs.faults.noAnswer(1_000, { service: 'sqs', action: 'ChangeMessageVisibilityBatch' });
    queue.send(spotWarning('i-0b662ef9931388ba0'));
    await plugin.waitForCalls(1);
    await eventually(async () => (await metric('hollowtrees_sqs_api_errors_total', { queue: 'interruptions', action: 'ChangeMessageVisibilityBatch' })) >= 1);
    sqs.faults.clear();
    sqs.faults.noAnswer(1_000, { service: 'sqs', action: 'DeleteMessageBatch' });
    release();
    await eventually(async () => (await metric('hollowtrees_sqs_api_errors_total', { queue: 'interruptions', action: 'DeleteMessageBatch' })) >= 1);
    sqs.faults.clear();
    await drained();
    expect(core!.logs.find((l) => l['msg'] === 'could not delete an SQS message that was acted on; it will be redelivered and deduplicated')).toMatchObject({ err: { name: 'TimeoutError' } });
    expect(await metric('hollowtrees_sqs_messages_deleted_total', { queue: 'interruptions', reason: 'deduplicated' })).toBe(1);
    expect(plugin.calls).toHaveLength(1);
  });

  it('1,000 messages for 1,000 instances: 1,000 runs, 1,000 deletes, nothing left in flight', async () => {
    await start(() => {}, '30s', '      pollers: 4\n');
    const instances = Array.from({ length: 1_000 }, (_, i) => `i-${(0x10000000 + i).toString(16).padStart(17, '0')}`);
    for (const instance of instances) queue.send(spotWarning(instance));
    await plugin.waitForCalls(1_000, 60_000);
    await drained(30_000);
    expect(new Set(plugin.calls.map((c) => labelsOf(c.event)['instance_id'])).size).toBe(1_000);
    expect(await metric('hollowtrees_flow_runs_total', { flow: 'spot', outcome: 'succeeded' })).toBe(1_000);
    expect(await metric('hollowtrees_sqs_messages_deleted_total', { queue: 'interruptions', reason: 'acted' })).toBe(1_000);
    await eventually(() => core!.engine.listeners.size === 0);
    expect(await metric('hollowtrees_sqs_messages_in_flight', { queue: 'interruptions' })).toBe(0);
    expect(await metric('hollowtrees_sqs_messages_redelivered_total', { queue: 'interruptions' })).toBe(0);
  });

  it('a group whose run is in progress on another replica (shared Leases): its message is kept hidden, neither deleted nor received again, until that run is known to have ended; then deleted as deduplicated', async () => {
    // The other replica, on the same Leases: its run of the instance's group is in progress.
    const { other, key, state: sharedState, close } = await otherReplicaRunning('i-0b662ef9931388ba0');
    try {
      // A 2 s timeout, extended every 667 ms: a pause of the test worker up to 1.3 s lets no extension come too late.
      await start(() => {}, '2s', '', sharedState);
      const notice = queue.send(spotWarning('i-0b662ef9931388ba0'));
      await eventually(() => notice.receiveCount === 1);
      // Six extensions, two visibility timeouts: left to reappear, it would have been received again twice by now, each
      // receive counted towards the queue's maxReceiveCount (a long drain elsewhere would send it to the dead-letter queue).
      const extensions = sqs.callsTo('ChangeMessageVisibilityBatch').length;
      await eventually(() => notice.receiveCount > 1 || sqs.callsTo('ChangeMessageVisibilityBatch').length >= extensions + 6);
      expect(notice.receiveCount).toBe(1);
      // If the other replica died now, the notice would still be here.
      expect(queue.list()).toHaveLength(1);
      expect(await metric('hollowtrees_sqs_messages_left_total', { queue: 'interruptions' })).toBe(0);
      expect(await metric('hollowtrees_sqs_messages_deleted_total', { queue: 'interruptions', reason: 'deduplicated' })).toBe(0);
      // The other replica's run succeeded: its cooldown holds the group, and the next delivery is deleted as deduplicated.
      other.succeeded(key, Date.now(), 600_000);
      expect(await other.commit()).toBe(true);
      await drained();
      expect(await metric('hollowtrees_sqs_messages_deleted_total', { queue: 'interruptions', reason: 'deduplicated' })).toBe(1);
      // One notice, one deduplication: the looks of the wait (one a second, a few here) are not counted as events again.
      expect(await metric('hollowtrees_events_deduplicated_total', { flow: 'spot' })).toBe(1);
      expect(notice.receiveCount).toBe(1);
      expect(plugin.calls).toHaveLength(0);
    } finally {
      await core?.close();
      core = undefined;
      await close();
    }
  });

  it('a notice two flows take, one of whose groups another replica runs: the flow that acted here is not run again by the looks of the wait, past its cooldown', async () => {
    const { state: sharedState, close } = await otherReplicaRunning('i-0b662ef9931388ba0');
    try {
      // "notify" cools down for 1 s: the looks of the wait (one a second) outlast it.
      await start(() => {}, '2s', '', sharedState, '  notify: { allowedEvents: [aws.ec2.spot.interruption-warning], groupBy: [instance_id], cooldown: 1s, plugins: [drain] }\n');
      queue.send(spotWarning('i-0b662ef9931388ba0'));
      await plugin.waitForCalls(1);
      // Six extensions at 667 ms: four seconds of looks while "spot" runs on the other replica.
      const extensions = sqs.callsTo('ChangeMessageVisibilityBatch').length;
      await eventually(() => plugin.calls.length > 1 || sqs.callsTo('ChangeMessageVisibilityBatch').length >= extensions + 6);
      expect(plugin.calls.map((c) => c.flow)).toEqual(['notify']);
      expect(queue.list()).toHaveLength(1);
    } finally {
      await core?.close();
      core = undefined;
      await close();
    }
  });

  it('a reload that renames the flow a message waits on (another replica runs its group) does not delete it as unmatched: it is handed out again at once, and the renamed flow acts on it', async () => {
    const { state: sharedState, close } = await otherReplicaRunning('i-0b662ef9931388ba0');
    try {
      // A 30 s timeout: only a message made visible at once is acted on within this test.
      await start(() => {}, '30s', '', sharedState);
      queue.send(spotWarning('i-0b662ef9931388ba0'));
      await eventually(() => core!.logs.some((l) => l['msg'] === 'SQS message kept hidden until a run on another replica ends'));
      await core!.reload(parseConfig(coreConfig('30s', '', sharedState).replace('\n  spot:\n', '\n  spot-renamed:\n'), 'test.yaml', {}));
      // Deleted as unmatched, the notice would be lost if the other replica's run failed or died.
      await eventually(async () => plugin.calls.length > 0 || (await metric('hollowtrees_sqs_messages_deleted_total', { queue: 'interruptions', reason: 'unmatched' })) > 0);
      await drained();
      expect(plugin.calls.map((c) => c.flow)).toEqual(['spot-renamed']);
      expect(await metric('hollowtrees_sqs_messages_deleted_total', { queue: 'interruptions', reason: 'unmatched' })).toBe(0);
      expect(await metric('hollowtrees_sqs_messages_deleted_total', { queue: 'interruptions', reason: 'acted' })).toBe(1);
    } finally {
      await core?.close();
      core = undefined;
      await close();
    }
  });

  it('a message made visible at once after a reload and received again before SQS answered the release is dispatched as new, not taken for a copy of itself in progress and left hidden for its visibility timeout', async () => {
    const { state: sharedState, close } = await otherReplicaRunning('i-0b662ef9931388ba0');
    try {
      // A 30 s timeout: only a message dispatched again at once is acted on within this test.
      await start(() => {}, '30s', '', sharedState);
      const notice = queue.send(spotWarning('i-0b662ef9931388ba0'));
      await eventually(() => core!.logs.some((l) => l['msg'] === 'SQS message kept hidden until a run on another replica ends'));
      // SQS applies the release (and the open long poll hands the message out again) before its answer comes back.
      const answered = gate();
      sqs.faults.holdAnswer(100, answered.promise, { service: 'sqs', action: 'ChangeMessageVisibilityBatch' });
      await core!.reload(parseConfig(coreConfig('30s', '', sharedState).replace('\n  spot:\n', '\n  spot-renamed:\n'), 'test.yaml', {}));
      await eventually(() => notice.receiveCount > 1);
      answered.open();
      await plugin.waitForCalls(1);
      await drained();
      expect(plugin.calls.map((c) => c.flow)).toEqual(['spot-renamed']);
      expect(notice.receiveCount).toBe(2);
      expect(await deleted()).toEqual({ acted: 1, deduplicated: 0 });
    } finally {
      await core?.close();
      core = undefined;
      await close();
    }
  });

  it('a reload that renames one of two flows a message waits on (another replica runs both groups) does not drop the renamed flow\'s part when the other\'s run ends: it is handed out again at once, and the renamed flow acts on it', async () => {
    const { other, key, state: sharedState, close } = await otherReplicaRunning('i-0b662ef9931388ba0', ['spot', 'notify']);
    const notify = '  notify: { allowedEvents: [aws.ec2.spot.interruption-warning], groupBy: [instance_id], cooldown: 10m, plugins: [drain] }\n';
    try {
      // A 30 s timeout: only a message made visible at once is acted on within this test.
      await start(() => {}, '30s', '', sharedState, notify);
      queue.send(spotWarning('i-0b662ef9931388ba0'));
      await eventually(() => core!.logs.some((l) => l['msg'] === 'SQS message kept hidden until a run on another replica ends'));
      await core!.reload(parseConfig(coreConfig('30s', '', sharedState, notify.replace('notify:', 'notify-renamed:')), 'test.yaml', {}));
      // The other replica's "spot" run succeeds: deleted as deduplicated now, the notice is lost to "notify-renamed" if
      // that replica's "notify" run fails or dies.
      other.succeeded(key, Date.now(), 600_000);
      expect(await other.commit()).toBe(true);
      await eventually(async () => plugin.calls.length > 0 || (await deleted()).deduplicated > 0);
      await drained();
      expect(plugin.calls.map((c) => c.flow)).toEqual(['notify-renamed']);
      expect(await deleted()).toEqual({ acted: 1, deduplicated: 0 });
    } finally {
      await core?.close();
      core = undefined;
      await close();
    }
  });
});

describe('SQS source on its own', () => {
  /** The entry of `queue`, with 1 s long polls and visibility timeout unless `fields` say otherwise. */
  const queueConfig = (fields: Record<string, string | number> = {}): SqsQueueConfig => {
    const entry = { url: queue.url, region: 'us-east-2', endpoint: sqs.url, waitTimeSeconds: 1, visibilityTimeout: '1s', ...fields };
    const { config } = parseConfig(`flows:\n  f: { allowedEvents: [x], plugins: [log] }\nsources:\n  sqs:\n    - ${JSON.stringify(entry)}\n`, 'test.yaml', {});
    return config.sources.sqs[0]!;
  };
  /** A logger whose lines land in `lines`, parsed. */
  const capturing = (lines: Array<Record<string, unknown>>): Logger => pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });

  it('an error nothing expected while handling a message (here a sink that throws) leaves the message on the queue, is logged, and ends nothing else', async () => {
    sqs = await startSqsStandIn();
    queue = sqs.createQueue('interruptions', { visibilityTimeoutSeconds: 1 });
    const lines: Array<Record<string, unknown>> = [];
    const logger = capturing(lines);
    let accepted = 0;
    const sink: EventSink = {
      accept: () => {
        accepted++;
        throw new Error('boom');
      },
      commit: () => Promise.resolve(true),
      durable: true,
      backend: 'memory',
    };
    const source = new SqsQueueSource(queueConfig(), 0, new SqsMetrics(new Registry()), logger, systemClock);
    await source.start(sink);
    try {
      queue.send(spotWarning('i-0b662ef9931388ba0'));
      // Handed out again after its visibility timeout: it was not deleted.
      await pollUntil(() => accepted >= 2, 10_000, () => `accepted ${accepted} times`);
      expect(source.status()).toMatchObject({ state: 'running', lastError: { message: 'handling a message: boom' } });
      expect(lines.find((l) => l['msg'] === 'unexpected error handling an SQS message; it is left on the queue')).toMatchObject({ queue: 'interruptions', err: { message: 'boom' } });
      expect(queue.list()).toHaveLength(1);
    } finally {
      await source.close();
    }
  });

  it('an error nothing expected that ends a message\'s handling while the source closes (here a commit that rejects) still closes it', async () => {
    sqs = await startSqsStandIn();
    queue = sqs.createQueue('interruptions', { visibilityTimeoutSeconds: 1 });
    let failCommit: (err: Error) => void = () => {};
    const sink: EventSink = {
      // Its group cools down: the delete waits for the commit.
      accept: () => ({ matched: 1, started: 0, deduplicated: 1, dropped: [] }),
      commit: () => new Promise((_resolve, reject) => (failCommit = reject)),
      durable: true,
      backend: 'memory',
    };
    const source = new SqsQueueSource(queueConfig(), 0, new SqsMetrics(new Registry()), pino({ level: 'silent' }), systemClock);
    await source.start(sink);
    queue.send(spotWarning('i-0b662ef9931388ba0'));
    await pollUntil(() => source.status().inFlight === 1, 10_000, () => 'not received yet');
    await source.stop();
    const closing = source.close();
    // Once close() waits for the messages in progress (its stop is done: microtasks only).
    await new Promise((resolve) => setImmediate(resolve));
    failCommit(new Error('boom'));
    await expect(closing).resolves.toBeUndefined();
    expect(source.status()).toMatchObject({ state: 'stopped', lastError: { message: 'handling a message: boom' } });
  });

  it.each([
    ['the run state cannot be saved', { durable: false, noRoom: undefined }],
    ['no flow has room', { durable: true, noRoom: 'flow "spot": its queue is full (queueSize 1)' }],
  ] as const)('receives nothing while %s, as the sink contract asks: messages keep their receive count (redrive) and stay visible to other replicas', async (_why, refusal) => {
    sqs = await startSqsStandIn();
    queue = sqs.createQueue('interruptions', { visibilityTimeoutSeconds: 1 });
    let refusing = true;
    const accepted: string[] = [];
    const sink: EventSink = {
      accept: (event) => {
        accepted.push(event.id);
        return { matched: 0, started: 0, deduplicated: 0, dropped: [] };
      },
      noRoom: () => (refusing ? refusal.noRoom : undefined),
      commit: () => Promise.resolve(true),
      get durable() {
        return !refusing || refusal.durable;
      },
      backend: 'memory',
    };
    const source = new SqsQueueSource(queueConfig(), 0, new SqsMetrics(new Registry()), pino({ level: 'silent' }), systemClock);
    queue.send(spotWarning('i-0b662ef9931388ba0'));
    await source.start(sink);
    try {
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(sqs.callsTo('ReceiveMessage')).toHaveLength(0);
      expect(queue.list()[0]!.receiveCount).toBe(0);
      refusing = false;
      await pollUntil(() => queue.list().length === 0, 10_000, () => `accepted ${accepted.length}`);
      expect(accepted).toEqual(['evt-i-0b662ef9931388ba0']);
    } finally {
      await source.close();
    }
  });

  it('a copy received while the delete of an acted-on message is on its way (its first try unanswered) is deleted too: SQS takes a delete under the older handle and deletes nothing', async () => {
    sqs = await startSqsStandIn();
    queue = sqs.createQueue('interruptions', { visibilityTimeoutSeconds: 30 });
    const accepted: string[] = [];
    const sink: EventSink = {
      accept: (event, _receivedAt, onSettled) => {
        accepted.push(event.id);
        onSettled?.({ flow: 'f', outcome: 'succeeded' });
        return { matched: 1, started: 1, deduplicated: 0, dropped: [] };
      },
      commit: () => Promise.resolve(true),
      durable: true,
      backend: 'memory',
    };
    // The SDK tries the unanswered delete again after callTimeout, with the handle it was sent.
    sqs.faults.noAnswer(1, { service: 'sqs', action: 'DeleteMessageBatch' });
    const source = new SqsQueueSource(queueConfig({ visibilityTimeout: '30s', callTimeout: '2s' }), 0, new SqsMetrics(new Registry()), pino({ level: 'silent' }), systemClock);
    await source.start(sink);
    try {
      const notice = queue.send(spotWarning('i-0b662ef9931388ba0'));
      await pollUntil(() => sqs.callsTo('DeleteMessageBatch').length === 1, 10_000, () => 'no delete yet');
      // Its visibility lapses as renewals refused would let it: the poller receives it again under a new handle.
      queue.changeVisibility(notice.receiptHandle!, 0);
      // Received again before the delete's second try (the usual case), or after it deleted the message (a slow machine).
      await pollUntil(() => notice.receiveCount === 2 || queue.list().length === 0, 10_000, () => `received ${notice.receiveCount} times`);
      await pollUntil(() => source.status().inFlight === 0, 10_000, () => `${source.status().inFlight} in flight`);
      // Left, it would be handed out again after its visibility timeout and acted on a second time (no cooldown).
      expect(queue.list()).toHaveLength(0);
      expect(accepted).toHaveLength(1);
    } finally {
      await source.close();
    }
  });

  it('a delete SQS refuses of a message no flow acted on (here one no flow takes) is logged with its reason, not as acted on', async () => {
    sqs = await startSqsStandIn();
    queue = sqs.createQueue('interruptions', { visibilityTimeoutSeconds: 1 });
    const lines: Array<Record<string, unknown>> = [];
    // Three 500s outlast the SDK's three attempts.
    sqs.faults.fail(3, { code: 'InternalFailure', message: 'We encountered an internal error. Please try again.', status: 500 }, { service: 'sqs', action: 'DeleteMessageBatch' });
    const source = new SqsQueueSource(queueConfig(), 0, new SqsMetrics(new Registry()), capturing(lines), systemClock);
    await source.start(notingSink([]));
    try {
      queue.send(spotWarning('i-0b662ef9931388ba0'));
      await pollUntil(() => lines.some((l) => typeof l['msg'] === 'string' && l['msg'].startsWith('could not delete an SQS message')), 10_000, () => 'no failed delete logged');
      expect(lines.find((l) => typeof l['msg'] === 'string' && l['msg'].startsWith('could not delete an SQS message'))).toMatchObject({
        msg: 'could not delete an SQS message (unmatched); it will be redelivered and deleted again',
        reason: 'unmatched',
      });
      // Redelivered, it is deleted as unmatched again.
      await pollUntil(() => queue.list().length === 0, 10_000, () => `${queue.list().length} messages on the queue`);
    } finally {
      await source.close();
    }
  });

  it('a message whose group another replica is running is dispatched again while kept hidden: deleted once that run is known to have ended; a source stopped meanwhile leaves it', async () => {
    sqs = await startSqsStandIn();
    queue = sqs.createQueue('interruptions', { visibilityTimeoutSeconds: 1 });
    const lines: Array<Record<string, unknown>> = [];
    /** The groups another replica runs, by instance; the rest are cooling down there. */
    const runningElsewhere = new Set(['i-0b662ef9931388ba0', 'i-0b662ef9931388ba1']);
    const accepted: string[] = [];
    const sink: EventSink = {
      accept: (event) => {
        const instance = labelsOf(event)['instance_id']!;
        accepted.push(instance);
        return { matched: 1, started: 0, deduplicated: 1, dropped: [], ...(runningElsewhere.has(instance) ? { runningElsewhere: 1 } : {}) };
      },
      commit: () => Promise.resolve(true),
      durable: true,
      backend: 'kubernetes',
    };
    const source = new SqsQueueSource(queueConfig({ visibilityTimeout: '2s' }), 0, new SqsMetrics(new Registry()), capturing(lines), systemClock);
    await source.start(sink);
    try {
      const ended = queue.send(spotWarning('i-0b662ef9931388ba0'));
      const cut = queue.send(spotWarning('i-0b662ef9931388ba1'));
      await pollUntil(() => accepted.filter((i) => i === 'i-0b662ef9931388ba0').length >= 3, 10_000, () => `accepted ${accepted.join(', ')}`);
      expect(queue.list()).toHaveLength(2);
      // That run ended: the next dispatch finds the group cooling down, and the message is deleted as deduplicated.
      runningElsewhere.delete('i-0b662ef9931388ba0');
      await pollUntil(() => !queue.list().includes(ended), 10_000, () => `accepted ${accepted.join(', ')}`);
      // Logged once per message, not at every dispatch.
      expect(lines.filter((l) => l['msg'] === 'SQS message kept hidden until a run on another replica ends').map((l) => l['messageId']).sort()).toEqual([ended.messageId, cut.messageId].sort());
      await source.stop();
      expect(lines.find((l) => l['msg'] === 'SQS message left on the queue; it is handed out again after its visibility timeout')).toMatchObject({
        messageId: cut.messageId,
        why: 'a run of its group is in progress on another replica',
      });
      expect(queue.list()).toEqual([cut]);
      expect(cut.receiveCount).toBe(1);
    } finally {
      await source.close();
    }
  });

  it('a message waiting for another replica\'s run is looked at again every second, whatever its visibility timeout: a run that failed there is run here within the notice', async () => {
    sqs = await startSqsStandIn();
    queue = sqs.createQueue('interruptions', { visibilityTimeoutSeconds: 1 });
    const accepted: string[] = [];
    let elsewhere = true;
    const sink: EventSink = {
      accept: (event, _at, onSettled) => {
        accepted.push(event.id);
        if (elsewhere) return { matched: 1, started: 0, deduplicated: 1, dropped: [], runningElsewhere: 1 };
        // That run failed there: the group is free, and the event runs here.
        queueMicrotask(() => onSettled?.({ flow: 'f', outcome: 'succeeded' }));
        return { matched: 1, started: 1, deduplicated: 0, dropped: [] };
      },
      commit: () => Promise.resolve(true),
      durable: true,
      backend: 'kubernetes',
    };
    // Renewed every 10 minutes: a long drain's timeout.
    const source = new SqsQueueSource(queueConfig({ visibilityTimeout: '30m' }), 0, new SqsMetrics(new Registry()), pino({ level: 'silent' }), systemClock);
    await source.start(sink);
    try {
      queue.send(spotWarning('i-0b662ef9931388ba0'));
      await pollUntil(() => accepted.length >= 1, 10_000, () => 'not dispatched yet');
      elsewhere = false;
      await pollUntil(() => queue.list().length === 0, 10_000, () => `dispatched ${accepted.length} times; the message is still on the queue`);
      expect(accepted.length).toBeGreaterThanOrEqual(2);
    } finally {
      await source.close();
    }
  });

  it('a source stopped while a message waits for another replica\'s run gives the sink that event no more: a run it started then would begin as core shuts down', async () => {
    sqs = await startSqsStandIn();
    queue = sqs.createQueue('interruptions', { visibilityTimeoutSeconds: 1 });
    const accepted: string[] = [];
    const sink = notingSink(accepted, RUNNING_ELSEWHERE, 'kubernetes');
    // The wait is asleep between its looks (every second), not dispatching, when the source stops.
    const source = new SqsQueueSource(queueConfig({ visibilityTimeout: '30s' }), 0, new SqsMetrics(new Registry()), pino({ level: 'silent' }), systemClock);
    await source.start(sink);
    let closed = false;
    try {
      const notice = queue.send(spotWarning('i-0b662ef9931388ba0'));
      await pollUntil(() => accepted.length >= 1, 10_000, () => 'not dispatched yet');
      const before = accepted.length;
      await source.stop();
      await source.close();
      closed = true;
      expect(accepted).toHaveLength(before);
      expect(queue.list()).toEqual([notice]);
    } finally {
      if (!closed) await source.close();
    }
  });

  it('a message left as the source stops is made visible at once, once its receives have ended: another replica gets it now, not a visibility timeout (here 30 s) later', async () => {
    sqs = await startSqsStandIn();
    queue = sqs.createQueue('interruptions', { visibilityTimeoutSeconds: 1 });
    const lines: Array<Record<string, unknown>> = [];
    const accepted: string[] = [];
    const sink = notingSink(accepted, RUNNING_ELSEWHERE, 'kubernetes');
    const source = new SqsQueueSource(queueConfig({ visibilityTimeout: '30s' }), 0, new SqsMetrics(new Registry()), capturing(lines), systemClock);
    await source.start(sink);
    let closed = false;
    try {
      const notice = queue.send(spotWarning('i-0b662ef9931388ba0'));
      await pollUntil(() => accepted.length >= 1, 10_000, () => 'not dispatched yet');
      expect(queue.visibleCount).toBe(0);
      await source.stop();
      await pollUntil(() => queue.visibleCount === 1, 10_000, () => `visible ${queue.visibleCount}, hidden until ${notice.invisibleUntil - Date.now()} ms from now`);
      // Released after the source's long poll ended: no receive of its own took it back.
      expect(notice.receiveCount).toBe(1);
      expect(lines.find((l) => l['msg'] === 'SQS message made visible again at once: the source is stopping')).toMatchObject({ queue: 'interruptions', messageId: notice.messageId });
      await source.close();
      closed = true;
      expect(queue.list()).toEqual([notice]);
    } finally {
      if (!closed) await source.close();
    }
  });

  it('with the most pollers (50), each holding a 20 s long poll, a message acted on is deleted at once: its delete does not wait for a long poll to end', async () => {
    sqs = await startSqsStandIn();
    queue = sqs.createQueue('interruptions', { visibilityTimeoutSeconds: 1 });
    let settle: () => void = () => {};
    const sink: EventSink = {
      accept: (_event, _at, onSettled) => {
        settle = () => onSettled?.({ flow: 'f', outcome: 'succeeded' });
        return { matched: 1, started: 1, deduplicated: 0, dropped: [] };
      },
      commit: () => Promise.resolve(true),
      durable: true,
      backend: 'memory',
    };
    const source = new SqsQueueSource(queueConfig({ pollers: 50, waitTimeSeconds: 20, visibilityTimeout: '30s' }), 0, new SqsMetrics(new Registry()), pino({ level: 'silent' }), systemClock);
    await source.start(sink);
    try {
      queue.send(spotWarning('i-0b662ef9931388ba0'));
      await pollUntil(() => source.status().inFlight === 1 && sqs.maxConcurrent('ReceiveMessage') >= 50, 10_000, () => `in flight ${source.status().inFlight}, long polls at once ${sqs.maxConcurrent('ReceiveMessage')}`);
      // The run succeeds while every poller waits on the empty queue: with one socket per poller and no more, the
      // delete would wait for the first of those polls to end, up to 20 s.
      settle();
      await pollUntil(() => queue.list().length === 0, 10_000, () => `deletes ${sqs.callsTo('DeleteMessageBatch').length}; the message is still on the queue`);
    } finally {
      await source.close();
    }
  });

  it('short polling (waitTimeSeconds 0) of an empty queue pauses a second after each empty answer, not a busy loop of receives (each one billed)', async () => {
    sqs = await startSqsStandIn();
    queue = sqs.createQueue('interruptions', { visibilityTimeoutSeconds: 1 });
    const accepted: string[] = [];
    const sink = notingSink(accepted);
    const source = new SqsQueueSource(queueConfig({ waitTimeSeconds: 0 }), 0, new SqsMetrics(new Registry()), pino({ level: 'silent' }), systemClock);
    await source.start(sink);
    try {
      await pollUntil(() => sqs.callsTo('ReceiveMessage').length >= 1, 10_000, () => 'no receive yet');
      // A window, not a wait for a condition: the rate is what is tested. Back to back on loopback, hundreds.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(sqs.callsTo('ReceiveMessage').length).toBeLessThanOrEqual(5);
      queue.send(spotWarning('i-0b662ef9931388ba0'));
      await pollUntil(() => queue.list().length === 0, 10_000, () => `accepted ${accepted.length}`);
      expect(accepted).toEqual(['evt-i-0b662ef9931388ba0']);
    } finally {
      await source.close();
    }
  });

  it('a receive that gets no answer is abandoned callTimeout after its long poll, logged and tried again: the source is not stuck for good', async () => {
    sqs = await startSqsStandIn();
    queue = sqs.createQueue('interruptions', { visibilityTimeoutSeconds: 1 });
    const lines: Array<Record<string, unknown>> = [];
    const accepted: string[] = [];
    const sink = notingSink(accepted);
    const source = new SqsQueueSource(queueConfig({ waitTimeSeconds: 0, callTimeout: '200ms' }), 0, new SqsMetrics(new Registry()), capturing(lines), systemClock);
    // An endpoint that takes the receive and never answers (a stalled proxy or VPC endpoint), for every SDK attempt.
    sqs.faults.noAnswer(1_000, { service: 'sqs', action: 'ReceiveMessage' });
    await source.start(sink);
    try {
      await pollUntil(() => source.status().errors >= 1, 10_000, () => `status ${JSON.stringify(source.status())}`);
      expect(source.status()).toMatchObject({ state: 'failing', lastError: { message: expect.stringContaining('ReceiveMessage: TimeoutError') as string } });
      expect(lines.find((l) => l['msg'] === 'could not receive from the SQS queue; trying again')).toMatchObject({ queue: 'interruptions', err: { name: 'TimeoutError' } });
      sqs.faults.clear();
      queue.send(spotWarning('i-0b662ef9931388ba0'));
      await pollUntil(() => queue.list().length === 0, 10_000, () => `accepted ${accepted.length}`);
      expect(accepted).toEqual(['evt-i-0b662ef9931388ba0']);
    } finally {
      await source.close();
    }
  });
});
