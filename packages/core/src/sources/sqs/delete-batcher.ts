import { DeleteMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { CoalescingBatcher } from '@hollowtrees/grpcplugin';
import { SQS_MAX_BATCH } from './sqs-limits.js';

/** How long a delete waits for others to share its call: short beside a run, long beside a loopback call. */
const LINGER_MS = 5;

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
  private readonly batcher: CoalescingBatcher<string, void>;

  constructor(client: SQSClient, queueUrl: string) {
    this.batcher = new CoalescingBatcher<string, void>(async (handles) => {
      const entries = handles.map((handle, i) => ({ Id: String(i), ReceiptHandle: handle }));
      const { Failed = [] } = await client.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }));
      const failed = new Map(Failed.map((f) => [f.Id, f]));
      return new Map(handles.map((handle, i) => {
        const entry = failed.get(String(i));
        return [handle, entry ? new DeleteEntryFailed(entry.Code ?? 'Unknown', entry.Message ?? '') : undefined];
      }));
    }, { windowMs: LINGER_MS, maxBatch: SQS_MAX_BATCH });
  }

  /** Resolves once SQS deleted the message; rejects with the call's error or {@link DeleteEntryFailed}. */
  delete(handle: string): Promise<void> {
    return this.batcher.get(handle);
  }
}
