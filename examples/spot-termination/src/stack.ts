import { parseConfig, startHollowtrees, type Hollowtrees } from '@hollowtrees/core';
import { startAwsStandIn, startKubeApiServer, startSqsStandIn, type AutoScalingGroup, type AwsStandIn, type KubeApiServer, type SqsQueue, type SqsStandIn } from '@hollowtrees/testkit';
import type { Logger } from 'pino';
import { serveLoopbackPlugins, useDemoAwsCredentials, type PodTiming } from './loopback-plugins.js';

/** Everything the spot-termination path needs, on loopback. */
export interface SpotTerminationStack {
  kube: KubeApiServer;
  aws: AwsStandIn;
  /** The group as the stand-in holds it (live). */
  group: AutoScalingGroup;
  core: Hollowtrees;
  /** The spot instance that will be reclaimed, a member of an Auto Scaling group. */
  instanceId: string;
  groupName: string;
  /** Its Kubernetes node, found by the drain plugin through spec.providerID. */
  nodeName: string;
  /** With {@link StackOptions.sqs}: the SQS stand-in and the queue core reads (EventBridge's target). */
  sqs?: { standIn: SqsStandIn; queue: SqsQueue };
  close(): Promise<void>;
}

/** Options for {@link startSpotTerminationStack}. */
export interface StackOptions extends PodTiming {
  logger?: Logger;
  /** Also read spot interruption warnings from an SQS queue (a stand-in), as EventBridge delivers them. Default false. */
  sqs?: boolean;
  /** The queue's visibility timeout in seconds. Default 30. */
  visibilityTimeoutSeconds?: number;
}

/**
 * Starts the stand-ins for kube-apiserver, EC2 and Auto Scaling (and SQS, with
 * `sqs`), both plugins over real gRPC, and core with one flow: drain, then
 * replace, then log.
 */
export async function startSpotTerminationStack(options: StackOptions = {}): Promise<SpotTerminationStack> {
  const { logger } = options;
  const kube = await startKubeApiServer({ msPerGraceSecond: options.msPerGraceSecond ?? 5 });
  const aws = await startAwsStandIn();
  const groupName = 'spot-workers';
  const group = aws.autoScaling.addGroup({ name: groupName, desiredCapacity: 2, minSize: 1, maxSize: 4, instanceType: 'm5.large', availabilityZone: 'us-east-1a' });
  const instanceId = [...group.members.keys()][0]!;
  const nodeName = 'ip-10-0-1-23.ec2.internal';
  kube.cluster.addNode({ metadata: { name: nodeName }, spec: { providerID: `aws:///us-east-1a/${instanceId}` } });
  kube.cluster.addNode({ metadata: { name: 'ip-10-0-2-41.ec2.internal' }, spec: { providerID: 'aws:///us-east-1b/i-0other' } });
  for (let i = 0; i < 6; i++) {
    kube.cluster.addPod({
      metadata: { name: `web-${i}`, namespace: 'shop', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web', uid: 'rs-web', controller: true }] },
      spec: { nodeName, terminationGracePeriodSeconds: options.podGraceSeconds ?? 5, volumes: [] },
    });
  }

  const plugins = await serveLoopbackPlugins(kube, aws);

  const sqs = options.sqs ? await startSqsStandIn() : undefined;
  if (sqs) useDemoAwsCredentials();
  const queue = sqs?.createQueue('spot-interruptions', { visibilityTimeoutSeconds: options.visibilityTimeoutSeconds ?? 30 });
  const sqsSource = queue
    ? `sources:
  sqs:
    - url: ${queue.url}
      region: us-east-1
      endpoint: ${sqs!.url}
      waitTimeSeconds: 1
      visibilityTimeout: ${queue.visibilityTimeoutSeconds}s
`
    : '';
  const config = parseConfig(
    `
plugins:
  k8s-drain: { type: grpc, address: "${plugins.drainAddress}", timeout: 60s }
  aws-spot: { type: grpc, address: "${plugins.replaceAddress}", timeout: 30s }
flows:
  spot-termination:
    description: Cordon and drain the node, then replace the reclaimed instance
    allowedEvents: [prometheus.server.alert.SpotInstanceTerminating, aws.ec2.spot.interruption-warning]
    groupBy: [instance_id]
    cooldown: 10m
    plugins: [k8s-drain, aws-spot, log]
${sqsSource}`,
    'spot-termination.yaml',
    {},
  );
  const core = await startHollowtrees(config, { listen: '127.0.0.1:0', ...(logger ? { logger } : {}) });
  return {
    kube,
    aws,
    group,
    core,
    instanceId,
    groupName,
    nodeName,
    ...(sqs && queue ? { sqs: { standIn: sqs, queue } } : {}),
    async close() {
      await core.close();
      await plugins.close();
      await kube.close();
      await aws.close();
      await sqs?.close();
    },
  };
}

/**
 * The EventBridge event EC2 sends two minutes before it reclaims a spot
 * instance, as it arrives on the queue (shape: EC2 User Guide, "Spot Instance
 * interruption notices").
 */
export function spotInterruptionWarning(instanceId: string, eventId = `e2e-${instanceId}`): string {
  return JSON.stringify({
    version: '0',
    id: eventId,
    'detail-type': 'EC2 Spot Instance Interruption Warning',
    source: 'aws.ec2',
    account: '123456789012',
    time: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    region: 'us-east-1',
    resources: [`arn:aws:ec2:us-east-1a:instance/${instanceId}`],
    detail: { 'instance-id': instanceId, 'instance-action': 'terminate' },
  });
}

/** The alert Prometheus sends when the exporter sees the spot notice. */
export function spotAlert(instanceId: string): unknown[] {
  return [
    {
      labels: { alertname: 'SpotInstanceTerminating', instance_id: instanceId, instance_action: 'terminate', region: 'us-east-1', severity: 'critical' },
      annotations: { summary: `Spot instance ${instanceId} is being reclaimed` },
      startsAt: new Date().toISOString(),
      endsAt: new Date(Date.now() + 60_000).toISOString(),
      generatorURL: 'http://prometheus:9090/graph',
    },
  ];
}
