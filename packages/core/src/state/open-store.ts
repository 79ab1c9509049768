import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Clock } from '@hollowtrees/grpcplugin';
import { ConfigError } from '../config/config-error.js';
import type { LoadedConfig } from '../config/load-config.js';
import type { KubernetesStateConfig } from '../config/schema.js';
import { GroupStates } from '../flow/group-states.js';
import type { CoreMetrics } from '../metrics.js';
import { JournalRunStateStore } from './journal-store.js';
import { KubernetesRunStateStore } from './kubernetes-store.js';
import { kubeLeaseApi, loadStoreKubeConfig } from './lease-api.js';
import type { RunStateStore } from './run-state-store.js';
import { lockStateFile, StateFileLockedError, type StateLock } from './state-lock.js';
import { StateJournal } from './state-journal.js';

/** What core needs around its store: start-up reporting and periodic upkeep. */
export interface OpenedStore {
  store: RunStateStore;
  /** Periodic upkeep (journal checks and compaction, ...); never rejects. */
  maintain(): Promise<void>;
  /** Logs what was read back at start. */
  reportRecovery(recovery: object): void;
}

/** Everything {@link openStateStore} needs from core. */
export interface StoreContext {
  loaded: LoadedConfig;
  logger: Logger;
  metrics: CoreMetrics;
  clock: Clock;
  /** The text of `state.kubernetes.kubeconfig`, read with the configuration's other files. */
  kubeconfig?: string;
  /** The store can no longer be used safely (the state file's lock was lost): core must stop. */
  onFatal(err: Error): void;
}

/** Takes the state file's lock, turning "held by another process" into a configuration error (exit 2). */
async function lockState(file: string, shownFile: string, configFile: string, onCompromised: (err: Error) => void): Promise<StateLock> {
  try {
    return await lockStateFile(file, onCompromised);
  } catch (err) {
    if (err instanceof StateFileLockedError) throw new ConfigError(configFile, [{ path: 'state.file', message: `${shownFile} ${err.holderText}` }]);
    throw err;
  }
}

/** Opens the journal of `state.file` under its lock. */
async function openJournalStore({ loaded, logger, metrics, clock, onFatal }: StoreContext, file: string): Promise<OpenedStore> {
  // Logged as written in the file: a path from ${VAR} is not shown.
  const shownFile = loaded.display.plain('state.file', file);
  const lock = await lockState(file, shownFile, loaded.file, (err) => {
    logger.error({ err, file: shownFile }, 'lost the lock on the state file; stopping, so that two processes never act on one state');
    onFatal(err);
  });
  const { journal, recovered } = await StateJournal.open(file, {
    now: () => clock.now(),
    onError: (err, unwrittenLines) => {
      metrics.engine.stateDurable.set(0);
      logger.error({ err, file: shownFile, unwrittenLines }, 'could not write run state; runs go on, new events get 503 until the journal can write again');
    },
    onDurable: ({ oldestWaitMs }) => {
      metrics.engine.stateDurable.set(1);
      metrics.engine.stateWriteSeconds.observe(oldestWaitMs / 1000);
    },
  }).catch(async (err: unknown) => {
    await lock.release();
    throw err;
  });
  const store = new JournalRunStateStore(journal, loaded.config.state.maxGroups, recovered.states, recovered.problems, () => lock.release());
  return {
    store,
    maintain: async () => {
      try {
        const repaired = await store.maintain(clock.now());
        if (repaired) logger.error({ file: shownFile }, `the state journal was ${repaired} while running; rewrote it from memory`);
      } catch (err) {
        // The journal stays as it was (the rename is atomic); the next check tries again.
        logger.error({ err, file: shownFile }, 'could not check or compact the state journal');
      }
    },
    reportRecovery: (recovery) => {
      for (const problem of recovered.problems.slice(0, 20)) logger.error({ file: shownFile, line: problem.line }, `state journal line skipped: ${problem.reason}`);
      logger.info({ file: shownFile, ...recovery, unreadableLines: recovered.problems.length }, 'run state restored');
    },
  };
}

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

/** Connects to the API server for `state.backend: kubernetes`; makes no call until the first event. */
function openKubernetesStore({ loaded, logger, metrics, clock, kubeconfig }: StoreContext, settings: KubernetesStateConfig): OpenedStore {
  const namespace = namespaceOf(settings.namespace, loaded.file);
  let kc: KubeConfig;
  try {
    kc = loadStoreKubeConfig(kubeconfig);
  } catch (err) {
    // Not the parser's message: it may quote the file, secrets included.
    const problem = settings.kubeconfig
      ? { path: 'state.kubernetes.kubeconfig', message: `${loaded.display.quoted('state.kubernetes.kubeconfig', settings.kubeconfig)} is not a kubeconfig with a current cluster` }
      : { path: 'state.kubernetes.kubeconfig', message: `not set, and this is not a pod with a service account (${err instanceof Error ? err.message : String(err)})` };
    throw new ConfigError(loaded.file, [problem]);
  }
  const identity = replicaIdentity();
  // Well inside the lease: a renewal that gets no answer is tried again before the Lease expires.
  const api = kubeLeaseApi(kc, { namespace, timeoutMs: Math.min(5_000, settings.leaseDuration / 2), metrics: metrics.store, clock });
  const store = new KubernetesRunStateStore({ api, identity, leasePrefix: settings.leasePrefix, leaseDurationMs: settings.leaseDuration, renewIntervalMs: settings.renewInterval, maxGroups: loaded.config.state.maxGroups, clock, logger });
  // As written in the file: a value from ${VAR} is not shown.
  const shown = { namespace: settings.namespace ? loaded.display.plain('state.kubernetes.namespace', namespace) : namespace, leasePrefix: loaded.display.plain('state.kubernetes.leasePrefix', settings.leasePrefix) };
  logger.info({ backend: 'kubernetes', ...shown, identity, leaseDurationMs: settings.leaseDuration }, 'run state kept in Kubernetes Leases, shared with every replica');
  return { store, maintain: () => Promise.resolve(), reportRecovery: () => {} };
}

/** Opens the run-state store `state.backend` names. */
export async function openStateStore(context: StoreContext): Promise<OpenedStore> {
  const { state } = context.loaded.config;
  context.metrics.engine.stateDurable.set(1);
  if (state.backend === 'file') return openJournalStore(context, state.file!);
  if (state.backend === 'kubernetes') return openKubernetesStore(context, state.kubernetes!);
  return { store: new GroupStates(undefined, state.maxGroups), maintain: () => Promise.resolve(), reportRecovery: () => {} };
}
