import {
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
  type Message,
} from '@aws-sdk/client-sqs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startSqsStandIn, type SqsQueue, type SqsStandIn } from './index.js';

let sqs: SqsStandIn;
let client: SQSClient;
let queue: SqsQueue;

const clientConfig = (maxAttempts: number) => ({
  region: 'us-east-1',
  endpoint: sqs.url,
  credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  maxAttempts,
});

beforeEach(async () => {
  sqs = await startSqsStandIn();
  queue = sqs.createQueue('interruptions', { visibilityTimeoutSeconds: 1 });
  // One attempt: these tests look at single answers; the fault tests make their own client.
  client = new SQSClient(clientConfig(1));
});
afterEach(async () => {
  client.destroy();
  await sqs.close();
});

const receive = async (extra: { WaitTimeSeconds?: number; VisibilityTimeout?: number; MaxNumberOfMessages?: number } = {}): Promise<Message[]> =>
  (await client.send(new ReceiveMessageCommand({ QueueUrl: queue.url, MessageSystemAttributeNames: ['All'], ...extra }))).Messages ?? [];

const failure = (p: Promise<unknown>): Promise<Error & { $metadata: { httpStatusCode?: number } }> =>
  p.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (err: Error & { $metadata: { httpStatusCode?: number } }) => err,
  );

