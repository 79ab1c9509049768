import { ChangeMessageVisibilityBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Logger } from 'pino';
import { SQS_MAX_BATCH } from './sqs-limits.js';


/**
 * Keeps the messages whose runs are in progress hidden: every third of the
 * visibility timeout it sets each one's timeout again from now, so a drain
 * longer than the timeout is never handed to another poller mid-run. Two
 * missed extensions in a row (SQS unreachable) are needed before one lapses.
 */
export class VisibilityKeeper {
  private readonly held = new Set<string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
    private readonly visibilityTimeoutMs: number,
    private readonly logger: Logger,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Keeps the message of this receipt handle hidden until {@link release}. */
  hold(receiptHandle: string): void {
    this.held.add(receiptHandle);
    this.timer ??= setInterval(() => void this.extend(), Math.max(100, Math.floor(this.visibilityTimeoutMs / 3)));
  }

  /** Keeps the message hidden under `newer`, the handle of its latest receive, if it was held under `older`. */
  replace(older: string, newer: string): void {
    if (!this.held.delete(older)) return;
    this.held.add(newer);
  }

  release(receiptHandle: string): void {
    this.held.delete(receiptHandle);
    if (this.held.size === 0) this.stop();
  }

  /** Stops extending: the messages still held become visible when their timeout runs out. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async extend(): Promise<void> {
    const handles = [...this.held];
    const seconds = this.visibilityTimeoutMs / 1000;
    for (let i = 0; i < handles.length; i += SQS_MAX_BATCH) {
      const entries = handles.slice(i, i + SQS_MAX_BATCH).map((ReceiptHandle, n) => ({ Id: String(n), ReceiptHandle, VisibilityTimeout: seconds }));
      try {
        const { Failed = [] } = await this.client.send(new ChangeMessageVisibilityBatchCommand({ QueueUrl: this.queueUrl, Entries: entries }));
        // A handle SQS refuses was released meanwhile (deleted) or has lapsed; either way nothing more can be done for it.
        for (const failed of Failed) {
          const handle = entries[Number(failed.Id)]?.ReceiptHandle;
          if (handle && this.held.has(handle)) this.logger.warn({ queue: this.queueUrl, code: failed.Code, message: failed.Message }, 'could not extend the visibility of a message in progress');
        }
      } catch (err) {
        this.onError(err);
        this.logger.warn({ err, queue: this.queueUrl }, 'could not extend the visibility of messages in progress; trying again');
      }
    }
  }
}
