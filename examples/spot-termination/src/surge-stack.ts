import { parseConfig, startHollowtrees, type Hollowtrees } from '@hollowtrees/core';
import { startAwsStandIn, startKubeApiServer, type AwsStandIn, type Ec2Instance, type KubeApiServer, type SpotPool } from '@hollowtrees/testkit';
import type { Logger } from 'pino';
import { serveLoopbackPlugins, useDemoAwsCredentials, type PodTiming } from './loopback-plugins.js';

/** The pool whose price surges: m5.large in us-east-1a. */
export const SURGING_POOL: SpotPool = { instanceType: 'm5.large', availabilityZone: 'us-east-1a' };
/** Above this the source announces a surge. */
export const MAX_PRICE = 0.1;
/** The spot price before the surge, in every pool. */
export const CALM_PRICE = 0.035;
/** The tag the cluster's instances carry; the pool mode replaces only those. */
const CLUSTER_TAG = { key: 'cluster', value: 'prod' };
/** What a replacement instance is tagged with: the id of the instance it replaces. */
export const REPLACES_TAG = 'hollowtrees:replaces';

/** A pool of spot nodes on loopback, with core watching its price. */
export interface SurgeStack {
  kube: KubeApiServer;
  aws: AwsStandIn;
  core: Hollowtrees;
  /** The surging pool's instances, one per node. */
  poolInstances: Ec2Instance[];
  /** Their Kubernetes nodes, in the same order. */
  poolNodes: string[];
  /** Nodes of other pools, which nothing may touch. */
  otherNodes: string[];
  /** Sets the surging pool's price now; the source reads it at its next poll. */
  setPrice(price: number): void;
  close(): Promise<void>;
}

/** Options for {@link startSurgeStack}. */
export interface SurgeStackOptions extends PodTiming {
  logger?: Logger;
  /** Nodes in the surging pool. Default 6. */
  poolSize?: number;
  /** Nodes drained at once (the drain step's `maxUnavailable`). Default 2. */
  maxUnavailable?: number;
  /** Milliseconds a launched replacement stays `pending`. Default 300. */
  launchDelayMs?: number;
}

/**
 * Starts the kube-apiserver and EC2 stand-ins with a pool of spot nodes
 * (m5.large in us-east-1a, each running two pods of `api` and one of `web`
 * under a PodDisruptionBudget) and two nodes of other pools; both plugins over
 * real gRPC; and core with `sources.spotPrice` polling the stand-in every
 * 250 ms and the two surge flows of `examples/config.yaml`: replacement
 * capacity first, then a paced drain, and a resolution that stops the drain.
 */
