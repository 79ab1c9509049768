import { resolve } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { wallAheadOf, type Clock } from '@hollowtrees/grpcplugin/without-grpc';
import { ConfigError } from '../config/config-error.js';
import { fileProblem } from '../file-problem.js';
import type { LoadedConfig } from '../config/load-config.js';
import { GroupStates } from '../flow/group-states.js';
import type { CoreMetrics } from '../metrics.js';
import { ThrottledLog } from '../throttled-log.js';
import { JournalFromNewerVersion } from './journal-format.js';
import { JournalRunStateStore } from './journal-store.js';
import { JournalWriteLog } from './journal-write-log.js';
import type { RunStateStore } from './run-state-store.js';
import { lockStateFile, StateFileLockedError, type StateLock } from './state-lock.js';
import { StateJournal, unreadableCopyOf } from './state-journal.js';

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
  /** `state.kubernetes.kubeconfig`, read and checked with the configuration's other files. */
  kubeconfig?: KubeConfig;
  /** The store can no longer be used safely (the state file's lock was lost): core must stop. */
  onFatal(err: Error): void;
  /** `--dry-run`: keep run state in memory whatever `state.backend` says (see {@link openStateStore}). */
  dryRun?: boolean;
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

/** Why the journal cannot be opened, in words, when the file is the reason; undefined for anything else. */
function stateFileProblem(err: unknown): string | undefined {
  return err instanceof JournalFromNewerVersion ? err.message : fileProblem(err);
}

/**
 * An error of opening the journal that the file causes (the file system's, by
 * its code only: the system's message repeats the path, which may have come
 * from ${VAR}; a journal of a later version) as a configuration error naming
 * `state.file`; anything else is rethrown as it is.
 */
async function asStateFileProblem<T>(loaded: LoadedConfig, file: string, opening: Promise<T>): Promise<T> {
  try {
    return await opening;
  } catch (err) {
    const why = stateFileProblem(err);
    if (why === undefined) throw err;
    const message = `cannot use ${loaded.display.quoted('state.file', file)} for the run-state journal: ${why}`;
    throw new ConfigError(loaded.file, [{ path: 'state.file', message }]);
  }
}

/** Opens the journal of `state.file` under its lock. */
async function openJournalStore({ loaded, logger, metrics, clock, onFatal }: StoreContext, file: string): Promise<OpenedStore> {
  // Logged as written in the file: a path from ${VAR} is not shown.
  const shownFile = loaded.display.plain('state.file', file);
  const lock = await asStateFileProblem(loaded, file, lockState(file, shownFile, loaded.file, (err) => {
    logger.error({ err, file: shownFile }, 'lost the lock on the state file; stopping, so that two processes never act on one state');
    onFatal(err);
  }));
  const writes = new JournalWriteLog(logger, () => clock.now(), { file: shownFile });
  const { journal, recovered, keptAs, notKept } = await asStateFileProblem(loaded, file, StateJournal.open(file, {
    now: () => clock.now(),
    wallAhead: wallAheadOf(clock),
    onError: (err, unwrittenLines) => {
      metrics.engine.stateDurable.set(0);
      writes.failed(err, unwrittenLines);
    },
    onDurable: ({ oldestWaitMs }) => {
      metrics.engine.stateDurable.set(1);
      metrics.engine.stateWriteSeconds.observe(oldestWaitMs / 1000);
      writes.written();
    },
  }).catch(async (err: unknown) => {
    await lock.release();
    throw err;
  }));
  const store = new JournalRunStateStore(journal, loaded.config.state.maxGroups, recovered.states, recovered.problems, lock, recovered.failures);
  // The upkeep runs every 5 s, and while the file fails (EIO, a read-only remount) each of its rewrites fails too.
  const upkeepLog = new ThrottledLog(logger, () => clock.now(), 60_000);
  return {
    store,
    maintain: async () => {
      try {
        const repaired = await store.maintain(clock.now());
        if (repaired) logger.error({ file: shownFile }, `the state journal was ${repaired} while running; rewrote it from memory`);
        // A journal that dropped changes while writes failed is whole again only once rewritten here.
        if (store.durable) writes.written();
      } catch (err) {
        // The journal stays as it was (the rename is atomic); the next check tries again.
        upkeepLog.log('upkeep', 'error', { err, file: shownFile }, 'could not check or compact the state journal', 'alsoFailedSinceLastLine');
      }
    },
    reportRecovery: (recovery) => {
      // The lines are numbered as in the copy kept: the journal itself was rewritten without them.
      const shownCopy = keptAs && unreadableCopyOf(shownFile);
      if (notKept !== undefined) {
        logger.error({ err: notKept, file: shownFile }, `could not keep the journal as it was in ${unreadableCopyOf(shownFile)}; rewrote it without its unreadable lines all the same (numbered below as they were in it)`);
      }
      for (const problem of recovered.problems.slice(0, 20)) logger.error({ file: shownCopy, line: problem.line }, `state journal line skipped: ${problem.reason}`);
      logger.info({ file: shownFile, ...recovery, unreadableLines: recovered.problems.length, ...(shownCopy ? { unreadableKeptIn: shownCopy } : {}) }, 'run state restored');
    },
  };
}

/**
 * Opens the run-state store `state.backend` names; under `--dry-run` one in memory instead: the
 * journal and the Leases are shared with the core that acts, which would deduplicate every alert
 * a dry run ran (its cooldowns) and never act on it.
 */
export async function openStateStore(context: StoreContext): Promise<OpenedStore> {
  const { state } = context.loaded.config;
  context.metrics.engine.stateDurable.set(1);
  const backend = context.dryRun === true ? 'memory' : state.backend;
  if (backend !== state.backend) context.logger.warn({ backend: state.backend }, 'dry run: run state is kept in memory only');
  if (backend === 'file') return openJournalStore(context, resolve(context.loaded.baseDir, state.file!));
  // Imported only when used: the Kubernetes client takes most of a second to load.
  if (backend === 'kubernetes') return (await import('./open-kubernetes-store.js')).openKubernetesStore(context, state.kubernetes!);
  return { store: new GroupStates(undefined, state.maxGroups), maintain: () => Promise.resolve(), reportRecovery: () => {} };
}
