import { ChangeMessageVisibilityBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { forEachBounded } from '@hollowtrees/grpcplugin/without-grpc';
import type { Logger } from 'pino';
import { SQS_MAX_BATCH } from './sqs-limits.js';

/**
 * Extension calls in flight at once: a round for thousands of messages must end within a third of the
 * visibility timeout at real SQS latency (1,000 messages: 100 calls, 10 waves), without a burst SQS would throttle.
 */
const MAX_CONCURRENT_CALLS = 10;

/**
 * Keeps the messages whose runs are in progress hidden: every third of the
 * visibility timeout it sets each one's timeout again from now, so a drain
 * longer than the timeout is never handed to another poller mid-run. Two
 * missed extensions in a row (SQS unreachable) are needed before one lapses.
 */
export class VisibilityKeeper {
  /** The receipt handles held, each with its message's id for the log lines that name it. */
  private readonly held = new Map<string, string | undefined>();
  private timer: NodeJS.Timeout | undefined;
  /** The round of extensions in progress: rounds never overlap, so a slow SQS never gets more than {@link MAX_CONCURRENT_CALLS}. */
  private round: Promise<void> | undefined;
  /** A tick came while a round was in progress: the next round starts as soon as it ends. */
  private overdue = false;

  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
    private readonly visibilityTimeoutMs: number,
    /** Its lines name the queue as the source's do: a child logger with the queue's name bound as `queue`. */
    private readonly logger: Logger,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** How often every held message is extended. */
  get intervalMs(): number {
    return Math.max(100, Math.floor(this.visibilityTimeoutMs / 3));
  }

  /** Keeps the message of this receipt handle hidden until {@link release}. */
  hold(receiptHandle: string, messageId: string | undefined): void {
    this.held.set(receiptHandle, messageId);
    this.timer ??= setInterval(() => this.tick(), this.intervalMs);
  }

  /** Keeps the message hidden under `newer`, the handle of its latest receive, if it was held under `older`. */
  replace(older: string, newer: string): void {
    if (!this.held.has(older)) return;
    this.held.set(newer, this.held.get(older));
    this.held.delete(older);
  }

  release(receiptHandle: string): void {
    this.held.delete(receiptHandle);
    if (this.held.size === 0) this.stop();
  }

  /** Stops extending: the messages still held become visible when their timeout runs out. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.overdue = false;
  }

  private tick(): void {
    if (this.round) {
      this.overdue = true;
      return;
    }
    this.round = this.extendAll().finally(() => {
      this.round = undefined;
      if (!this.overdue || this.timer === undefined) return;
      this.overdue = false;
      this.tick();
    });
  }

  /**
   * One round: every held message's timeout set again from now, in batches of 10, {@link MAX_CONCURRENT_CALLS}
   * calls at a time. A round ends within one interval: a call still unanswered then is abandoned, and the next
   * round, not a retry of a stale one, is what keeps the messages hidden. Each batch goes to the end of the order
   * when its turn comes, so a round cut short is followed by one that starts with the batches it never reached:
   * under sustained slowness the same messages are not the ones left to lapse round after round.
   */
  private async extendAll(): Promise<void> {
    const handles = [...this.held.keys()];
    const batches: string[][] = [];
    for (let i = 0; i < handles.length; i += SQS_MAX_BATCH) batches.push(handles.slice(i, i + SQS_MAX_BATCH));
    const deadline = AbortSignal.timeout(this.intervalMs);
    let sent = 0;
    await forEachBounded(batches, MAX_CONCURRENT_CALLS, async (batch) => {
      if (deadline.aborted) return;
      sent += batch.length;
      // Only what is still held when its turn comes: a message released meanwhile may have been made visible
      // at once (a source stopping), and extended now it would be hidden again for a whole timeout.
      const stillHeld = batch.filter((handle) => this.held.has(handle));
      if (stillHeld.length === 0) return;
      for (const handle of stillHeld) this.moveToEnd(handle);
      await this.extend(stillHeld, deadline);
    });
    const skipped = handles.length - sent;
    if (skipped > 0) this.logger.warn({ skipped, held: handles.length, intervalMs: this.intervalMs }, 'a round of visibility extensions did not end within a third of the visibility timeout; the next round starts now');
  }

  /** Puts a held handle last in {@link held}'s order (a Map keeps insertion order): extended last next round. */
  private moveToEnd(handle: string): void {
    const messageId = this.held.get(handle);
    this.held.delete(handle);
    this.held.set(handle, messageId);
  }

  private async extend(batch: readonly string[], deadline: AbortSignal): Promise<void> {
    const entries = batch.map((ReceiptHandle, n) => ({ Id: String(n), ReceiptHandle, VisibilityTimeout: this.visibilityTimeoutMs / 1000 }));
    try {
      const { Failed = [] } = await this.client.send(new ChangeMessageVisibilityBatchCommand({ QueueUrl: this.queueUrl, Entries: entries }), { abortSignal: deadline });
      // A handle SQS refuses was released meanwhile (deleted), has lapsed, or reached SQS's cap (12 hours from its
      // receive): the message is handed out again, and its run goes on under the new handle (SqsQueueSource.handle).
      for (const failed of Failed) {
        const handle = entries[Number(failed.Id)]?.ReceiptHandle;
        if (handle && this.held.has(handle)) {
          this.logger.warn({ messageId: this.held.get(handle), code: failed.Code, reason: failed.Message }, 'SQS refused to extend the visibility of a message in progress; it will be handed out again, and its run goes on');
        }
      }
    } catch (err) {
      this.onError(err);
      this.logger.warn({ err }, 'could not extend the visibility of messages in progress; trying again');
    }
  }
}
