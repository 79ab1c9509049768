import { Code, PluginError } from '@hollowtrees/grpcplugin';

/**
 * Thrown when the deadline came before every pod was evicted. Its code is
 * DEADLINE_EXCEEDED, which core retries and, once retries run out, fails the
 * run, so the next re-send of the signal drains again. Over gRPC only the code
 * and the message (which spells out the counts) travel; in-process callers also
 * get the attributes.
 */
export class DrainIncompleteError extends PluginError {
  constructor(
    message: string,
    /** `node`, `pods_evicted`, `pods_remaining`, `duration_ms`, as a successful drain returns them. */
    readonly attributes: Readonly<Record<string, string>>,
  ) {
    super(Code.DeadlineExceeded, message);
  }
}
