import { status, type StatusObject } from '@grpc/grpc-js';
import { Code, PluginError } from './errors.js';

/** Failures of calls of which nothing left the client. */
const unsent = new WeakSet<PluginError>();

/**
 * Marks `err` as the failure of a call the plugin cannot have received: {@link PluginClient}
 * may send that call again within its deadline. Any other failure goes back to the caller,
 * whose retry policy and attempt numbers decide.
 */
export function unsentFailure(err: PluginError): PluginError {
  unsent.add(err);
  return err;
}

/** True for an error {@link unsentFailure} marked. */
export function isUnsentFailure(err: unknown): boolean {
  return typeof err === 'object' && err !== null && unsent.has(err as PluginError);
}

/** The failure of a call made after `close()`, or before it but not yet written: it never left, and never will. */
export function closedBeforeSent(): PluginError {
  return new PluginError(Code.Canceled, 'the client was closed before the call was sent');
}

/** grpc-js' details for a call the server reset with REFUSED_STREAM; its status carries no more than code and details. */
const REFUSED_STREAM_DETAILS = 'Stream refused by server';

/**
 * True for a call the plugin's HTTP/2 layer refused unprocessed (REFUSED_STREAM, as it goes away: GOAWAY in a rolling
 * update), which HTTP/2 promises never reached the plugin. A client that may use the stream has no retry buffer, so
 * grpc-js no longer retries such a call itself: the client sends it again as the same attempt.
 */
export function refusedUnprocessed(end: Pick<StatusObject, 'code' | 'details'>): boolean {
  return end.code === status.UNAVAILABLE && end.details === REFUSED_STREAM_DETAILS;
}
