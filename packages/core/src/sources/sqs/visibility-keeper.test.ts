import { ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { pollUntil, startSqsStandIn, startTcpRelay, type SqsQueue, type SqsStandIn } from '@hollowtrees/testkit';
import pino from 'pino';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { VisibilityKeeper } from './visibility-keeper.js';

/** Seconds each message is received for: much longer than the keeper extends it for (1 s). */
const RECEIVED_FOR_SECONDS = 60;

let sqs: SqsStandIn;
let queue: SqsQueue;
let client: SQSClient;
let keeper: VisibilityKeeper | undefined;

beforeEach(async () => {
  sqs = await startSqsStandIn();
  queue = sqs.createQueue('interruptions');
  client = new SQSClient({ region: 'us-east-2', endpoint: sqs.url, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
});

afterEach(async () => {
  keeper?.stop();
  keeper = undefined;
  client.destroy();
  await sqs.close();
});

/** Sends and receives `count` messages, hidden for a minute; resolves with their receipt handles. */
async function receive(count: number): Promise<string[]> {
  for (let n = 0; n < count; n++) queue.send(`message ${n}`);
  const handles: string[] = [];
  while (handles.length < count) {
    const { Messages = [] } = await client.send(new ReceiveMessageCommand({ QueueUrl: queue.url, MaxNumberOfMessages: 10, VisibilityTimeout: RECEIVED_FOR_SECONDS }));
    handles.push(...Messages.map((m) => m.ReceiptHandle!));
  }
  return handles;
}

/**
 * Holds 300 messages in a keeper that extends them every 333 ms, against an SQS that takes 300 ms a call: 10 calls
 * at a time, a round reaches 20 of its 30 batches at most before its deadline. Resolves with the keeper's log lines.
 */
async function holdThroughSlowRounds(): Promise<{ lines: Array<Record<string, unknown>>; since: number }> {
  const handles = await receive(300);
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) }).child({ queue: 'interruptions' });
  keeper = new VisibilityKeeper(client, queue.url, 1_000, logger, () => {});
  sqs.latency.set(300);
  const since = Date.now();
  for (const handle of handles) keeper.hold(handle, undefined);
  return { lines, since };
}

const CUT_SHORT = 'a round of visibility extensions did not end within a third of the visibility timeout; the next round starts now';

it('a round cut short at its deadline is logged with the batches it skipped', async () => {
  const { lines } = await holdThroughSlowRounds();
  await pollUntil(() => lines.some((l) => l['msg'] === CUT_SHORT), 10_000, () => `logged: ${JSON.stringify(lines)}`);
  const line = lines.find((l) => l['msg'] === CUT_SHORT)!;
  expect(line).toMatchObject({ level: 40, queue: 'interruptions', held: 300, intervalMs: 333 });
  // The third wave of calls never starts; the second may not either, on a slow machine.
  expect(line['skipped']).toBeGreaterThanOrEqual(100);
  expect(line['skipped']).toBeLessThanOrEqual(290);
});

it('rounds cut short at their deadline take turns: the next round starts with the batches the last one never reached, so every message held is extended', async () => {
  const { since } = await holdThroughSlowRounds();
  // Received for a minute; extended, a message is hidden for 1 s from the extension.
  const extended = (): number => queue.list().filter((m) => m.invisibleUntil < since + (RECEIVED_FOR_SECONDS / 2) * 1_000).length;
  await pollUntil(() => extended() === 300, 10_000, () => `${extended()} of 300 messages extended`);
});

it('a message released while a round is under way is not extended by that round: a source stopping makes it visible at once, and a late extension would hide it again for a whole timeout', async () => {
  const handles = await receive(110);
  const released = handles[109]!;
  // The round's first ten calls (MAX_CONCURRENT_CALLS) take batches 1 to 10; the 11th, with `released`, is sent once one of them ends.
  let releaseNow = false;
  const relay = await startTcpRelay(Number(new URL(sqs.url).port), {
    onClientBytes: () => {
      if (!releaseNow) return;
      releaseNow = false;
      keeper!.release(released);
    },
  });
  const relayed = new SQSClient({ region: 'us-east-2', endpoint: `http://127.0.0.1:${relay.port}`, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  try {
    keeper = new VisibilityKeeper(relayed, queue.url, 1_000, pino({ level: 'silent' }), () => {});
    for (const handle of handles) keeper.hold(handle, undefined);
    releaseNow = true;
    const hiddenUntil = (handle: string): number => queue.list().find((m) => m.receiptHandle === handle)!.invisibleUntil;
    const extended = (handle: string): boolean => hiddenUntil(handle) < Date.now() + (RECEIVED_FOR_SECONDS / 2) * 1_000;
    // The rest of the 11th batch is extended (by that round, or the next if it ran out of time)...
    await pollUntil(() => handles.slice(100, 109).every(extended), 10_000, () => `${handles.filter(extended).length} of 110 extended`);
    // ...but not the message released before its batch was sent.
    expect(releaseNow).toBe(false);
    expect(extended(released)).toBe(false);
  } finally {
    relayed.destroy();
    await relay.close();
  }
});