export async function startSurgeStack(options: SurgeStackOptions = {}): Promise<SurgeStack> {
  const kube = await startKubeApiServer({ msPerGraceSecond: options.msPerGraceSecond ?? 5 });
  const aws = await startAwsStandIn();
  aws.ec2.launchDelayMs = options.launchDelayMs ?? 300;
  aws.ec2.subnets.set('subnet-a', 'us-east-1a');
  aws.ec2.subnets.set('subnet-b', 'us-east-1b');
  const template = { id: 'lt-0workers', version: '1' };
  aws.ec2.addLaunchTemplate({ id: template.id, imageId: 'ami-0workers' });
  const tags = { [CLUSTER_TAG.key]: CLUSTER_TAG.value };

  const poolInstances = Array.from({ length: options.poolSize ?? 6 }, () =>
    aws.ec2.addInstance({ instanceType: SURGING_POOL.instanceType, subnetId: 'subnet-a', lifecycle: 'spot', launchTemplate: template, tags }),
  );
  const others = [
    aws.ec2.addInstance({ instanceType: 'c5.large', subnetId: 'subnet-a', lifecycle: 'spot', launchTemplate: template, tags }),
    aws.ec2.addInstance({ instanceType: SURGING_POOL.instanceType, subnetId: 'subnet-b', lifecycle: 'spot', launchTemplate: template, tags }),
  ];
  const nodeOf = (instance: Ec2Instance): string => `node-${instance.instanceId}`;
  const owner = (name: string) => [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name, uid: `rs-${name}`, controller: true }];
  for (const instance of [...poolInstances, ...others]) {
    const name = nodeOf(instance);
    kube.cluster.addNode({
      metadata: { name, labels: { 'topology.kubernetes.io/zone': instance.availabilityZone, 'node.kubernetes.io/instance-type': instance.instanceType } },
      spec: { providerID: `aws:///${instance.availabilityZone}/${instance.instanceId}` },
    });
    const grace = options.podGraceSeconds ?? 5;
    for (const [app, n] of [['api', 2], ['web', 1]] as const) {
      for (let i = 0; i < n; i++) {
        kube.cluster.addPod({
          metadata: { name: `${app}-${instance.instanceId}-${i}`, namespace: 'shop', labels: { app }, ownerReferences: owner(app) },
          spec: { nodeName: name, terminationGracePeriodSeconds: grace },
        });
      }
    }
  }
  kube.cluster.addPodDisruptionBudget({ metadata: { name: 'web', namespace: 'shop' }, spec: { selector: { matchLabels: { app: 'web' } }, maxUnavailable: 1 } });

  const before = new Date(Date.now() - 3_600_000);
  for (const instanceType of ['m5.large', 'c5.large']) {
    for (const availabilityZone of ['us-east-1a', 'us-east-1b']) aws.ec2.spotPrices.set({ instanceType, availabilityZone }, CALM_PRICE, before);
  }

  const plugins = await serveLoopbackPlugins(kube, aws);
  useDemoAwsCredentials();
  const config = parseConfig(
    `
plugins:
  k8s-drain: { type: grpc, address: "${plugins.drainAddress}", timeout: 60s }
  aws-spot: { type: grpc, address: "${plugins.replaceAddress}", timeout: 60s }
flows:
  spot-price-surge:
    description: Capacity in other pools first, then drain the surging pool a few nodes at a time
    allowedEvents: [aws.ec2.spot.price-surge, prometheus.server.alert.SpotPriceSurge, aws.ec2.spot.rebalance-recommendation, hollowtrees.node.aws.rebalance-recommendation]
    groupBy: [availability_zone, instance_type]
    cooldown: 30m
    plugins:
      - { plugin: aws-spot, config: { mode: pool, tag: "${CLUSTER_TAG.key}=${CLUSTER_TAG.value}", subnets: subnet-b } }
      - { plugin: k8s-drain, config: { mode: pool, maxUnavailable: ${options.maxUnavailable ?? 2} } }
      - log
  spot-price-surge-resolved:
    description: The price fell back; stop the pool's drain and uncordon what it had not drained
    allowedEvents: [aws.ec2.spot.price-surge.resolved, prometheus.server.alert.SpotPriceSurge.resolved]
    plugins:
      - { plugin: k8s-drain, config: { mode: pool } }
sources:
  spotPrice:
    - region: us-east-1
      endpoint: ${aws.url}
      interval: 250ms
      instanceTypes: [m5.large, c5.large]
      availabilityZones: [us-east-1a, us-east-1b]
      maxPrice: ${MAX_PRICE}
`,
    'price-surge.yaml',
    {},
  );
  const core = await startHollowtrees(config, { listen: '127.0.0.1:0', ...(options.logger ? { logger: options.logger } : {}) });
  return {
    kube,
    aws,
    core,
    poolInstances,
    poolNodes: poolInstances.map(nodeOf),
    otherNodes: others.map(nodeOf),
    setPrice: (price) => void aws.ec2.spotPrices.set(SURGING_POOL, price),
    async close() {
      await core.close();
      await plugins.close();
      await kube.close();
      await aws.close();
    },
  };
}
