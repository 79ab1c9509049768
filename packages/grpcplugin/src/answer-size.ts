import { Code, PluginError } from './errors.js';
import type { HandleResponse } from './gen/hollowtrees/plugin/v1/plugin.js';
import { failedResult, type ServedResult } from './served-stream-codec.js';

/**
 * The most a plugin writes in one message: 4 MiB, what gRPC clients of every language read by
 * default. A client that gets a larger message ends the call (on the stream: every call it
 * carries) with RESOURCE_EXHAUSTED, which core would retry although the plugin did the work.
 */
export const MAX_ANSWER_MESSAGE_BYTES = 4 * 1024 * 1024;

/** What a `StreamResult` adds around a response, and `HandleStreamResponse` around a result, at most. */
const RESULT_FRAMING_BYTES = 6 + 11 + 6;

/** The largest `HandleResponse` a plugin sends: one that fits in a message of its own on either transport. */
export const MAX_RESPONSE_BYTES = MAX_ANSWER_MESSAGE_BYTES - RESULT_FRAMING_BYTES;

const varintBytes = (n: number): number => (n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5);
/** A length-delimited field of `length` bytes, with a one-byte tag (every field number here is below 16). */
const fieldBytes = (length: number): number => 1 + varintBytes(length) + length;
const stringBytes = (s: string): number => fieldBytes(Buffer.byteLength(s, 'utf8'));

/** An upper bound of `response`'s encoded size: counted, not encoded, so checking it costs no second encode. */
export function responseBytes({ message, attributes }: HandleResponse): number {
  let bytes = 2 + stringBytes(message); // the status enum, then the message
  for (const key in attributes) bytes += fieldBytes(stringBytes(key) + stringBytes(attributes[key]!));
  return bytes;
}

/** An upper bound of what `result` takes as one element of `HandleStreamResponse.results`. */
function resultBytes({ outcome }: ServedResult): number {
  const inner = outcome?.$case === 'response' ? responseBytes(outcome.value) : outcome?.$case === 'status' ? 13 + stringBytes(outcome.value.message) : 0; // code (11), not_started (2), message
  return RESULT_FRAMING_BYTES + inner;
}

/** The error a call gets in place of an answer of `bytes` bytes, too large to send. */
export function answerTooLarge(bytes: number): PluginError {
  return new PluginError(Code.Internal, `the plugin's answer takes ${bytes} bytes, more than the ${MAX_RESPONSE_BYTES} one answer may take (4 MiB, what a gRPC client reads by default): shorten its message or attributes`);
}

/**
 * `results` as the messages that carry them, each within {@link MAX_ANSWER_MESSAGE_BYTES}, in
 * order. A result too large for a message of its own is replaced by an INTERNAL status saying
 * so: that call fails alone, for good, instead of ending the stream under every call on it.
 */
export function answerMessages(results: readonly ServedResult[]): ServedResult[][] {
  const messages: ServedResult[][] = [];
  let message: ServedResult[] = [];
  let size = 0;
  for (let result of results) {
    let bytes = resultBytes(result);
    if (bytes > MAX_ANSWER_MESSAGE_BYTES) {
      result = failedResult(result.callId, answerTooLarge(bytes - RESULT_FRAMING_BYTES));
      bytes = resultBytes(result);
    }
    if (size + bytes > MAX_ANSWER_MESSAGE_BYTES) {
      messages.push(message);
      message = [];
      size = 0;
    }
    message.push(result);
    size += bytes;
  }
  if (message.length > 0) messages.push(message);
  return messages;
}
