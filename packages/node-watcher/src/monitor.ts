import type { CloudName, InstanceIdentity, Notice } from './notice.js';
import type { StateFileError } from './occurrence-file.js';

/** Told of the notices each read found, and of every failed metadata request (counted, then retried). */
export interface MonitorSink {
  /**
   * The whole list of notices one part of the metadata service (`part`: an IMDS path, a Google
   * Cloud value, Azure's events) shows now, after a read of it that succeeded: a notice it no
   * longer lists is forgotten, so that it is sent again if it comes back. Never called for a read
   * that failed or timed out, which says nothing about what is listed.
   */
  notices(part: string, found: readonly Notice[]): void;
  /** A poll was made (one per check, or per hanging GET answered). */
  polled(): void;
  metadataError(err: Error): void;
  /** The `--state-file` could not be read or written (Google Cloud): the watch goes on with what it holds in memory. */
  stateFileError(err: StateFileError): void;
}

/** One cloud's metadata service, watched for notices. */
export interface Monitor {
  readonly cloud: CloudName;
  /** Reads who this instance is; throws {@link MetadataError} when the service does not answer. */
  identity(signal: AbortSignal): Promise<InstanceIdentity>;
  /** Checks once and returns the notices pending now; throws {@link PartialCheckError} when only part of it could be read. */
  check(identity: InstanceIdentity, signal: AbortSignal): Promise<Notice[]>;
  /** Watches until `signal` aborts, reporting to `sink`; never rejects for a metadata error. */
  watch(identity: InstanceIdentity, sink: MonitorSink, signal: AbortSignal): Promise<void>;
}

/**
 * A check some of whose parts (IMDS paths, Google Cloud values) could not be read: `found` holds
 * what the others showed, which is to be sent all the same. Its message is the first failure's.
 */
export class PartialCheckError extends Error {
  override readonly name = 'PartialCheckError';
  constructor(
    readonly failure: Error,
    readonly found: readonly Notice[],
  ) {
    super(failure.message, { cause: failure });
  }
}

/** The notices of the parts of a check that were read, the first failure of the others, and whether any part was read. */
export function settleParts(results: ReadonlyArray<PromiseSettledResult<readonly Notice[]>>): { notices: Notice[]; failed: Error | undefined; answered: boolean } {
  const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  const reason: unknown = rejected?.reason;
  return {
    notices: results.flatMap((r) => (r.status === 'fulfilled' ? r.value : [])),
    failed: rejected && (reason instanceof Error ? reason : new Error(String(reason))),
    answered: results.some((r) => r.status === 'fulfilled'),
  };
}
