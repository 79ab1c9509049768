import { DeleteMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';

/** SQS takes at most this many entries per batch call. */
const BATCH = 10;
/** How long a delete waits for others to share its call: short beside a run, long beside a loopback call. */
const LINGER_MS = 5;

interface Pending {
  readonly handle: string;
  resolve(): void;
  reject(err: Error): void;
}

/** One entry of a batch that SQS refused. */
export class DeleteEntryFailed extends Error {
  override readonly name = 'DeleteEntryFailed';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

/**
 * Deletes messages in `DeleteMessageBatch` calls of up to 10: in a wave every
 * message ends at about the same time, and one call per message would queue
 * behind the SDK's sockets and cost a signature each.
 */
export class DeleteBatcher {
  private pending: Pending[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
  ) {}

  /** Resolves once SQS deleted the message; rejects with the call's error or {@link DeleteEntryFailed}. */
  delete(handle: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ handle, resolve, reject });
      if (this.pending.length >= BATCH) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), LINGER_MS);
    });
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending.splice(0, BATCH);
    if (this.pending.length > 0) this.timer = setTimeout(() => this.flush(), 0);
    if (batch.length === 0) return;
    const entries = batch.map((p, i) => ({ Id: String(i), ReceiptHandle: p.handle }));
    this.client.send(new DeleteMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: entries })).then(
      ({ Failed = [] }) => {
        const failed = new Map(Failed.map((f) => [f.Id, f]));
        batch.forEach((p, i) => {
          const entry = failed.get(String(i));
          if (entry) p.reject(new DeleteEntryFailed(entry.Code ?? 'Unknown', entry.Message ?? ''));
          else p.resolve();
        });
      },
      (err: Error) => {
        for (const p of batch) p.reject(err);
      },
    );
  }
}
