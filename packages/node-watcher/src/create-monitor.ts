import type { Backoff, Clock } from '@hollowtrees/grpcplugin';
import { AwsImdsMonitor } from './aws-imds.js';
import { AzureScheduledEventsMonitor, type AzureEventType } from './azure-scheduled-events.js';
import { GcpMetadataMonitor, type GcpMetadataOptions } from './gcp-metadata.js';
import type { Monitor } from './monitor.js';
import type { CloudName } from './notice.js';

/** What {@link createMonitor} needs; unset fields take each cloud's default. */
export interface MonitorSettings {
  cloud: CloudName;
  /** Default: the cloud's own metadata address. */
  metadataUrl?: string;
  /** Default 2 s on AWS, 1 s on Azure (what Azure asks for); Google Cloud's hanging GETs do not poll. */
  pollIntervalMs?: number;
  azureEventTypes?: readonly AzureEventType[];
  /** The running kernel's boot id, which Google Cloud's notice ids name (see {@link GcpMetadataOptions.bootId}). */
  bootId?: string;
  /** Where Google Cloud keeps its occurrences (see {@link GcpMetadataOptions.stateFile}). */
  stateFile?: string;
  backoff: Backoff;
  clock: Clock;
}

/** The monitor of one cloud. */
export function createMonitor(settings: MonitorSettings): Monitor {
  const { metadataUrl, backoff, clock, pollIntervalMs } = settings;
  const base = metadataUrl === undefined ? {} : { baseUrl: metadataUrl };
  switch (settings.cloud) {
    case 'aws':
      return new AwsImdsMonitor({ ...base, pollIntervalMs: pollIntervalMs ?? 2_000, backoff, clock });
    case 'gcp':
      return new GcpMetadataMonitor({ ...base, ...(settings.bootId !== undefined && { bootId: settings.bootId }), ...(settings.stateFile !== undefined && { stateFile: settings.stateFile }), backoff, clock });
    case 'azure':
      return new AzureScheduledEventsMonitor({ ...base, pollIntervalMs: pollIntervalMs ?? 1_000, ...(settings.azureEventTypes && { eventTypes: settings.azureEventTypes }), backoff, clock });
  }
}
