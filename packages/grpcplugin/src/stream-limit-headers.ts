import { Metadata } from '@grpc/grpc-js';

/**
 * The response headers in which `serve()` tells a `HandleStream`'s client, as the stream opens, the largest message it
 * reads (its `maxReceiveMessageBytes`) and how many of the stream's calls it runs at once (`maxConcurrentCallsPerStream`).
 * The client puts no more calls in one message than the first allows (gRPC ends a stream whole for one message over the
 * limit, and with it every call the plugin was running for it), and keeps no more calls written and unanswered than
 * the second: a call beyond it would wait unread in the plugin, its deadline counted only from when it is read, and
 * could run after the client had given it up and core had tried it again.
 */
const RECEIVE_LIMIT_HEADER = 'hollowtrees-max-receive-message-bytes';
/** See {@link RECEIVE_LIMIT_HEADER}. */
const CALL_LIMIT_HEADER = 'hollowtrees-max-concurrent-calls';

/** What a plugin announces of a stream; each absent when it announces none (a plugin not built with this SDK). */
export interface StreamLimitHeaders {
  /** The largest message the plugin reads, in bytes. */
  receiveBytes?: number;
  /** The calls of the stream the plugin runs at once. */
  calls?: number;
}

/** A limit worth announcing: a positive whole number (grpc-js writes -1 for no message limit). */
const isLimit = (value: number | undefined): value is number => value !== undefined && Number.isSafeInteger(value) && value > 0;

/** The headers that announce `limits`; none for what has no limit. */
export function streamLimitHeaders({ receiveBytes, calls }: StreamLimitHeaders): Metadata {
  const headers = new Metadata();
  if (isLimit(receiveBytes)) headers.set(RECEIVE_LIMIT_HEADER, String(receiveBytes));
  if (isLimit(calls)) headers.set(CALL_LIMIT_HEADER, String(calls));
  return headers;
}

/** The limits `headers` announce. */
export function announcedStreamLimits(headers: Metadata): StreamLimitHeaders {
  const read = (name: string): number | undefined => {
    const [value] = headers.get(name);
    const limit = typeof value === 'string' ? Number(value) : undefined;
    return isLimit(limit) ? limit : undefined;
  };
  const receiveBytes = read(RECEIVE_LIMIT_HEADER);
  const calls = read(CALL_LIMIT_HEADER);
  return { ...(receiveBytes !== undefined && { receiveBytes }), ...(calls !== undefined && { calls }) };
}
