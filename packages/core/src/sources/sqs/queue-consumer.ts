import { DeleteMessageCommand, ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { Logger } from 'pino';
import type { Clock } from '../../clock.js';
import type { SqsQueueConfig } from '../../config/schema.js';
import { combineVerdicts, dispatchForVerdict, type SettlingSink, type Verdict } from './event-verdict.js';
import { noticeToEvents } from './notice-to-events.js';
import type { SqsMetrics } from './sqs-metrics.js';
import { VisibilityKeeper } from './visibility-keeper.js';

/** The status API's view of one queue. */
export interface QueueStatus {
  queue: string;
  url: string;
  /** `receiving`, `backing_off` after a failed receive, `stopped`. */
  state: 'receiving' | 'backing_off' | 'stopped';
  inFlight: number;
  received: number;
  deleted: number;
  /** Messages left for a redelivery (a run failed, a flow had no room). */
  left: number;
  lastReceiveAt?: string;
  lastError?: { at: string; message: string };
}

/** Waits after a failed receive: 1 s, doubling to 30 s. */
const FIRST_BACKOFF_MS = 1_000;
const MAX_BACKOFF_MS = 30_000;

/** The queue's name: the last segment of its URL, as in every SQS URL. */
export function queueName(url: string): string {
  return url.slice(url.replace(/\/+$/, '').lastIndexOf('/') + 1).replace(/\/+$/, '');
}

/**
 * One queue: its pollers long-poll for messages, each message becomes events
 * handed to the flows, stays hidden while their runs are in progress, and is
 * deleted only when {@link dispatchForVerdict} says so; otherwise it is left
 * for SQS to hand out again once its visibility timeout runs out.
 */
export class QueueConsumer {
  readonly name: string;
  private readonly keeper: VisibilityKeeper;
  private readonly stopping = new AbortController();
  private readonly pollers: Promise<void>[] = [];
  private readonly inProgress = new Set<Promise<void>>();
  /** Pollers waiting for a message in progress to end (maxInFlight reached). */
  private readonly waitingForRoom = new Set<() => void>();
  private counts = { received: 0, deleted: 0, left: 0 };
  private state: QueueStatus['state'] = 'receiving';
  private lastReceiveAt: number | undefined;
  private lastError: { at: number; message: string } | undefined;

  constructor(
    private readonly config: SqsQueueConfig,
    private readonly region: string,
    private readonly client: SQSClient,
    private readonly sink: SettlingSink,
    private readonly metrics: SqsMetrics,
    private readonly logger: Logger,
    private readonly clock: Clock,
  ) {
    this.name = queueName(config.url);
    this.keeper = new VisibilityKeeper(client, config.url, config.visibilityTimeout, logger, (err) => this.failed('ChangeMessageVisibilityBatch', err));
    metrics.initQueue(this.name);
  }

  start(): void {
    for (let i = 0; i < this.config.pollers; i++) this.pollers.push(this.poll());
  }

  /** Stops receiving; messages in progress go on until {@link close}. */
  async stopReceiving(): Promise<void> {
    this.stopping.abort();
    this.wakePollers();
    await Promise.all(this.pollers);
    this.state = 'stopped';
  }

  /**
   * Stops receiving and waits up to `graceMs` for messages in progress to be
   * deleted or left; the rest stop being extended and reappear on the queue
   * after their visibility timeout, for this or another replica.
   */
  async close(graceMs: number): Promise<void> {
    await this.stopReceiving();
    const grace = new AbortController();
    await Promise.race([Promise.all(this.inProgress), this.clock.sleep(graceMs, grace.signal).catch(() => {})]);
    grace.abort();
    this.keeper.stop();
  }

  status(): QueueStatus {
    return {
      queue: this.name,
      url: this.config.url,
      state: this.state,
      inFlight: this.inProgress.size,
      ...this.counts,
      ...(this.lastReceiveAt === undefined ? {} : { lastReceiveAt: new Date(this.lastReceiveAt).toISOString() }),
      ...(this.lastError ? { lastError: { at: new Date(this.lastError.at).toISOString(), message: this.lastError.message } } : {}),
    };
  }

  private async poll(): Promise<void> {
    let backoff = FIRST_BACKOFF_MS;
    const signal = this.stopping.signal;
    while (!signal.aborted) {
      const room = this.config.maxInFlight - this.inProgress.size;
      if (room <= 0) {
        await new Promise<void>((resolve) => this.waitingForRoom.add(resolve));
        continue;
      }
      let messages: Message[];
      try {
        const answer = await this.client.send(
          new ReceiveMessageCommand({
            QueueUrl: this.config.url,
            MaxNumberOfMessages: Math.min(this.config.batchSize, room),
            WaitTimeSeconds: this.config.waitTimeSeconds,
            VisibilityTimeout: this.config.visibilityTimeout / 1000,
            MessageSystemAttributeNames: ['ApproximateReceiveCount'],
          }),
          { abortSignal: signal },
        );
        messages = answer.Messages ?? [];
        backoff = FIRST_BACKOFF_MS;
        this.state = 'receiving';
      } catch (err) {
        if (signal.aborted) break;
        this.failed('ReceiveMessage', err);
        this.logger.error({ err, queue: this.name, retryInMs: backoff }, 'could not receive from the SQS queue; trying again');
        this.state = 'backing_off';
        await this.clock.sleep(backoff, signal).catch(() => {});
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
        continue;
      }
      const receivedAt = this.clock.now();
      this.lastReceiveAt = receivedAt;
      for (const message of messages) this.track(this.handle(message, receivedAt));
    }
  }

  private track(work: Promise<void>): void {
    this.inProgress.add(work);
    this.metrics.inFlight.set({ queue: this.name }, this.inProgress.size);
    void work.finally(() => {
      this.inProgress.delete(work);
      this.metrics.inFlight.set({ queue: this.name }, this.inProgress.size);
      this.wakePollers();
    });
  }

  private wakePollers(): void {
    for (const wake of this.waitingForRoom) wake();
    this.waitingForRoom.clear();
  }

  private async handle(message: Message, receivedAt: number): Promise<void> {
    const labels = { queue: this.name };
    const fields = { queue: this.name, messageId: message.MessageId };
    this.counts.received++;
    this.metrics.received.inc(labels);
    const receiveCount = Number(message.Attributes?.['ApproximateReceiveCount'] ?? '1');
    if (receiveCount > 1) this.metrics.redelivered.inc(labels);
    const handle = message.ReceiptHandle;
    if (!handle) return;

    const outcome = noticeToEvents(message.Body ?? '', { region: this.region });
    let verdict: Verdict;
    if (outcome.kind === 'unprocessable') {
      this.metrics.parseFailures.inc(labels);
      this.logger.error({ ...fields, receiveCount, reason: outcome.reason }, 'SQS message is not a notice Hollowtrees can read; deleting it');
      verdict = { action: 'delete', reason: 'unprocessable' };
    } else if (outcome.kind === 'ignored') {
      this.logger.info({ ...fields, reason: outcome.reason }, 'SQS message needs no action; deleting it');
      verdict = { action: 'delete', reason: 'ignored' };
    } else {
      this.keeper.hold(handle);
      try {
        const progress = outcome.events.map((event) => dispatchForVerdict(this.sink, event, receivedAt));
        verdict = combineVerdicts(await Promise.all(progress.map((p) => p.verdict)));
        const firstCalls = progress.map((p) => p.firstCallAt()).filter((t): t is number => t !== undefined);
        if (firstCalls.length > 0) this.metrics.receiveToFirstCall.observe(labels, (Math.min(...firstCalls) - receivedAt) / 1000);
      } finally {
        this.keeper.release(handle);
      }
    }
    if (verdict.action === 'leave') {
      this.counts.left++;
      this.metrics.left.inc(labels);
      this.logger.warn({ ...fields, receiveCount, why: verdict.why }, 'SQS message left on the queue; it is handed out again after its visibility timeout');
      return;
    }
    try {
      await this.client.send(new DeleteMessageCommand({ QueueUrl: this.config.url, ReceiptHandle: handle }));
      this.counts.deleted++;
      this.metrics.deleted.inc({ ...labels, reason: verdict.reason });
      if (verdict.reason === 'not_found') this.logger.warn({ ...fields, receiveCount }, 'a plugin does not know the instance of this notice (another cluster\'s, or gone); deleted the message');
    } catch (err) {
      // The message comes back after its visibility timeout; its group is then held, so it is deduplicated and deleted.
      this.failed('DeleteMessage', err);
      this.logger.error({ ...fields, err }, 'could not delete an SQS message that was acted on; it will be redelivered and deduplicated');
    }
  }

  private failed(action: string, err: unknown): void {
    this.metrics.apiErrors.inc({ queue: this.name, action });
    this.lastError = { at: this.clock.now(), message: `${action}: ${(err as Error).name}: ${(err as Error).message}` };
  }
}
