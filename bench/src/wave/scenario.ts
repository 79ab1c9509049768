/**
 * The cluster a wave drill reclaims, built on the stand-ins: spot nodes in one
 * or more Auto Scaling groups, each with ReplicaSet pods under four budgets and
 * a DaemonSet pod, plus spare nodes the evicted pods are rescheduled to.
 */
import type { AutoScalingStandIn, KubeCluster } from '@hollowtrees/testkit';

/** The shape of a wave. */
export interface WaveScenario {
  /** Spot nodes reclaimed at once (one instance each). */
  readonly nodes: number;
  /** Auto Scaling groups the instances are spread over, evenly. */
  readonly groups: number;
  /** ReplicaSet pods per node, spread round-robin over four deployments. */
  readonly podsPerNode: number;
  /** Nodes that stay, where the ReplicaSets reschedule evicted pods. */
  readonly spareNodes: number;
}

/** One reclaimed instance and its node. */
export interface WaveInstance {
  readonly instanceId: string;
  readonly node: string;
  readonly group: string;
  readonly availabilityZone: string;
}

export const WAVE_NAMESPACE = 'shop';
/** The four deployments and their budgets: two `maxUnavailable: 10%`, two `minAvailable: 90%`. */
export const WAVE_BUDGETS = [
  { app: 'cart', budget: { maxUnavailable: '10%' } },
  { app: 'search', budget: { maxUnavailable: '10%' } },
  { app: 'checkout', budget: { minAvailable: '90%' } },
  { app: 'catalog', budget: { minAvailable: '90%' } },
] as const;
/** Every pod's own grace period; the stand-in plays 1 s of it in `msPerGraceSecond`. */
const GRACE_SECONDS = 30;
const ZONE = 'us-east-1a';

/** The default wave: 10 ReplicaSet pods a node, spare nodes a tenth of the wave (at least 2). */
export function waveScenario(nodes: number, groups: number): WaveScenario {
  return { nodes, groups, podsPerNode: 10, spareNodes: Math.max(2, Math.ceil(nodes / 10)) };
}

/**
 * Creates the groups (MinSize half the desired capacity, so no detach of the
 * wave needs MinSize lowered while the group refills at once), the nodes of
 * their members, their pods and the budgets.
 */
export function buildWave(kube: KubeCluster, autoScaling: AutoScalingStandIn, scenario: WaveScenario): WaveInstance[] {
  // Spare nodes first: the stand-in reschedules onto the first schedulable node.
  for (let i = 0; i < scenario.spareNodes; i++) {
    kube.addNode({ metadata: { name: `spare-${i}.ec2.internal` }, spec: { providerID: `aws:///${ZONE}/i-0spare${String(i).padStart(9, '0')}` } });
  }
  const instances: WaveInstance[] = [];
  for (let g = 0; g < scenario.groups; g++) {
    const size = Math.floor(scenario.nodes / scenario.groups) + (g < scenario.nodes % scenario.groups ? 1 : 0);
    const group = autoScaling.addGroup({
      name: `spot-${g}`,
      desiredCapacity: size,
      minSize: Math.floor(size / 2),
      maxSize: size * 2,
      availabilityZone: ZONE,
      launchTemplate: { id: 'lt-0wave', version: '1' },
    });
    for (const instanceId of group.members.keys()) {
      const node = `ip-10-${g}-${instances.length}.ec2.internal`;
      kube.addNode({ metadata: { name: node }, spec: { providerID: `aws:///${ZONE}/${instanceId}` } });
      instances.push({ instanceId, node, group: group.name, availabilityZone: ZONE });
    }
  }
  instances.forEach(({ node }, n) => {
    for (let p = 0; p < scenario.podsPerNode; p++) {
      const { app } = WAVE_BUDGETS[(n * scenario.podsPerNode + p) % WAVE_BUDGETS.length]!;
      kube.addPod({
        metadata: {
          name: `${app}-${n}-${p}`,
          namespace: WAVE_NAMESPACE,
          labels: { app },
          ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: app, uid: `rs-${app}`, controller: true }],
        },
        spec: { nodeName: node, terminationGracePeriodSeconds: GRACE_SECONDS },
      });
    }
    kube.addPod({
      metadata: {
        name: `node-exporter-${n}`,
        namespace: 'monitoring',
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'node-exporter', uid: 'ds-node-exporter', controller: true }],
      },
      spec: { nodeName: node },
    });
  });
  for (const { app, budget } of WAVE_BUDGETS) {
    kube.addPodDisruptionBudget({ metadata: { name: app, namespace: WAVE_NAMESPACE }, spec: { selector: { matchLabels: { app } }, ...budget } });
  }
  return instances;
}

/**
 * The `SpotInstanceTerminating` alerts of the wave, as the Prometheus rules in
 * `examples/prometheus/spot-rules.yml` send them (instance, node, zone, action),
 * in POST bodies of `batch` alerts.
 */
export function waveAlertBodies(instances: readonly WaveInstance[], batch: number): string[] {
  const startsAt = new Date().toISOString();
  const endsAt = new Date(Date.now() + 120_000).toISOString();
  const alerts = instances.map(({ instanceId, node, availabilityZone }) =>
    JSON.stringify({
      labels: {
        alertname: 'SpotInstanceTerminating',
        instance_id: instanceId,
        node,
        instance_action: 'terminate',
        instance_type: 'm5.large',
        availability_zone: availabilityZone,
        region: 'us-east-1',
        severity: 'critical',
      },
      annotations: { summary: `Spot instance ${instanceId} on node ${node} is being reclaimed (terminate)` },
      startsAt,
      endsAt,
      generatorURL: 'http://prometheus:9090/graph',
    }),
  );
  const bodies: string[] = [];
  for (let i = 0; i < alerts.length; i += batch) bodies.push(`[${alerts.slice(i, i + batch).join(',')}]`);
  return bodies;
}
