import { Metadata } from '@grpc/grpc-js';

/**
 * The response header in which `serve()` tells a `HandleStream`'s client the largest message it
 * reads (its `maxReceiveMessageBytes`), sent as the stream opens. The client puts no more calls
 * in one message than that: gRPC ends a stream whole for one message over the limit, and with it
 * every call the plugin was running for it.
 */
const RECEIVE_LIMIT_HEADER = 'hollowtrees-max-receive-message-bytes';

/** A limit worth announcing: a positive whole number of bytes (grpc-js writes -1 for none). */
const isLimit = (bytes: number): boolean => Number.isSafeInteger(bytes) && bytes > 0;

/** The headers that announce `bytes`; none for no limit (grpc-js' -1). */
export function receiveLimitHeaders(bytes: number): Metadata {
  const headers = new Metadata();
  if (isLimit(bytes)) headers.set(RECEIVE_LIMIT_HEADER, String(bytes));
  return headers;
}

/** The limit `headers` announce, or undefined when they announce none (a plugin not built with this SDK). */
export function announcedReceiveLimit(headers: Metadata): number | undefined {
  const [value] = headers.get(RECEIVE_LIMIT_HEADER);
  const bytes = typeof value === 'string' ? Number(value) : Number.NaN;
  return isLimit(bytes) ? bytes : undefined;
}