describe('SQS stand-in through @aws-sdk/client-sqs', () => {
  it('speaks AWS JSON 1.0: sent bodies come back with an MD5 the SDK accepts', async () => {
    const sent = await client.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: '{"detail-type":"EC2 Spot Instance Interruption Warning"}' }));
    const [message] = await receive();
    expect(message).toMatchObject({ MessageId: sent.MessageId, Body: '{"detail-type":"EC2 Spot Instance Interruption Warning"}' });
    expect(message!.Attributes).toMatchObject({ ApproximateReceiveCount: '1' });
    expect(sqs.callsTo('ReceiveMessage')).toHaveLength(1);
  });

  it('a body whose MD5 does not match fails the SDK call, so the stand-in MD5 is what the SDK checks', async () => {
    const message = queue.send('{"a":1}');
    // Corrupt the stored checksum: the SDK's receive middleware must refuse the answer.
    Object.assign(message, { md5OfBody: '00000000000000000000000000000000' });
    await expect(receive()).rejects.toThrow(/Invalid MD5 checksum on messages/);
  });

  it('long-polls: a receive waits for a message sent during the wait and answers at once', async () => {
    const started = Date.now();
    const pending = receive({ WaitTimeSeconds: 5 });
    setTimeout(() => queue.send('late'), 200);
    const messages = await pending;
    expect(messages.map((m) => m.Body)).toEqual(['late']);
    expect(Date.now() - started).toBeLessThan(4_000);
  });

  it('a long poll with nothing to hand out answers empty after its wait', async () => {
    const started = Date.now();
    expect(await receive({ WaitTimeSeconds: 1 })).toEqual([]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
  });

  it('hides a received message for its visibility timeout, then hands it out again with a higher receive count', async () => {
    queue.send('m');
    const [first] = await receive();
    expect(await receive()).toEqual([]);
    const [again] = await receive({ WaitTimeSeconds: 3 });
    expect(again!.MessageId).toBe(first!.MessageId);
    expect(again!.ReceiptHandle).not.toBe(first!.ReceiptHandle);
    expect(again!.Attributes!['ApproximateReceiveCount']).toBe('2');
  });

  it('ChangeMessageVisibility keeps a message hidden past its timeout; 0 makes it visible at once', async () => {
    queue.send('m');
    const [message] = await receive();
    await client.send(new ChangeMessageVisibilityCommand({ QueueUrl: queue.url, ReceiptHandle: message!.ReceiptHandle, VisibilityTimeout: 3 }));
    expect(await receive({ WaitTimeSeconds: 2 })).toEqual([]);
    await client.send(new ChangeMessageVisibilityCommand({ QueueUrl: queue.url, ReceiptHandle: message!.ReceiptHandle, VisibilityTimeout: 0 }));
    expect((await receive()).map((m) => m.MessageId)).toEqual([message!.MessageId]);
  });

  it('holdAnswer: the call is applied at once and only its answer waits: a message made visible is handed out before the change is answered', async () => {
    queue.send('m');
    const [message] = await receive();
    let answer = (): void => {};
    const held = sqs.faults.holdAnswer(1, new Promise<void>((resolve) => (answer = resolve)), { action: 'ChangeMessageVisibility' });
    let answered = false;
    const change = client.send(new ChangeMessageVisibilityCommand({ QueueUrl: queue.url, ReceiptHandle: message!.ReceiptHandle, VisibilityTimeout: 0 })).then(() => (answered = true));
    expect((await receive({ WaitTimeSeconds: 5 })).map((m) => m.MessageId)).toEqual([message!.MessageId]);
    expect([held.hits, answered]).toEqual([1, false]);
    answer();
    await change;
    expect(answered).toBe(true);
  });

  it('a message stays hidden at most maxVisibilitySeconds (SQS: 12 hours) from its latest receive: a change beyond it is refused', async () => {
    queue.maxVisibilitySeconds = 5;
    queue.send('m');
    const [message] = await receive();
    await client.send(new ChangeMessageVisibilityCommand({ QueueUrl: queue.url, ReceiptHandle: message!.ReceiptHandle, VisibilityTimeout: 4 }));
    const err = await failure(client.send(new ChangeMessageVisibilityCommand({ QueueUrl: queue.url, ReceiptHandle: message!.ReceiptHandle, VisibilityTimeout: 10 })));
    expect(err.name).toBe('InvalidParameterValue');
    expect(err.message).toBe('Value 10 for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout for the message is beyond the limit [5 seconds]');
  });

  it('a stale receipt handle cannot change the visibility (InvalidParameterValue) and its delete deletes nothing', async () => {
    queue.send('m');
    const [first] = await receive({ VisibilityTimeout: 0 });
    const [second] = await receive();
    const err = await failure(client.send(new ChangeMessageVisibilityCommand({ QueueUrl: queue.url, ReceiptHandle: first!.ReceiptHandle, VisibilityTimeout: 10 })));
    expect(err.name).toBe('InvalidParameterValue');
    await client.send(new DeleteMessageCommand({ QueueUrl: queue.url, ReceiptHandle: first!.ReceiptHandle }));
    expect(queue.list()).toHaveLength(1);
    await client.send(new DeleteMessageCommand({ QueueUrl: queue.url, ReceiptHandle: second!.ReceiptHandle }));
    expect(queue.list()).toHaveLength(0);
  });

  it('batches: send, change visibility and delete report each entry, failures included', async () => {
    const sent = await client.send(
      new SendMessageBatchCommand({ QueueUrl: queue.url, Entries: [0, 1, 2].map((i) => ({ Id: `e${i}`, MessageBody: `body ${i}` })) }),
    );
    expect(sent.Successful).toHaveLength(3);
    const messages = await receive({ MaxNumberOfMessages: 10 });
    expect(messages.map((m) => m.Body)).toEqual(['body 0', 'body 1', 'body 2']);
    const changed = await client.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: queue.url,
        Entries: [
          { Id: 'a', ReceiptHandle: messages[0]!.ReceiptHandle!, VisibilityTimeout: 30 },
          { Id: 'b', ReceiptHandle: 'not-a-handle', VisibilityTimeout: 30 },
        ],
      }),
    );
    expect(changed.Successful!.map((e) => e.Id)).toEqual(['a']);
    expect(changed.Failed).toEqual([{ Id: 'b', SenderFault: true, Code: 'ReceiptHandleIsInvalid', Message: expect.stringContaining('not-a-handle') as string }]);
    const deleted = await client.send(
      new DeleteMessageBatchCommand({ QueueUrl: queue.url, Entries: messages.map((m, i) => ({ Id: `d${i}`, ReceiptHandle: m.ReceiptHandle! })) }),
    );
    expect(deleted.Successful).toHaveLength(3);
    expect(queue.list()).toEqual([]);
  });

  it('moves a message to the dead-letter queue on the receive after maxReceiveCount', async () => {
    const dlq = sqs.createQueue('interruptions-dlq');
    const { QueueUrl } = await client.send(
      new CreateQueueCommand({
        QueueName: 'with-redrive',
        Attributes: { VisibilityTimeout: '0', RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount: 2 }) },
      }),
    );
    await client.send(new SendMessageCommand({ QueueUrl, MessageBody: 'poison' }));
    const counts: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { Messages = [] } = await client.send(new ReceiveMessageCommand({ QueueUrl, MessageSystemAttributeNames: ['ApproximateReceiveCount'] }));
      counts.push(...Messages.map((m) => m.Attributes!['ApproximateReceiveCount']!));
    }
    expect(counts).toEqual(['1', '2']);
    expect(dlq.list().map((m) => m.body)).toEqual(['poison']);
    const attributes = await client.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['All'] }));
    expect(attributes.Attributes!['ApproximateNumberOfMessages']).toBe('0');
  });

  it('answers errors in the shapes the SDK maps to its typed exceptions', async () => {
    const missing = await failure(client.send(new ReceiveMessageCommand({ QueueUrl: `${sqs.url}/000000000000/nope` })));
    expect(missing.name).toBe('QueueDoesNotExist');
    expect(missing.$metadata.httpStatusCode).toBe(400);
    const bad = await failure(client.send(new DeleteMessageCommand({ QueueUrl: queue.url, ReceiptHandle: 'garbage' })));
    expect(bad.name).toBe('ReceiptHandleIsInvalid');
    const range = await failure(client.send(new ReceiveMessageCommand({ QueueUrl: queue.url, WaitTimeSeconds: 21 })));
    expect(range.name).toBe('InvalidParameterValue');
    const empty = await failure(client.send(new DeleteMessageBatchCommand({ QueueUrl: queue.url, Entries: [] })));
    expect(empty.name).toBe('EmptyBatchRequest');
  });

  it('injected faults: throttling, 5xx and a dropped connection are each retried by the SDK and then succeed', async () => {
    const retrying = new SQSClient(clientConfig(4));
    try {
      queue.send('m');
      sqs.faults.throttle(1, { service: 'sqs', action: 'ReceiveMessage' });
      sqs.faults.unavailable(1, { service: 'sqs', action: 'ReceiveMessage' });
      sqs.faults.dropConnection(1, { service: 'sqs', action: 'ReceiveMessage' });
      const { Messages = [] } = await retrying.send(new ReceiveMessageCommand({ QueueUrl: queue.url }));
      expect(Messages.map((m) => m.Body)).toEqual(['m']);
      expect(sqs.callsTo('ReceiveMessage').map((c) => c.errorCode)).toEqual(['RequestThrottled', 'ServiceUnavailable', 'drop-connection', undefined]);
    } finally {
      retrying.destroy();
    }
  });

  it('noAnswer: the call is taken and never answered; only the client\'s own timeout ends it, and the next call is served', async () => {
    const bounded = new SQSClient({ ...clientConfig(1), requestHandler: { requestTimeout: 200, throwOnRequestTimeout: true } });
    try {
      sqs.faults.noAnswer(1, { service: 'sqs', action: 'DeleteMessage' });
      const err = await failure(bounded.send(new DeleteMessageCommand({ QueueUrl: queue.url, ReceiptHandle: 'h' })));
      expect(err.name).toBe('TimeoutError');
      expect(sqs.callsTo('DeleteMessage').map((c) => c.errorCode)).toEqual(['no-answer']);
      await bounded.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: 'x' }));
      expect(queue.list()).toHaveLength(1);
    } finally {
      bounded.destroy();
    }
  });

  it('latency delays every call; maxConcurrent tells how many calls of an action were served at once', async () => {
    // Long beside the gap between three sends started together, even on a busy machine.
    sqs.latency.set(300);
    await Promise.all([1, 2, 3].map((n) => client.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: `m${n}` }))));
    await client.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: 'm4' }));
    expect(sqs.maxConcurrent('SendMessage')).toBe(3);
    expect(sqs.maxConcurrent('ReceiveMessage')).toBe(0);
    expect(queue.list()).toHaveLength(4);
  });

  it('a throttled call with no retries left fails with RequestThrottled (HTTP 403), as SQS models it', async () => {
    sqs.faults.throttle(1, { service: 'sqs' });
    const err = await failure(client.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: 'x' })));
    expect(err.name).toBe('RequestThrottled');
    expect(err.$metadata.httpStatusCode).toBe(403);
    expect(queue.list()).toEqual([]);
  });

  it('close() ends a pending long poll instead of waiting it out', async () => {
    const pending = receive({ WaitTimeSeconds: 20 }).catch((err: unknown) => err);
    // The receive at the stand-in (counted on arrival), not 100 ms that a loaded machine may spend before sending it.
    await expect.poll(() => sqs.maxConcurrent('ReceiveMessage'), { timeout: 5_000 }).toBe(1);
    const started = Date.now();
    await sqs.close();
    await pending;
    expect(Date.now() - started).toBeLessThan(2_000);
    sqs = await startSqsStandIn();
  });
});
