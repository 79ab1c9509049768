import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { CallLatency } from '../call-latency.js';
import { closeServer, listenOnEphemeralPort, wallClockMs } from '../listen.js';
import { AwsApiError } from './aws-api-error.js';
import { AwsFaults, type AwsCall } from './query-server.js';
import { readRequestBody } from './request-body.js';
import { SqsQueue, type SqsMessage } from './sqs-queue.js';

export { SqsQueue, md5Hex, type RedrivePolicy, type SqsMessage } from './sqs-queue.js';

/** The account id in every queue URL and ARN. */
const ACCOUNT = '000000000000';
const REGION = 'us-east-1';
const JSON_CONTENT_TYPE = 'application/x-amz-json-1.0';

/** Options for {@link startSqsStandIn}. */
export interface SqsStandInOptions {
  /** Address to bind. Default `127.0.0.1`. */
  host?: string;
  /** Milliseconds since the epoch, for visibility timeouts and timestamps. Default `Date.now`. */
  now?: () => number;
  /** Delay added to every call before it is served, as a real round trip would. Default 0. */
  latencyMs?: number;
}

/** Attributes of {@link SqsStandIn.createQueue}, as SQS's `CreateQueue` takes them. */
export interface SqsQueueOptions {
  /** Seconds a received message stays hidden. Default 30. */
  visibilityTimeoutSeconds?: number;
  /** After this many receives a message moves to `deadLetterQueue`. */
  redrive?: { deadLetterQueue: SqsQueue; maxReceiveCount: number };
}

/** A running SQS stand-in. */
export interface SqsStandIn {
  /** `http://127.0.0.1:<port>`: the SQS client's `endpoint`. */
  readonly url: string;
  /** Errors or dropped connections to answer the next calls with (service `sqs`). */
  readonly faults: AwsFaults;
  /** The delay every call waits before it is served; changeable while running. */
  readonly latency: CallLatency;
  /** The most calls of one action that were being served at once (from arrival to answer, or to the client giving up). */
  maxConcurrent(action: string): number;
  /** Every call received, in order, failed ones included; `params` holds the JSON body's top-level strings and numbers. */
  readonly calls: readonly AwsCall[];
  /** The calls of one action, e.g. `DeleteMessageBatch`, in order. */
  callsTo(action: string): AwsCall[];
  /** Creates a queue (or returns the existing one of that name), as `CreateQueue` does. */
  createQueue(name: string, options?: SqsQueueOptions): SqsQueue;
  queue(name: string): SqsQueue | undefined;
  close(): Promise<void>;
}

type JsonObject = Record<string, unknown>;
type SqsAction = (input: JsonObject, aborted: AbortSignal) => JsonObject | Promise<JsonObject>;

/** The model's name for an error code (`__type`) and the query-compatible code the SDK also reads (`x-amzn-query-error`). */
const QUERY_CODES: Readonly<Record<string, string>> = {
  QueueDoesNotExist: 'AWS.SimpleQueueService.NonExistentQueue',
  MessageNotInflight: 'AWS.SimpleQueueService.MessageNotInflight',
  EmptyBatchRequest: 'AWS.SimpleQueueService.EmptyBatchRequest',
  TooManyEntriesInBatchRequest: 'AWS.SimpleQueueService.TooManyEntriesInBatchRequest',
  BatchEntryIdsNotDistinct: 'AWS.SimpleQueueService.BatchEntryIdsNotDistinct',
};

const param = (name: string, problem: string): AwsApiError =>
  new AwsApiError('InvalidParameterValue', `Value for parameter ${name} is invalid. Reason: ${problem}`);

function stringField(input: JsonObject, name: string): string {
  const value = input[name];
  if (typeof value !== 'string' || value === '') throw new AwsApiError('MissingParameter', `The request must contain the parameter ${name}.`);
  return value;
}

/** An optional integer parameter within SQS's bounds, e.g. `WaitTimeSeconds` 0–20. */
function intField(input: JsonObject, name: string, min: number, max: number): number | undefined {
  const value = input[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw param(name, `must be an integer from ${min} to ${max}.`);
  }
  return value;
}

