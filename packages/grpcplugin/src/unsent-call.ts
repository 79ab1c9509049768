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
