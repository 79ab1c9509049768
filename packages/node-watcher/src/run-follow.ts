import { exponentialBackoff, type Clock, type PluginLogger } from '@hollowtrees/grpcplugin/without-grpc';
import type { FinishedRunView, GroupView } from './core-client.js';

/** The default longest wait between two looks at core's runs of one event, in `intervalMs`. */
const DEFAULT_MAX_INTERVALS = 10;

/** How the flow runs of one accepted event ended, as far as core's status API tells. */
export type RunsEnd =
  /** Every flow that runs the event succeeded: its latest run listed succeeded, or its group cools down. */
  | { readonly kind: 'succeeded'; readonly flows: readonly string[] }
  /**
   * The latest run of at least one flow failed for good (core freed its group), and no other flow's run of the
   * event is still calling its plugins. `succeeded`: the flows whose latest run succeeded; `after`: when the last of the failed runs finished (core's clock, ms),
   * so that a follow of a re-send looks only at the runs after it.
   */
  | { readonly kind: 'failed'; readonly failed: readonly FinishedRunView[]; readonly succeeded: readonly string[]; readonly after: number }
  /** No flow runs the event: none takes it, or a run of another event holds each group it would start (`groupBy`). */
  | { readonly kind: 'unrun' }
  /** Core holds more groups than are read (`maxGroupsRead`): which flows run the event is not known. */
  | { readonly kind: 'too_many_groups' }
  /** The runs did not all end within `maxWaitMs` (a run still retrying, or one that scrolled out of core's last 100). */
  | { readonly kind: 'timed_out'; readonly waitedMs: number };

/** What a {@link RunsEnded} returns to be told again after the next look (an approval that failed, to be tried again). */
export const LOOK_AGAIN = 'look again';
/** See {@link LOOK_AGAIN}. */
export type LookAgain = typeof LOOK_AGAIN;

/** Told how the runs of one event ended; `signal` aborts when the watcher stops. */
export type RunsEnded = (end: RunsEnd, signal: AbortSignal) => Promise<LookAgain | undefined>;

/** Options of {@link RunFollower}. */
export interface RunFollowOptions {
  /** Core's finished runs of one event, newest first. */
  runsOf(eventId: string, signal: AbortSignal): Promise<FinishedRunView[]>;
  /** The groups core holds under one event's id; undefined when there are too many to look through. */
  groupsOf(eventId: string, signal: AbortSignal): Promise<GroupView[] | undefined>;
  /** The first wait between looks at core's runs; each next one doubles, up to `maxIntervalMs`. */
  intervalMs: number;
  /**
   * The longest wait between looks: a run's end is seen within about this long. Default 10 ×
   * `intervalMs` (10 s at the watcher's default `--poll-interval`). Bounded so the end is seen promptly, backed off so the events of a
   * wave (one per VM, all followed at once) do not each read core's runs every `intervalMs`.
   */
  maxIntervalMs?: number;
  /** Returns [0, 1): each wait is scaled by 0.5 + random / 2, so events followed at once look at different times. Default `Math.random`. */
  random?: () => number;
  /** Gives up after this long: by then the notice's deadline has passed. Default 15 min. */
  maxWaitMs?: number;
  clock: Clock;
  logger: PluginLogger;
}

/** A run's finish in core's clock, ms; NaN (older than everything) when core did not say. */
export function finishedAt(run: FinishedRunView): number {
  return Date.parse(run.finishedAt ?? '');
}

/**
 * Runs of a flow that finished before the run holding its group now started, or (cooling) by the time it succeeded, are
 * older ones: only the holder's end counts. A cooling group's own run is among them: its end is the cooldown. Core
 * restarted with `state.file` lists its earlier failures again but not the successes after them: such a failure must
 * not read as the latest run of a group that cools down.
 */
function sinceOf(group: GroupView | undefined): number {
  return group?.since !== undefined ? Date.parse(group.since) : -Infinity;
}

/** What one follow learnt so far: the groups the event held at the first look, by flow, and the runs too old to count. */
interface Looked {
  held: Map<string, GroupView> | undefined;
  after: number;
}

/**
 * Follows the flow runs of events core accepted through its status API until they end, for
 * `--azure-approve` (approve once they succeeded) and for re-sending a notice whose run failed.
 *
 * Which flows run the event is read once, right after core accepted it: from its 200 on, each run
 * the event started (or joined: a re-send while its run is at work) holds its flow's group under the
 * event's id (running, or cooling down when it already succeeded); a failed run frees it. Then
 * core's last 100 runs are read, backed off and jittered, until each such flow's latest run ended.
 */
