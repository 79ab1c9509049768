/**
 * Hollowtrees action plugin: cordon, taint and drain the Kubernetes node of a
 * reclaimed instance, respecting PodDisruptionBudgets, within the deadline.
 *
 * @example
 * ```ts
 * import { serve } from '@hollowtrees/grpcplugin';
 * import { createDrainHandler, loadKubeConfig } from '@hollowtrees/plugin-k8s-drain';
 * await serve(9000, createDrainHandler(loadKubeConfig(), { gracePeriodSeconds: 60 }), { handleSignals: true });
 * ```
 *
 * @packageDocumentation
 */
export { DrainHandler, createDrainHandler } from './drain-handler.js';
export { DrainIncompleteError } from './drain-incomplete-error.js';
export { resolveDrainOptions, type DrainOptions, type ResolvedDrainOptions } from './options.js';
export { createKubeApi, type EvictOptions, type KubeApi, type KubeApiOptions, type WatchedCollection } from './kube-api.js';
export type { ListedPage, WatchEvent } from './watched-list.js';
export { loadKubeConfig } from './kube-config.js';
export { DEFAULT_NODE_LABEL, DEFAULT_TAINT, parseNodeLabel, parseTaint, type NodeLabel, type NodeMarks, type Taint } from './node-marks.js';
export { instanceIdOf } from './node-lookup.js';
export type { NodeEventReason } from './events.js';
