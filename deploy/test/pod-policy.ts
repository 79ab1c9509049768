import type { KubeObject } from './manifests.js';

interface SecurityContext {
  runAsNonRoot?: boolean;
  readOnlyRootFilesystem?: boolean;
  allowPrivilegeEscalation?: boolean;
  privileged?: boolean;
  capabilities?: { drop?: string[]; add?: string[] };
  seccompProfile?: { type?: string };
}

/** The parts of a container these rules read. */
export interface Container {
  name: string;
  args?: string[];
  ports?: unknown[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  livenessProbe?: unknown;
  readinessProbe?: unknown;
  securityContext?: SecurityContext;
}

/** The parts of a pod spec these rules read. */
export interface PodSpec {
  containers: Container[];
  initContainers?: Array<Container & { restartPolicy?: string }>;
  securityContext?: SecurityContext;
  priorityClassName?: string;
  terminationGracePeriodSeconds?: number;
  hostNetwork?: boolean;
  tolerations?: Array<Record<string, unknown>>;
  affinity?: { nodeAffinity?: { requiredDuringSchedulingIgnoredDuringExecution?: { nodeSelectorTerms: Array<{ matchExpressions?: Array<{ key: string; operator: string; values?: string[] }> }> } } };
  topologySpreadConstraints?: Array<{ topologyKey: string }>;
}

/** The pod template of a workload object, or undefined for any other kind. */
export function podSpecOf(object: KubeObject): PodSpec | undefined {
  if (!['Deployment', 'DaemonSet', 'StatefulSet', 'Job'].includes(object.kind)) return undefined;
  return (object as unknown as { spec: { template: { spec: PodSpec } } }).spec.template.spec;
}

/** Containers that run for the pod's life: the main ones and native sidecars (init containers with restartPolicy Always). */
export function longRunningContainers(pod: PodSpec): Container[] {
  return [...(pod.initContainers ?? []).filter((c) => c.restartPolicy === 'Always'), ...pod.containers];
}

/**
 * What every container must have, whichever component: requests and a memory limit, liveness and
 * readiness probes, non-root, read-only root filesystem, no privilege escalation, every capability
 * dropped, seccomp RuntimeDefault (the pod's settings count where the container has none).
 * Answers one line per breach, naming the container.
 */
export function containerPolicyBreaches(workload: string, pod: PodSpec): string[] {
  const breaches: string[] = [];
  const plainInit = (pod.initContainers ?? []).filter((c) => c.restartPolicy !== 'Always');
  for (const c of [...longRunningContainers(pod), ...plainInit]) {
    const at = `${workload}/${c.name}`;
    const sc = c.securityContext ?? {};
    const fail = (what: string): number => breaches.push(`${at}: ${what}`);
    if (!c.resources?.requests?.['cpu'] || !c.resources.requests['memory']) fail('no cpu and memory requests');
    if (!c.resources?.limits?.['memory']) fail('no memory limit');
    // A native sidecar (an init container that runs on) has liveness only: its readiness would count in the pod's.
    const sidecar = (pod.initContainers ?? []).includes(c as never);
    if (!plainInit.includes(c as never) && (!c.livenessProbe || (!sidecar && !c.readinessProbe))) fail(sidecar ? 'no liveness probe' : 'no liveness and readiness probes');
    if (sidecar && c.readinessProbe) fail("a readiness probe, which would make the pod's readiness its own");
    if ((sc.runAsNonRoot ?? pod.securityContext?.runAsNonRoot) !== true) fail('runAsNonRoot is not true');
    if (sc.readOnlyRootFilesystem !== true) fail('readOnlyRootFilesystem is not true');
    if (sc.allowPrivilegeEscalation !== false) fail('allowPrivilegeEscalation is not false');
    if (sc.privileged === true) fail('privileged');
    if (!sc.capabilities?.drop?.includes('ALL') || (sc.capabilities.add?.length ?? 0) > 0) fail('capabilities: ALL not dropped, or some added');
    if ((sc.seccompProfile?.type ?? pod.securityContext?.seccompProfile?.type) !== 'RuntimeDefault') fail('seccomp profile is not RuntimeDefault');
  }
  return breaches;
}

/** The spot-node label keys whose nodes the pod's required node affinity excludes (every term must exclude it). */
export function excludedSpotLabels(pod: PodSpec): string[] {
  const terms = pod.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? [];
  if (terms.length === 0) return [];
  const perTerm = terms.map((t) => new Set((t.matchExpressions ?? []).filter((e) => e.operator === 'NotIn' && e.values?.some((v) => v.toLowerCase() === 'spot' || v === 'true')).map((e) => e.key)));
  return [...perTerm[0]!].filter((key) => perTerm.every((keys) => keys.has(key)));
}
