/**
 * Wire-level stand-ins and helpers for Hollowtrees' tests, demos and bench. Not for production.
 *
 * @packageDocumentation
 */
export { makeTestCertificates, type KeyPair, type TestCertificates } from './certificates.js';
export { rejectionOf } from './rejection.js';
export { ruleMetricProblems, type AlertRule, type ExportedMetric } from './alert-rules.js';
export { CallLatency } from './call-latency.js';
export { LISTEN_BACKLOG, hasIpv6Loopback, wallClockMs } from './listen.js';
export { startTcpRelay, type TcpRelay, type TcpRelayOptions } from './tcp-relay.js';
export * from './processes.js';
export * from './refusing-import.js';
export { STARTS_STEPPED_ENV, WALL_CLOCK_STEPPED, wallClockStepPreload } from './wall-clock-step.js';
export * from './kube/index.js';
export * from './aws/index.js';
export * from './metadata/index.js';
