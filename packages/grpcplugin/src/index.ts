/**
 * The Hollowtrees plugin SDK: implement {@link EventHandler}, then
 * `await serve(9000, new MyHandler())`. Core talks to plugins through
 * {@link PluginClient}.
 *
 * @packageDocumentation
 */
export { labelsOf, type CloudEvent, type CloudEventExtension, type EventData } from './cloud-event.js';
export { SETTLED_FLOWS_ATTRIBUTE, settledFlowsOf, settledFlowsValue } from './settled-flows.js';
export { Code, PluginError, codeName, isRetryable } from './errors.js';
export type { EventHandler, HandleContext, HandleResult } from './handler.js';
export { createJsonLogger, jsonLogger, pluginLogger, type JsonLoggerOptions, type LogFields, type LogLevel, type PluginLogger } from './plugin-logger.js';
export { exponentialBackoff, type Backoff, type ExponentialBackoffOptions } from './backoff.js';
export { packageVersion } from './package-version.js';
export { forEachBounded } from './bounded-parallel.js';
export { CallGate } from './call-gate.js';
export { MAX_LISTING_PAGES, readEveryPage, type PagedListing } from './read-every-page.js';
export { CoalescingBatcher, type BatchResults, type CoalescingOptions } from './coalescing-batcher.js';
export { serve, type PluginServer, type ServeOptions } from './serve.js';
export { shutdownTimeoutAfter, type SignalStop } from './signal-stop.js';
export { DEFAULT_KEEPALIVE, type KeepaliveOptions } from './keepalive.js';
export { PLUGIN_SERVICE_NAME } from './service-name.js';
export { PluginClient, type HandleCallOptions, type PluginClientOptions, type PluginResponse, type PluginTransport } from './client.js';
export type { ClientTlsFiles, ClientTlsOptions, Pem, ServerTlsFiles, ServerTlsOptions } from './tls.js';
export { TlsFiles, type TlsFilePaths, type TlsFilesObserver, type TlsFilesOptions, type TlsMaterial } from './tls-files.js';
export { eventFromProto, eventToProto, isJsonContentType } from './event-codec.js';
export { normalizeTime } from './timestamp.js';
export { deadlineOn, steadyClock, systemClock, wallAheadOf, wallTimeOf, type Clock } from './clock.js';
export { formatDuration, parseDuration } from './duration.js';
export { rememberingRecent } from './recent-results.js';
export { SharedAgents, type AgentContext, type SharedAgentsOptions } from './shared-agents.js';
export { exitOnStopWhileStarting } from './stop-while-starting.js';
export { UsageError, durationFlag, integerFlag, parseCommandLine, parseFlags, readFlagFile, refuseEmptyFlags, tlsFlagFiles, type CommandLine, type FlagOptions, type FlagValues } from './cli-flags.js';
export { runBin, StartFailure, type Bin, type InfoCommand } from './bin-main.js';
export { listenFailure } from './listen-failure.js';
export { serveStartFailure } from './serve-start-failure.js';
export { invokeHandler, type InvokeOptions, type InvokeOutcome, type InvokeResult } from './invoke.js';
export type { ServingStatus } from 'grpc-health-check';
/** The generated protobuf messages and service definition, for tooling that needs the wire types. */
export * as proto from './gen/hollowtrees/plugin/v1/plugin.js';
