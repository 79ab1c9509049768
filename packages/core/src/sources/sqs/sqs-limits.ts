/** SQS takes at most this many entries per batch call (DeleteMessageBatch, ChangeMessageVisibilityBatch). */
export const SQS_MAX_BATCH = 10;
