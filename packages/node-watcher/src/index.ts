/**
 * The Hollowtrees node watcher: reads the instance's own metadata service (AWS IMDSv2, Google
 * Cloud, Azure Scheduled Events) and sends each interruption or maintenance notice to core as a
 * CloudEvent. The bin `hollowtrees-node-watcher` is built on {@link runWatcher}.
 *
 * @packageDocumentation
 */
export { CLOUDS, noticeId, type CloudName, type InstanceIdentity, type Notice } from './notice.js';
export type { Monitor, MonitorSink } from './monitor.js';
export { MetadataError } from './metadata-request.js';
export { AwsImdsMonitor, AWS_METADATA_URL, type AwsImdsOptions } from './aws-imds.js';
export { GcpMetadataMonitor, GCP_METADATA_URL, type GcpMetadataOptions } from './gcp-metadata.js';
export { AzureScheduledEventsMonitor, AZURE_METADATA_URL, AZURE_EVENT_TYPES, DEFAULT_AZURE_EVENT_TYPES, type AzureEventType, type AzureScheduledEventsOptions } from './azure-scheduled-events.js';
export { createMonitor, type MonitorSettings } from './create-monitor.js';
export { BOOT_ID_PATH, readBootId } from './boot-id.js';
export { detectCloud, type DetectCloudOptions } from './detect-cloud.js';
export { noticeEvent, NODE_EVENT_TYPE_PREFIX, type NodeEvent, type NoticeEventInput } from './notice-event.js';
export { CoreClient, CORE_EVENTS_PATH, type CoreAnswer, type CoreAuth, type CoreClientOptions, type FinishedRunView, type GroupView } from './core-client.js';
export { AzureApprover, type AzureApprovalOptions } from './azure-approval.js';
export { RunFollower, LOOK_AGAIN, type LookAgain, type RunFollowOptions, type RunsEnd, type RunsEnded } from './run-follow.js';
export { NoticeFollow, DEFAULT_MAX_RESENDS, type FailedRunOutcome, type NoticeFollowOptions } from './notice-follow.js';
export { DeliveryQueue, type DeliveryQueueOptions, type OutgoingEvent, type SendEvent } from './delivery-queue.js';
export { NodeWatcher, type NodeWatcherOptions } from './node-watcher.js';
export { WatcherMetrics } from './watcher-metrics.js';
export { parseCliArgs, USAGE, type CliCommand, type WatcherSettings } from './cli-args.js';
export { runOnce, runWatcher, StartError, type RunningWatcher, type RunOptions } from './run-watcher.js';
