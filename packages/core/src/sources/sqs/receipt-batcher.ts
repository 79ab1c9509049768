import type { BatchResultErrorEntry } from '@aws-sdk/client-sqs';
import { CoalescingBatcher } from '@hollowtrees/grpcplugin/without-grpc';
import { SQS_MAX_BATCH } from './sqs-limits.js';

/** How long a call waits for others to share it: short beside a run, long beside a loopback call. */
const LINGER_MS = 5;

/** One entry of a batch that SQS refused. */
export class BatchEntryFailed extends Error {
  override readonly name = 'BatchEntryFailed';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

/** One batch call of SQS on receipt handles (`DeleteMessageBatch`, `ChangeMessageVisibilityBatch`): its entries in, its refusals out. */
export type ReceiptBatchCall = (entries: Array<{ Id: string; ReceiptHandle: string }>) => Promise<{ Failed?: BatchResultErrorEntry[] | undefined }>;

/**
 * Sends one action on receipt handles in batch calls of up to 10: in a wave
 * every message ends at about the same time, and one call per message would
 * queue behind the SDK's sockets and cost a signature each.
 */
export class ReceiptBatcher {
  private readonly batcher: CoalescingBatcher<string, void>;

  constructor(call: ReceiptBatchCall) {
    this.batcher = new CoalescingBatcher<string, void>(async (handles) => {
      const { Failed = [] } = await call(handles.map((handle, i) => ({ Id: String(i), ReceiptHandle: handle })));
      const failed = new Map(Failed.map((f) => [f.Id, f]));
      return new Map(handles.map((handle, i) => {
        const entry = failed.get(String(i));
        return [handle, entry ? new BatchEntryFailed(entry.Code ?? 'Unknown', entry.Message ?? '') : undefined];
      }));
    }, { windowMs: LINGER_MS, maxBatch: SQS_MAX_BATCH });
  }

  /** Resolves once SQS did it for this handle; rejects with the call's error or {@link BatchEntryFailed}. */
  send(handle: string): Promise<void> {
    return this.batcher.get(handle);
  }
}
