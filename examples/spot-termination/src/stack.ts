import { parseConfig, startHollowtrees, type Hollowtrees } from '@hollowtrees/core';
import { jsonLogger, serve, type PluginServer } from '@hollowtrees/grpcplugin';
import { AwsSpotReplaceHandler } from '@hollowtrees/plugin-aws-spot';
import { createDrainHandler } from '@hollowtrees/plugin-k8s-drain';
import { startAwsStandIn, startKubeApiServer, startSqsStandIn, type AutoScalingGroup, type AwsStandIn, type KubeApiServer, type SqsQueue, type SqsStandIn } from '@hollowtrees/testkit';
import { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';

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
export interface StackOptions {
  logger?: Logger;
  /** Also read spot interruption warnings from an SQS queue (a stand-in), as EventBridge delivers them. Default false. */
  sqs?: boolean;
  /** The queue's visibility timeout in seconds. Default 30. */
  visibilityTimeoutSeconds?: number;
  /** Milliseconds the kube-apiserver stand-in takes per second of a pod's grace period. Default 5. */
  msPerGraceSecond?: number;
  /** The pods' terminationGracePeriodSeconds. Default 5. */
  podGraceSeconds?: number;
}

const quiet = jsonLogger({ service: 'spot-termination-demo', level: 'silent' });

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

  const kc = new KubeConfig();
  kc.loadFromOptions(kube.kubeConfigOptions());
  const drainHandler = createDrainHandler(kc, { logger: quiet });
  const drain: PluginServer = await serve(0, drainHandler, { host: '127.0.0.1' });
  const replaceHandler = new AwsSpotReplaceHandler({ region: 'us-east-1', endpoint: aws.url, credentials: { accessKeyId: 'demo', secretAccessKey: 'demo' }, logger: quiet });
  const replace: PluginServer = await serve(0, replaceHandler, { host: '127.0.0.1' });

  const sqs = options.sqs ? await startSqsStandIn() : undefined;
  const queue = sqs?.createQueue('spot-interruptions', { visibilityTimeoutSeconds: options.visibilityTimeoutSeconds ?? 30 });
  // Core's SQS client takes the default credential chain; the stand-in checks no signature.
  if (sqs) {
    process.env['AWS_ACCESS_KEY_ID'] ??= 'demo';
    process.env['AWS_SECRET_ACCESS_KEY'] ??= 'demo';
    process.env['AWS_EC2_METADATA_DISABLED'] ??= 'true';
  }
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
  k8s-drain: { type: grpc, address: "127.0.0.1:${drain.port}", timeout: 60s }
  aws-spot: { type: grpc, address: "127.0.0.1:${replace.port}", timeout: 30s }
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
      await drain.close();
      await drainHandler.close();
      await replace.close();
      replaceHandler.close();
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