/** A batch's entries: 1 to 10, with distinct ids, as SQS checks them. */
function batchEntries(input: JsonObject): JsonObject[] {
  const entries = input['Entries'];
  if (!Array.isArray(entries) || entries.length === 0) throw new AwsApiError('EmptyBatchRequest', 'There should be at least one SendMessageBatchRequestEntry in the request.');
  if (entries.length > 10) throw new AwsApiError('TooManyEntriesInBatchRequest', `Maximum number of entries per request are 10. You have sent ${entries.length}.`);
  const ids = new Set(entries.map((e: JsonObject) => e['Id']));
  if (ids.size !== entries.length) throw new AwsApiError('BatchEntryIdsNotDistinct', 'Two or more batch entries in the request have the same Id.');
  return entries as JsonObject[];
}

/** Runs each batch entry alone; one entry's failure is reported in `Failed`, never fails the call. */
function eachEntry(input: JsonObject, act: (entry: JsonObject) => JsonObject): JsonObject {
  const Successful: JsonObject[] = [];
  const Failed: JsonObject[] = [];
  for (const entry of batchEntries(input)) {
    try {
      Successful.push({ Id: entry['Id'], ...act(entry) });
    } catch (err) {
      if (!(err instanceof AwsApiError)) throw err;
      Failed.push({ Id: entry['Id'], SenderFault: err.status < 500, Code: QUERY_CODES[err.code] ?? err.code, Message: err.message });
    }
  }
  return { Successful, Failed };
}

/** The system attributes of a received message the SDK may ask for. */
function messageAttributes(message: SqsMessage): Record<string, string> {
  return {
    ApproximateReceiveCount: String(message.receiveCount),
    SentTimestamp: String(message.sentAt),
    ApproximateFirstReceiveTimestamp: String(message.firstReceivedAt ?? message.sentAt),
    SenderId: 'AIDAEXAMPLE',
  };
}

/** The names a receive asked for: the current `MessageSystemAttributeNames` or the deprecated `AttributeNames`. */
function askedAttributes(input: JsonObject): Set<string> {
  const names = [input['MessageSystemAttributeNames'], input['AttributeNames']].flatMap((v) => (Array.isArray(v) ? (v as unknown[]) : []));
  return new Set(names.filter((n): n is string => typeof n === 'string'));
}

/**
 * Starts an SQS stand-in on an ephemeral port. It speaks what
 * `@aws-sdk/client-sqs` 3.x sends: AWS JSON 1.0 (`POST /`, `X-Amz-Target:
 * AmazonSQS.<Action>`, JSON bodies) in query-compatible mode, so errors carry
 * both the model's `__type` and the `x-amzn-query-error` code the SDK reads.
 * Received bodies carry a correct `MD5OfBody`, which the SDK checks.
 *
 * @example
 * ```ts
 * import { ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
 * import { startSqsStandIn } from '@hollowtrees/testkit';
 *
 * const sqs = await startSqsStandIn();
 * const queue = sqs.createQueue('interruptions', { visibilityTimeoutSeconds: 1 });
 * const client = new SQSClient({ region: 'us-east-1', endpoint: sqs.url, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
 * await client.send(new ReceiveMessageCommand({ QueueUrl: queue.url, WaitTimeSeconds: 1 }));
 * ```
 */
