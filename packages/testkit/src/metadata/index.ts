export { MetadataFaults, type MetadataCall, type MetadataStandInBase, type ScheduleOptions } from './metadata-server.js';
export { startImdsStandIn, type ImdsInstance, type ImdsScheduledEvent, type ImdsStandIn, type ImdsStandInOptions } from './imds-stand-in.js';
export { startGceMetadataStandIn, type GceInstance, type GceMaintenanceEvent, type GceMetadataStandIn, type GceMetadataStandInOptions } from './gce-metadata-stand-in.js';
export {
  startAzureMetadataStandIn,
  type AzureEventType,
  type AzureMetadataStandIn,
  type AzureMetadataStandInOptions,
  type AzureScheduledEvent,
  type AzureVm,
} from './azure-metadata-stand-in.js';
