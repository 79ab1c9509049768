/**
 * Hollowtrees core: the alert receiver, the action-flow engine and the
 * configuration. The `hollowtrees` CLI is built on {@link startHollowtrees}.
 *
 * @packageDocumentation
 */
export { startHollowtrees, StartupError, type Hollowtrees, type StartOptions } from './app.js';
export { steadyClock, systemClock, type Clock } from '@hollowtrees/grpcplugin';
export { ConfigError, type ConfigProblem } from './config/config-error.js';
export { defaultConfig, DEFAULT_CONFIG_YAML } from './config/default-config.js';
export { BUILTIN_PLUGINS, loadConfigFile, parseConfig, type LoadedConfig } from './config/load-config.js';
export type { ValueDisplay } from './config/value-display.js';
export type { Config, FilterValue, FlowConfig, PluginConfig, ReceiverLimits, ReceiverTimeouts, RetryConfig } from './config/schema.js';
export { formatDuration, parseDuration } from '@hollowtrees/grpcplugin';
export { FlowEngine, type DispatchResult, type FlowEngineOptions, type FlowStatus } from './flow/flow-engine.js';
export type { GroupPhase, GroupState } from './flow/group-states.js';
export type { FinishedRun } from './flow/recent-runs.js';
export type { PluginCallRecord, RunOutcome } from './flow/run-plugins.js';
export { createLogger } from './logger.js';
export { CoreMetrics } from './metrics.js';
export { EngineMetrics } from './flow/engine-metrics.js';
export { ReceiverMetrics } from './receiver/receiver-metrics.js';
export type { ActionPlugin, PluginCall } from './plugins/action-plugin.js';
export { ALERT_TYPE_PREFIX, alertToEvent, type AlertEventData, type ReceivedAlert } from './receiver/alert-to-event.js';
export { ALERT_PATHS, EVENTS_PATH } from './receiver/intake.js';
export type { Acceptance, AcceptOptions, Drop, DropReason, EventSink, RunListener, RunSettlement } from './sources/event-sink.js';
export type { EventSource, SourceState, SourceStatus } from './sources/event-source.js';