export async function startSqsStandIn(options: SqsStandInOptions = {}): Promise<SqsStandIn> {
  const host = options.host ?? '127.0.0.1';
  const now = options.now ?? Date.now;
  const faults = new AwsFaults();
  const latency = new CallLatency(options.latencyMs ?? 0);
  const calls: AwsCall[] = [];
  const serving = new Map<string, number>();
  const peaks = new Map<string, number>();
  const queues = new Map<string, SqsQueue>();
  let baseUrl = '';

  const queueByArn = (arn: string): SqsQueue | undefined => [...queues.values()].find((q) => q.arn === arn);
  const createQueue = (name: string, queueOptions: SqsQueueOptions = {}): SqsQueue => {
    let queue = queues.get(name);
    if (!queue) {
      queue = new SqsQueue(name, `${baseUrl}/${ACCOUNT}/${name}`, `arn:aws:sqs:${REGION}:${ACCOUNT}:${name}`, now, queueByArn);
      queues.set(name, queue);
    }
    if (queueOptions.visibilityTimeoutSeconds !== undefined) queue.visibilityTimeoutSeconds = queueOptions.visibilityTimeoutSeconds;
    if (queueOptions.redrive) {
      queue.redrivePolicy = { deadLetterTargetArn: queueOptions.redrive.deadLetterQueue.arn, maxReceiveCount: queueOptions.redrive.maxReceiveCount };
    }
    return queue;
  };
  /** The queue a `QueueUrl` names, by its last path segment, so `localhost` and `127.0.0.1` URLs both work. */
  const queueOf = (input: JsonObject): SqsQueue => {
    const url = stringField(input, 'QueueUrl');
    const queue = queues.get(url.slice(url.lastIndexOf('/') + 1));
    if (!queue) throw new AwsApiError('QueueDoesNotExist', 'The specified queue does not exist.');
    return queue;
  };
  const sendOne = (queue: SqsQueue, entry: JsonObject): JsonObject => {
    const message = queue.send(stringField(entry, 'MessageBody'), intField(entry, 'DelaySeconds', 0, 900));
    return { MessageId: message.messageId, MD5OfMessageBody: message.md5OfBody };
  };
  const receiptHandleOf = (entry: JsonObject): string => stringField(entry, 'ReceiptHandle');
  const visibilityOf = (entry: JsonObject): number => intField(entry, 'VisibilityTimeout', 0, 43_200) ?? 0;

  const actions: Readonly<Record<string, SqsAction>> = {
    CreateQueue: (input) => {
      const attributes = (input['Attributes'] ?? {}) as Record<string, string>;
      const visibility = attributes['VisibilityTimeout'];
      const redrive = attributes['RedrivePolicy'] ? (JSON.parse(attributes['RedrivePolicy']) as { deadLetterTargetArn: string; maxReceiveCount: number | string }) : undefined;
      const deadLetterQueue = redrive && queueByArn(redrive.deadLetterTargetArn);
      if (redrive && !deadLetterQueue) throw param('RedrivePolicy', 'Dead letter target does not exist.');
      const queue = createQueue(stringField(input, 'QueueName'), {
        ...(visibility === undefined ? {} : { visibilityTimeoutSeconds: Number(visibility) }),
        ...(redrive && deadLetterQueue ? { redrive: { deadLetterQueue, maxReceiveCount: Number(redrive.maxReceiveCount) } } : {}),
      });
      return { QueueUrl: queue.url };
    },
    GetQueueUrl: (input) => {
      const queue = queues.get(stringField(input, 'QueueName'));
      if (!queue) throw new AwsApiError('QueueDoesNotExist', 'The specified queue does not exist.');
      return { QueueUrl: queue.url };
    },
    GetQueueAttributes: (input) => {
      const queue = queueOf(input);
      return {
        Attributes: {
          QueueArn: queue.arn,
          VisibilityTimeout: String(queue.visibilityTimeoutSeconds),
          ApproximateNumberOfMessages: String(queue.visibleCount),
          ApproximateNumberOfMessagesNotVisible: String(queue.inFlightCount),
          ...(queue.redrivePolicy ? { RedrivePolicy: JSON.stringify(queue.redrivePolicy) } : {}),
        },
      };
    },
    SendMessage: (input) => sendOne(queueOf(input), input),
    SendMessageBatch: (input) => {
      const queue = queueOf(input);
      return eachEntry(input, (entry) => sendOne(queue, entry));
    },
    ReceiveMessage: async (input, aborted) => {
      const queue = queueOf(input);
      const max = intField(input, 'MaxNumberOfMessages', 1, 10) ?? 1;
      const wait = intField(input, 'WaitTimeSeconds', 0, 20) ?? 0;
      const visibility = intField(input, 'VisibilityTimeout', 0, 43_200);
      const asked = askedAttributes(input);
      const messages = await queue.receive(max, visibility, wait, aborted);
      return {
        Messages: messages.map((m) => {
          const all = messageAttributes(m);
          const attributes = Object.fromEntries(Object.entries(all).filter(([k]) => asked.has('All') || asked.has(k)));
          return {
            MessageId: m.messageId,
            ReceiptHandle: m.receiptHandle,
            MD5OfBody: m.md5OfBody,
            Body: m.body,
            ...(Object.keys(attributes).length > 0 ? { Attributes: attributes } : {}),
          };
        }),
      };
    },
    DeleteMessage: (input) => {
      queueOf(input).delete(receiptHandleOf(input));
      return {};
    },
    DeleteMessageBatch: (input) => {
      const queue = queueOf(input);
      return eachEntry(input, (entry) => {
        queue.delete(receiptHandleOf(entry));
        return {};
      });
    },
    ChangeMessageVisibility: (input) => {
      queueOf(input).changeVisibility(receiptHandleOf(input), visibilityOf(input));
      return {};
    },
    ChangeMessageVisibilityBatch: (input) => {
      const queue = queueOf(input);
      return eachEntry(input, (entry) => {
        queue.changeVisibility(receiptHandleOf(entry), visibilityOf(entry));
        return {};
      });
    },
    PurgeQueue: (input) => {
      queueOf(input).purge();
      return {};
    },
  };

  /** The body's scalar fields, for {@link AwsCall.params}. */
  const scalarParams = (input: JsonObject): Record<string, string> =>
    Object.fromEntries(Object.entries(input).flatMap(([k, v]) => (typeof v === 'string' || typeof v === 'number' ? [[k, String(v)]] : [])));

  const answer = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const requestId = randomUUID();
    const target = req.headers['x-amz-target'];
    const action = typeof target === 'string' && target.startsWith('AmazonSQS.') ? target.slice('AmazonSQS.'.length) : '';
    const text = await readRequestBody(req);
    let input: JsonObject = {};
    const record = (errorCode?: string): void => {
      calls.push({ service: 'sqs', action, params: scalarParams(input), ...(errorCode === undefined ? {} : { errorCode }), at: wallClockMs() });
    };
    // A client that gives up (or a stand-in that closes) ends the long poll.
    const gone = new AbortController();
    res.on('close', () => gone.abort());
    const now = (serving.get(action) ?? 0) + 1;
    serving.set(action, now);
    peaks.set(action, Math.max(peaks.get(action) ?? 0, now));
    res.on('close', () => serving.set(action, serving.get(action)! - 1));
    await latency.wait();
    try {
      if (req.method !== 'POST') throw new AwsApiError('InvalidHttpRequest', 'The stand-in accepts POST requests only.');
      try {
        const parsed: unknown = JSON.parse(text || '{}');
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
        input = parsed as JsonObject;
      } catch {
        throw new AwsApiError('SerializationException', 'Start of structure or map found where not expected.');
      }
      await faults.held('sqs', action);
      const fault = faults.take('sqs', action);
      if (fault === 'drop-connection' || fault === 'no-answer') {
        record(fault);
        if (fault === 'drop-connection') req.socket.destroy();
        return;
      }
      if (fault) throw fault;
      const handler = actions[action];
      if (!handler) throw new AwsApiError('InvalidAction', `The action ${action || '(none)'} is not valid for this endpoint.`);
      const output = await handler(input, gone.signal);
      record();
      await faults.held('sqs', action, 'answer');
      res.writeHead(200, { 'content-type': JSON_CONTENT_TYPE, 'x-amzn-requestid': requestId });
      res.end(JSON.stringify(output));
    } catch (err) {
      const apiError = err instanceof AwsApiError ? err : new AwsApiError('InternalFailure', String(err), 500);
      record(apiError.code);
      res.writeHead(apiError.status, {
        'content-type': JSON_CONTENT_TYPE,
        'x-amzn-requestid': requestId,
        'x-amzn-query-error': `${QUERY_CODES[apiError.code] ?? apiError.code};${apiError.status >= 500 ? 'Receiver' : 'Sender'}`,
      });
      res.end(JSON.stringify({ __type: `com.amazonaws.sqs#${apiError.code}`, message: apiError.message }));
    }
  };

  const server = createServer((req, res) => {
    answer(req, res).catch(() => res.destroy());
  });
  const port = await listenOnEphemeralPort(server, host);
  baseUrl = `http://${host}:${port}`;
  return {
    url: baseUrl,
    faults,
    latency,
    maxConcurrent: (action) => peaks.get(action) ?? 0,
    calls,
    callsTo: (action) => calls.filter((c) => c.action === action),
    createQueue,
    queue: (name) => queues.get(name),
    close: async () => {
      for (const queue of queues.values()) queue.close();
      await closeServer(server);
    },
  };
}
