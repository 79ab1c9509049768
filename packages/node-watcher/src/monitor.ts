import type { CloudName, InstanceIdentity, Notice } from './notice.js';

/** Told of every notice a check found, and of every failed metadata request (counted, then retried). */
export interface MonitorSink {
  notices(found: readonly Notice[]): void;
  /** A poll was made (one per check, or per hanging GET answered). */
  polled(): void;
  metadataError(err: Error): void;
}

/** One cloud's metadata service, watched for notices. */
export interface Monitor {
  readonly cloud: CloudName;
  /** Reads who this instance is; throws {@link MetadataError} when the service does not answer. */
  identity(signal: AbortSignal): Promise<InstanceIdentity>;
  /** Checks once and returns the notices pending now. */
  check(identity: InstanceIdentity, signal: AbortSignal): Promise<Notice[]>;
  /** Watches until `signal` aborts, reporting to `sink`; never rejects for a metadata error. */
  watch(identity: InstanceIdentity, sink: MonitorSink, signal: AbortSignal): Promise<void>;
}
