import { hostname } from 'node:os';
import type { V1Node } from '@kubernetes/client-node';
import { Deadline } from './deadline.js';
import type { KubeApi } from './kube-api.js';
import type { PluginLogger as Logger } from '@hollowtrees/grpcplugin';
import { toPluginError } from './api-errors.js';

/** The reasons of the Kubernetes Events this plugin records on a node. */
export type NodeEventReason = 'SpotInterruption' | 'CordonAndDrain' | 'DrainFailed';

/** One Kubernetes Event to record on a node. */
export interface NodeEvent {
  reason: NodeEventReason;
  type: 'Normal' | 'Warning';
  message: string;
}

// An event is a courtesy to whoever runs `kubectl describe node`; it must not hold up the drain.
const EVENT_TIMEOUT_MS = 2_000;

/**
 * Records a core/v1 Event on the node, best effort: a failure is logged, never
 * thrown. Like the kubelet's node events it lives in `namespace` (the kubelet
 * uses `default`) with the node's name as `involvedObject.uid`, which is where
 * `kubectl describe node` looks.
 */
export async function recordNodeEvent(api: KubeApi, node: V1Node, event: NodeEvent, run: { namespace: string; logger: Logger }): Promise<void> {
  const name = node.metadata?.name ?? '';
  const now = new Date();
  const timeout = new Deadline(Date.now() + EVENT_TIMEOUT_MS);
  try {
    await timeout.race(
      api.createEvent(run.namespace, {
        metadata: { generateName: `${name}.`, namespace: run.namespace },
        involvedObject: { apiVersion: 'v1', kind: 'Node', name, uid: name },
        reason: event.reason,
        type: event.type,
        message: event.message,
        source: { component: 'hollowtrees-k8s-drain', host: hostname() },
        reportingComponent: 'hollowtrees.io/k8s-drain',
        reportingInstance: hostname(),
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      }),
    );
  } catch (err) {
    run.logger.warn('could not record a Kubernetes Event on the node', { node: name, reason: event.reason, error: toPluginError(err, 'creating the event').message });
  } finally {
    timeout.dispose();
  }
}