export class RunFollower {
  private readonly stopping = new AbortController();
  private readonly tracking = new Set<Promise<void>>();

  constructor(private readonly options: RunFollowOptions) {}

  /**
   * Follows the runs of an accepted event; `ended` hears how they ended (not when the follower is
   * closed first). `after` (core's clock, ms): runs that finished then or before are not this send's.
   */
  track(eventId: string, ended: RunsEnded, after?: number): void {
    const signal = this.stopping.signal;
    const done = this.follow(eventId, after ?? -Infinity, ended, signal)
      .catch((err: unknown) => this.options.logger.error('following the flow runs of the event failed', { event_id: eventId, error: (err as Error).message }))
      .finally(() => this.tracking.delete(done));
    this.tracking.add(done);
  }

  /** Stops following; resolves once every follow has ended. */
  async close(): Promise<void> {
    this.stopping.abort(new Error('watcher stopping'));
    await Promise.all(this.tracking);
  }

  private async follow(eventId: string, after: number, ended: RunsEnded, signal: AbortSignal): Promise<void> {
    const { clock, logger, intervalMs, maxWaitMs = 15 * 60_000, random } = this.options;
    const maxMs = Math.max(intervalMs, this.options.maxIntervalMs ?? DEFAULT_MAX_INTERVALS * intervalMs);
    const wait = exponentialBackoff({ initialMs: intervalMs, maxMs, ...(random && { random }) });
    const deadline = clock.now() + maxWaitMs;
    const seen: Looked = { held: undefined, after };
    for (let looks = 1; !signal.aborted; looks++) {
      let end: RunsEnd | undefined;
      try {
        end = await this.look(eventId, seen, signal);
      } catch (err) {
        if (signal.aborted) return;
        logger.warn('cannot read core\'s flow runs of the event yet; trying again', { event_id: eventId, error: (err as Error).message });
      }
      if (!end && clock.now() >= deadline) end = { kind: 'timed_out', waitedMs: maxWaitMs };
      // An end the handler could not act on yet (an approval refused for now) is looked for again, until the deadline.
      if (end && ((await ended(end, signal)) !== LOOK_AGAIN || clock.now() >= deadline)) return;
      await clock.sleep(wait(looks), signal).catch(() => undefined);
    }
  }

  /** One look at core's runs of the event: how they ended, undefined while they have not. */
  private async look(eventId: string, seen: Looked, signal: AbortSignal): Promise<RunsEnd | undefined> {
    if (!seen.held) {
      const groups = await this.options.groupsOf(eventId, signal);
      if (!groups) return { kind: 'too_many_groups' };
      seen.held = new Map(groups.map((g) => [g.flow, g]));
    }
    const held = seen.held;
    const runs = (await this.options.runsOf(eventId, signal)).filter((r) => !(finishedAt(r) <= Math.max(seen.after, sinceOf(held.get(r.flow)))));
    // Core holds every group an accepted event started until its run ends, and lists the run after: neither means no flow runs it.
    if (held.size === 0 && runs.length === 0) return { kind: 'unrun' };
    const latest = new Map<string, FinishedRunView>();
    for (const run of runs) if (!latest.has(run.flow)) latest.set(run.flow, run);
    const flows = [...new Set([...held.keys(), ...latest.keys()])];
    const outcome = (flow: string): string | undefined => latest.get(flow)?.outcome ?? (held.get(flow)?.phase === 'cooling' ? 'succeeded' : undefined);
    const failed = [...latest.values()].filter((r) => r.outcome === 'failed');
    const succeeded = flows.filter((flow) => outcome(flow) === 'succeeded');
    // Not while another flow's run is still calling its plugins: one that succeeds then must be named in the re-send, or a
    // re-send core takes after its cooldown runs it again. One waiting for its next try is not waited for (that may take minutes).
    const calling = flows.some((flow) => outcome(flow) === undefined);
    if (failed.length > 0 && !calling) return { kind: 'failed', failed, succeeded, after: Math.max(seen.after, ...failed.map(finishedAt).filter((at) => !Number.isNaN(at))) };
    return succeeded.length === flows.length ? { kind: 'succeeded', flows } : undefined;
  }
}
