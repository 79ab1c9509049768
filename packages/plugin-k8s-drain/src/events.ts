import { hostname } from 'node:os';
import type { CoreV1Event, V1Node } from '@kubernetes/client-node';
import type { PluginLogger as Logger } from '@hollowtrees/grpcplugin';
import type { KubeApi } from './kube-api.js';
import { toPluginError } from './api-errors.js';

/** The reasons of the Kubernetes Events this plugin records on a node. */
export type NodeEventReason = 'SpotInterruption' | 'CordonAndDrain' | 'DrainFailed';

/** One Kubernetes Event to record on a node. */
export interface NodeEvent {
  reason: NodeEventReason;
  type: 'Normal' | 'Warning';
  message: string;
}

/**
 * A core/v1 Event on the node. Like the kubelet's node events it lives in
 * `namespace` (the kubelet uses `default`) with the node's name as
 * `involvedObject.uid`, which is where `kubectl describe node` looks.
 */
function eventBody(node: V1Node, event: NodeEvent, namespace: string): CoreV1Event {
  const name = node.metadata?.name ?? '';
  const now = new Date();
  return {
    metadata: { generateName: `${name}.`, namespace },
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
  };
}

/** How an {@link EventRecorder} records. */
export interface EventRecorderOptions {
  readonly namespace: string;
  readonly logger: Logger;
  readonly dryRun: boolean;
  /** Events sent and not answered yet beyond which new ones are dropped (and counted in the log). */
  readonly maxPending: number;
}

/**
 * Records Kubernetes Events on nodes without holding up a drain: an event is
 * a courtesy to whoever runs `kubectl describe node`, so {@link record}
 * returns at once, the call goes out behind the drain's own calls (the
 * lowest class of the call gate), a failure is logged, and past `maxPending`
 * events in flight new ones are dropped rather than queued without bound.
 */
export class EventRecorder {
  private pending = 0;
  private dropped = 0;
  private readonly idleWaiters = new Set<() => void>();

  constructor(
    private readonly api: KubeApi,
    private readonly options: EventRecorderOptions,
  ) {}

  record(node: V1Node, event: NodeEvent): void {
    const { logger, namespace } = this.options;
    if (this.options.dryRun) {
      logger.info('dry run: would record a Kubernetes Event', { node: node.metadata?.name, ...event });
      return;
    }
    if (this.pending >= this.options.maxPending) {
      if (this.dropped++ % 1_000 === 0) logger.warn('too many Kubernetes Events in flight: dropping', { node: node.metadata?.name, reason: event.reason, dropped: this.dropped });
      return;
    }
    this.pending++;
    this.api
      .createEvent(namespace, eventBody(node, event, namespace))
      .catch((err: unknown) => {
        logger.warn('could not record a Kubernetes Event on the node', { node: node.metadata?.name, reason: event.reason, err: toPluginError(err, 'creating the event') });
      })
      .finally(() => {
        if (--this.pending === 0) for (const waiter of [...this.idleWaiters]) waiter();
      });
  }

  /** Resolves once no event is in flight. */
  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.idleWaiters.delete(done);
        resolve();
      };
      this.idleWaiters.add(done);
    });
  }
}
