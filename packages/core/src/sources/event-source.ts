import type { CloudEvent } from '@hollowtrees/grpcplugin';
import type { EventSink } from './event-sink.js';

/**
 * Flows a reload added (a renamed flow is one), or kept under their name with other `allowedEvents` or `filters`: by
 * name, each with whether its version before the reload matched an event (an added flow's: never).
 */
export type AddedFlows = ReadonlyMap<string, (event: CloudEvent) => boolean>;

/**
 * Where a source is in its life: `starting` until it receives, `running`,
 * `failing` while it cannot receive but keeps trying (e.g. a queue that answers
 * errors), `stopping` once it takes no new events, `stopped` once closed.
 */
export type SourceState = 'starting' | 'running' | 'failing' | 'stopping' | 'stopped';

/** One source as `/api/v1/status` shows it: a snapshot, times in ms since the epoch. */
export interface SourceStatus {
  /** Unique among the sources, e.g. `http` or the queue's configured name. */
  name: string;
  /** What the source is, e.g. `http` or `sqs`. */
  kind: string;
  state: SourceState;
  /** When the source last received events (a request, a batch of messages); absent before the first. */
  lastReceiveAt?: number;
  /** Requests or messages received and not yet answered or settled. */
  inFlight: number;
  /** Failures since start: refused requests, failed receives or deletes. */
  errors: number;
  /** The latest failure, for the operator; absent while there has been none. */
  lastError?: { at: number; message: string };
}

/**
 * A source of events: an HTTP receiver, a queue poller. Core starts every
 * configured source with the one sink and stops them on shutdown. A source
 * only knows the {@link EventSink} contract, never the engine; the engine never
 * knows a source.
 *
 * Shutdown has two steps so that events in flight are never lost: `stop()`
 * (take nothing new), then, once the engine finished or recorded its runs,
 * `close()` (release connections and timers).
 */
export interface EventSource {
  /** Unique among the sources, shown in logs and the status API. */
  readonly name: string;
  /** What the source is, e.g. `http` or `sqs`. */
  readonly kind: string;
  /** Starts receiving and handing events to `sink`; resolves once it receives (rejects when it cannot start). */
  start(sink: EventSink): Promise<void>;
  /**
   * Takes no new events from now on (new requests get 503, polling ends); what
   * it accepted stays accepted. An event already being received may still reach
   * the sink, which refuses it (`shutting_down`) once the engine stops.
   */
  stop(): Promise<void>;
  /** Releases everything (listeners, connections, pollers); called after `stop()` and after the engine's shutdown. */
  close(): Promise<void>;
  /** The source as the status API shows it now. */
  status(): SourceStatus;
  /**
   * A reload added or changed `flows`, which the engine already hands new events to. A source that announces a state
   * once (a Spot price surge still open) hands it to those whose version before did not match it, and to them alone:
   * they never acted on it, so cannot act twice. Optional.
   */
  flowsAdded?(flows: AddedFlows): void;
}
