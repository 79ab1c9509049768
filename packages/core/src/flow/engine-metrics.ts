import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { RUN_OUTCOMES } from './run-plugins.js';

/** Refreshes gauges read at scrape time, adding the runs each flow holds queued to `queued`. */
export type ScrapeRefresh = (queued: Map<string, number>) => void;

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/**
 * The flow engine's metrics (runs, plugin calls, groups, run state), declared
 * once and registered on the registry passed in. Labels are bounded sets:
 * flow, plugin, code, attempt, outcome, reason; never instance or event ids.
 */
export class EngineMetrics {
  readonly flowRuns: Counter<'flow' | 'outcome'>;
  readonly pluginCalls: Counter<'plugin' | 'code' | 'attempt'>;
  readonly eventsDeduplicated: Counter<'flow'>;
  readonly eventsDropped: Counter<'flow' | 'reason'>;
  readonly eventsUnmatched: Counter;
  readonly receiptToFirstCall: Histogram<'flow'>;
  readonly pluginCallDuration: Histogram<'plugin'>;
  readonly runDuration: Histogram<'flow' | 'outcome'>;
  readonly runsInProgress: Gauge<'flow'>;
  readonly groupsCoolingDown: Gauge<'flow'>;
  readonly queueDepth: Gauge<'flow'>;
  readonly heldEventBytes: Gauge<'flow'>;
  readonly runsWaitingForRetry: Gauge<'flow'>;
  readonly runRetries: Counter<'flow'>;
  readonly groupsHeld: Gauge;
  readonly stateWriteSeconds: Histogram;
  readonly stateDurable: Gauge;

  private readonly refreshers = new Set<ScrapeRefresh>();
  private readonly initialised = new Set<string>();

  constructor(readonly registry: Registry) {
    const registers = [registry];
    this.flowRuns = new Counter({ name: 'hollowtrees_flow_runs_total', help: 'Finished flow runs, by flow and outcome.', labelNames: ['flow', 'outcome'], registers });
    this.pluginCalls = new Counter({ name: 'hollowtrees_plugin_calls_total', help: 'Plugin calls, by plugin, gRPC code and attempt.', labelNames: ['plugin', 'code', 'attempt'], registers });
    this.eventsDeduplicated = new Counter({ name: 'hollowtrees_events_deduplicated_total', help: 'Events dropped because their group was running or cooling down.', labelNames: ['flow'], registers });
    this.eventsDropped = new Counter({ name: 'hollowtrees_events_dropped_total', help: 'Events a flow matched but could not run, by reason.', labelNames: ['flow', 'reason'], registers });
    this.eventsUnmatched = new Counter({ name: 'hollowtrees_events_unmatched_total', help: 'Accepted events that no flow took.', registers });
    this.receiptToFirstCall = new Histogram({ name: 'hollowtrees_receipt_to_first_plugin_call_seconds', help: 'From receipt of the event to the first plugin call of its run.', labelNames: ['flow'], buckets: LATENCY_BUCKETS, registers });
    this.pluginCallDuration = new Histogram({ name: 'hollowtrees_plugin_call_duration_seconds', help: 'Duration of each plugin call.', labelNames: ['plugin'], buckets: LATENCY_BUCKETS, registers });
    this.runDuration = new Histogram({ name: 'hollowtrees_flow_run_duration_seconds', help: 'Duration of a whole flow run.', labelNames: ['flow', 'outcome'], buckets: LATENCY_BUCKETS, registers });
    this.runsInProgress = new Gauge({ name: 'hollowtrees_runs_in_progress', help: 'Flow runs calling plugins now.', labelNames: ['flow'], registers });
    // Read at scrape time: a cooldown ends by itself, with no event to update a gauge, and a
    // queue's depth or held bytes change on every event, where setting gauges would cost the hot path.
    // One refresh per scrape: prom-client collects each of these gauges in turn, in one synchronous pass,
    // and a refresh walks every group held (up to state.maxGroups).
    let refreshedThisTurn = false;
    const collect = (): void => {
      if (refreshedThisTurn) return;
      refreshedThisTurn = true;
      queueMicrotask(() => (refreshedThisTurn = false));
      const queued = new Map<string, number>();
      for (const refresh of this.refreshers) refresh(queued);
      for (const flow of this.initialised) this.queueDepth.set({ flow }, queued.get(flow) ?? 0);
    };
    this.groupsCoolingDown = new Gauge({ name: 'hollowtrees_groups_cooling_down', help: 'Groups held by a cooldown.', labelNames: ['flow'], registers, collect });
    this.queueDepth = new Gauge({ name: 'hollowtrees_queue_depth', help: 'Runs waiting for a slot, by flow.', labelNames: ['flow'], registers, collect });
    this.heldEventBytes = new Gauge({ name: 'hollowtrees_queued_event_bytes', help: 'Approximate bytes of events held by runs queued, running or waiting for a retry, by flow (bounded by queueBytes and server.limits.maxQueuedBytes).', labelNames: ['flow'], registers, collect });
    this.runsWaitingForRetry = new Gauge({ name: 'hollowtrees_runs_waiting_for_retry', help: 'Runs that failed on retryable codes and wait for their next try (runRetry), by flow.', labelNames: ['flow'], registers });
    this.runRetries = new Counter({ name: 'hollowtrees_run_retries_total', help: 'Runs that failed on retryable codes and were scheduled to be tried again, by flow.', labelNames: ['flow'], registers });
    this.groupsHeld = new Gauge({ name: 'hollowtrees_groups_held', help: 'Groups held in memory (running, waiting for a retry, cooling down); bounded by state.maxGroups.', registers });
    this.stateWriteSeconds = new Histogram({ name: 'hollowtrees_state_write_seconds', help: 'From a run-state change to its write being durable (the window in which a crash loses it), per group commit.', buckets: LATENCY_BUCKETS, registers });
    this.stateDurable = new Gauge({ name: 'hollowtrees_state_durable', help: '1 while run state can be saved (always 1 in memory, which a restart loses), 0 while it cannot (readiness is false and events get 503).', registers });
  }

  /**
   * Adds what refreshes the computed gauges before each scrape; returns what removes it. Every
   * engine with runs adds its own: after a reload the old engine's queued runs still wait, and
   * count in the queue depth until it has drained.
   */
  beforeCollect(refresh: ScrapeRefresh): () => void {
    this.refreshers.add(refresh);
    return () => this.refreshers.delete(refresh);
  }

  /** Every flow whose series were made, those a reload took out included: their gauges go on being set, to 0 once idle. */
  get flows(): ReadonlySet<string> {
    return this.initialised;
  }

  /**
   * Makes the per-flow series exist at zero from the start. Only once per flow: after a reload,
   * the old engine's runs in flight still count in the gauges the new engine shares.
   */
  initFlows(flows: readonly string[]): void {
    for (const flow of flows) {
      if (this.initialised.has(flow)) continue;
      this.initialised.add(flow);
      for (const outcome of RUN_OUTCOMES) {
        this.flowRuns.inc({ flow, outcome }, 0);
        this.runDuration.zero({ flow, outcome });
      }
      this.receiptToFirstCall.zero({ flow });
      this.eventsDeduplicated.inc({ flow }, 0);
      for (const reason of ['queue_full', 'too_many_groups', 'shutting_down']) this.eventsDropped.inc({ flow, reason }, 0);
      this.runsWaitingForRetry.set({ flow }, 0);
      this.runRetries.inc({ flow }, 0);
      this.runsInProgress.set({ flow }, 0);
      this.groupsCoolingDown.set({ flow }, 0);
      this.queueDepth.set({ flow }, 0);
    }
  }
}
