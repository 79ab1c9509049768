import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { KubeConfig } from '@kubernetes/client-node';
import { ConfigError } from '../config/config-error.js';
import type { KubernetesStateConfig } from '../config/schema.js';
import { KubernetesRunStateStore } from './kubernetes-store.js';
import { kubeLeaseApi, loadStoreKubeConfig } from './lease-api.js';
import type { OpenedStore, StoreContext } from './open-store.js';

/** Where the service account's namespace is mounted in a pod. */
const SERVICE_ACCOUNT_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/** `state.kubernetes.namespace`, else `POD_NAMESPACE`, else the pod's own namespace. */
function namespaceOf(configured: string | undefined, configFile: string): string {
  if (configured) return configured;
  if (process.env['POD_NAMESPACE']) return process.env['POD_NAMESPACE'];
  try {
    return readFileSync(SERVICE_ACCOUNT_NAMESPACE, 'utf8').trim();
  } catch {
    throw new ConfigError(configFile, [{ path: 'state.kubernetes.namespace', message: 'not set, POD_NAMESPACE is not set, and this is not a pod (no service account namespace): name the namespace of the Leases' }]);
  }
}

/** This replica in Lease holders: `POD_NAME`, else host and pid (several processes may share a host). */
export function replicaIdentity(): string {
  return process.env['POD_NAME'] || `${hostname()}-${process.pid}`;
}

/** Connects to the API server for `state.backend: kubernetes`; one read at start checks that this replica may use its Leases (refused or unanswered: not ready until it may). */
export function openKubernetesStore({ loaded, logger, metrics, clock, kubeconfig }: StoreContext, settings: KubernetesStateConfig): OpenedStore {
  const namespace = namespaceOf(settings.namespace, loaded.file);
  let kc: KubeConfig;
  try {
    // A configured kubeconfig was loaded and checked with the other files (readConfigFiles), by validate too.
    kc = kubeconfig ?? loadStoreKubeConfig(undefined);
  } catch (err) {
    throw new ConfigError(loaded.file, [{ path: 'state.kubernetes.kubeconfig', message: `not set, and this is not a pod with a service account (${err instanceof Error ? err.message : String(err)})` }]);
  }
  const identity = replicaIdentity();
  // As written in the file: a value from ${VAR} is not shown, in this line nor in the errors of Lease calls and the Lease names logged.
  const shown = { namespace: settings.namespace ? loaded.display.plain('state.kubernetes.namespace', namespace) : namespace, leasePrefix: loaded.display.plain('state.kubernetes.leasePrefix', settings.leasePrefix) };
  // The longer first: replaced first, a value the other starts with (prefix "spot-", namespace "spot-prod") left the rest of the other shown.
  const pairs: Array<[value: string, as: string]> = [[settings.leasePrefix, shown.leasePrefix], [namespace, shown.namespace]];
  const hidden = pairs.filter(([value, as]) => value !== '' && value !== as).sort(([a], [b]) => b.length - a.length);
  const showMessage = (message: string): string => hidden.reduce((text, [value, as]) => text.replaceAll(value, as), message);
  // Well inside the lease: a renewal that gets no answer is tried again before the Lease expires.
  const api = kubeLeaseApi(kc, { namespace, timeoutMs: Math.min(5_000, settings.leaseDuration / 2), maxInFlight: settings.maxInFlight, metrics: metrics.store, clock, shown: showMessage });
  const store = new KubernetesRunStateStore({ api, identity, leasePrefix: settings.leasePrefix, showLease: showMessage, leaseDurationMs: settings.leaseDuration, renewIntervalMs: settings.renewInterval, maxGroups: loaded.config.state.maxGroups, clock, logger });
  logger.info({ backend: 'kubernetes', ...shown, identity, leaseDurationMs: settings.leaseDuration }, 'run state kept in Kubernetes Leases, shared with every replica');
  void store.checkAccess();
  return { store, maintain: () => Promise.resolve(), reportRecovery: () => {} };
}

