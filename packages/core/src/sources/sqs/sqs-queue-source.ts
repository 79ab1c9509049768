import { createHash } from 'node:crypto';
import { ChangeMessageVisibilityBatchCommand, DeleteMessageBatchCommand, ReceiveMessageCommand, SQSClient, type Message } from '@aws-sdk/client-sqs';
import type { Logger } from 'pino';
import type { Clock, CloudEvent } from '@hollowtrees/grpcplugin';
import { wallAheadOf } from '@hollowtrees/grpcplugin/without-grpc';
import { sqsQueueName, type SqsQueueConfig } from '../../config/schema.js';
import { awsClientConfig } from '../aws-client-config.js';
import type { AcceptOptions, EventSink } from '../event-sink.js';
import type { EventSource, SourceState, SourceStatus } from '../event-source.js';
import { SourceHealth } from '../source-health.js';
import { UNAVAILABLE_BECAUSE } from '../../state/run-state-store.js';
import { ActedEvents } from './acted-events.js';
import { combineVerdicts, dispatchForVerdict, settledForGood, type Verdict } from './event-verdict.js';
import { noticeToEvents } from './notice-to-events.js';
import type { DeleteReason, SqsAction, SqsMetrics } from './sqs-metrics.js';
import { ReceiptBatcher } from './receipt-batcher.js';
import { regionOfQueueUrl, SqsRegionMissing } from './sqs-region.js';
import { VisibilityKeeper } from './visibility-keeper.js';

/** How long `close()` waits for the deletes of messages whose runs ended during the shutdown. */
const DELETE_GRACE_MS = 5_000;

/** Waits after a failed receive: 1 s, doubling to 30 s. */
const FIRST_BACKOFF_MS = 1_000;
const MAX_BACKOFF_MS = 30_000;

/**
 * The pause after a short poll (`waitTimeSeconds: 0`) that found nothing: SQS answers one at once, so without it
 * a poller of an empty queue would send receives back to back, each billed, hundreds a second.
 */
const EMPTY_SHORT_POLL_PAUSE_MS = 1_000;

/**
 * How often a message whose group another replica is running dispatches its event again, at most (a third of the
 * visibility timeout when shorter). The shared store answers from its cache, without a call, and learns that run's
 * end at its next list: paced by the visibility timeout instead, a queue whose timeout covers a long drain (10 min: a
 * look every 3 min 20 s) ran a group that failed or died there minutes late, after the notice's two minutes.
 */
const RUNNING_ELSEWHERE_RECHECK_MS = 1_000;

/**
 * How a waiting event is handed in again: no new delivery (its deduplication was counted at the first), and only to the
 * flows it waits for; a flow that acted on it here would act again once its cooldown ended. A sink that names no flow
 * (no `runningElsewhereIn`) is asked for every flow.
 */
const lookAgain = (flows: ReadonlySet<string>): AcceptOptions => (flows.size > 0 ? { again: true, flows } : { again: true });

/** How an event is first handed in: not to the flows that settled it for good here before (a redelivery's). */
const firstLook = (settled: ReadonlySet<string>): AcceptOptions => (settled.size > 0 ? { settled } : {});

/**
 * A look again's verdict for an event that waited for `flows`, `matched` of which take it now: fewer than all of them (a
 * configuration reload renamed, removed or changed one) says nothing of the run on another replica it waited for there.
 * Deleted once the flows left are done with it (as unmatched when none is), the notice would be lost if that run failed
 * or its replica died; left, it is handed out again at once and dispatched as new to the flows configured now (a renamed
 * flow's groups are new groups, as after a restart).
 */
function afterLook(verdict: Verdict, flows: ReadonlySet<string>, matched: number): Verdict {
  if (verdict.action === 'leave') return verdict;
  // A sink that names no flow (flows empty) tells only that none took it.
  const gone = flows.size > 0 ? matched < flows.size : verdict.action === 'delete' && verdict.reason === 'unmatched';
  if (!gone) return verdict;
  const named = flows.size > 0 ? `flows ${[...flows].join(', ')} ` : 'the flows ';
  return { action: 'leave', now: true, why: `${named}it waited for no longer all take it (a configuration reload renamed, removed or changed them)` };
}

/**
 * False where Node refuses MD5 (OpenSSL in FIPS mode): bodies then go unchecked, which TLS already protects on the
 * way; checked there, every message would fail its handling and never be acted on.
 */
const MD5_AVAILABLE = ((): boolean => {
  try {
    createHash('md5');
    return true;
  } catch {
    return false;
  }
})();

/**
 * Whether a message's body is what SQS stored: its MD5 matches `MD5OfBody`. Checked here, one message at a time, not
 * by the SDK, whose check fails the whole receive: the notices received with a corrupted body would be hidden for a
 * visibility timeout, received with it again and again, and pushed to the dead-letter queue unacted on.
 */
function intact(message: Message): boolean {
  return message.MD5OfBody === undefined || !MD5_AVAILABLE || createHash('md5').update(message.Body ?? '', 'utf8').digest('hex') === message.MD5OfBody;
}

/** How often pollers that refuse to receive (run state not durable, no flow with room) look again. */
const REFUSING_RECHECK_MS = 250;

/**
 * One EventBridge → SQS queue as an event source: its pollers long-poll for
 * messages on an `@aws-sdk/client-sqs` client with the default credential
 * chain; each message becomes events handed to the sink, stays hidden while
 * their runs are in progress, and is deleted only when
 * {@link dispatchForVerdict} says so; otherwise it is left for SQS to hand
 * out again once its visibility timeout runs out.
 */
export class SqsQueueSource implements EventSource {
  readonly kind = 'sqs';
  private client: SQSClient | undefined;
  private keeper: VisibilityKeeper | undefined;
  private deleter: ReceiptBatcher | undefined;
  /** Makes messages visible at once (visibility 0). */
  private releaser: ReceiptBatcher | undefined;
  private sink: EventSink | undefined;
  private region = '';
  private readonly stopping = new AbortController();
  private readonly pollers: Promise<void>[] = [];
  private readonly inProgress = new Set<Promise<void>>();
  /**
   * The newest receipt handle of each message in progress, by message id: SQS
   * hands a message out again when its extensions failed, and only the newest
   * handle deletes it or keeps it hidden.
   */
  private readonly receipts = new Map<string, { handle: string }>();
  /** Events whose messages were settled for good here: a copy handed out again is deleted, not acted on again. */
  private readonly acted = new ActedEvents();
  /** Pollers waiting for a message in progress to end (maxInFlight reached). */
  private readonly waitingForRoom = new Set<() => void>();
  /** Messages the pollers' receives in flight may bring: room in `maxInFlight` taken before they answer. */
  private asked = 0;
  /** Why the pollers receive nothing now (see {@link refusal}); undefined while they receive. */
  private refusing: string | undefined;
  private state: SourceState = 'starting';
  private readonly health: SourceHealth;

  constructor(
    private readonly config: SqsQueueConfig,
    /** Its index in `sources.sqs`, for errors that name the entry. */
    private readonly index: number,
    private readonly metrics: SqsMetrics,
    private readonly logger: Logger,
    private readonly clock: Clock,
  ) {
    this.health = new SourceHealth(wallAheadOf(clock));
    metrics.initQueue(this.name);
  }

  /** The queue's name: the last segment of its URL. */
  get name(): string {
    return sqsQueueName(this.config);
  }

  async start(sink: EventSink): Promise<void> {
    const configured = this.config.region ?? regionOfQueueUrl(this.config.url);
    // md5 off: the SDK's check fails a whole receive for one corrupted body, and every notice received with it (see intact()).
    this.client = new SQSClient({ ...awsClientConfig({ region: configured, endpoint: this.config.endpoint, callTimeout: this.config.callTimeout, longPolls: this.config.pollers }), md5: false });
    // Without a region anywhere the SDK fails every call; asking now makes that a configuration error at start.
    const region = configured ?? (await this.client.config.region().catch(() => undefined));
    if (!region) throw new SqsRegionMissing(this.index);
    this.region = region;
    this.sink = sink;
    const client = this.client;
    const QueueUrl = this.config.url;
    this.deleter = new ReceiptBatcher((Entries) => client.send(new DeleteMessageBatchCommand({ QueueUrl, Entries })));
    this.releaser = new ReceiptBatcher((entries) => client.send(new ChangeMessageVisibilityBatchCommand({ QueueUrl, Entries: entries.map((e) => ({ ...e, VisibilityTimeout: 0 })) })));
    this.keeper = new VisibilityKeeper(this.client, this.config.url, this.config.visibilityTimeout, this.logger.child({ queue: this.name }), (err) => this.failed('ChangeMessageVisibilityBatch', err));
    for (let i = 0; i < this.config.pollers; i++) this.pollers.push(this.poll());
    this.state = 'running';
    // Named by its entry: the URL may come from ${VAR}, and nothing of such a value is logged at start.
    this.logger.info({ source: `sources.sqs[${this.index}]`, pollers: this.config.pollers, visibilityTimeoutMs: this.config.visibilityTimeout }, 'receiving from SQS queue');
  }

  /**
   * Stops receiving; messages in progress stay hidden while their runs go on, until {@link close}. A message left
   * from now on (its run failed or was cut short, or it waited for another replica's run) is made visible at once.
   */
  async stop(): Promise<void> {
    this.state = 'stopping';
    this.stopping.abort();
    this.wakePollers();
    await Promise.all(this.pollers);
  }

  /**
   * Waits a few seconds for the deletes of messages whose runs ended, then
   * stops extending the rest: they reappear on the queue after their
   * visibility timeout, for this process after a restart or another replica.
   */
  async close(): Promise<void> {
    await this.stop();
    const grace = new AbortController();
    // Settled, not fulfilled: a handling that failed is logged by track(), and must not leave the source half closed.
    await Promise.race([Promise.allSettled(this.inProgress), this.clock.sleep(DELETE_GRACE_MS, grace.signal).catch(() => {})]);
    grace.abort();
    this.keeper?.stop();
    this.client?.destroy();
    this.state = 'stopped';
  }

  status(): SourceStatus {
    return this.health.status(this.name, this.kind, this.state, this.inProgress.size);
  }

  private async poll(): Promise<void> {
    let backoff = FIRST_BACKOFF_MS;
    const signal = this.stopping.signal;
    while (!signal.aborted) {
      const refusal = this.refusal();
      if (refusal) {
        if (this.refusing === undefined) this.logger.warn({ queue: this.name, why: refusal }, 'not receiving from the SQS queue: events would be refused; its messages stay on the queue, visible to other replicas');
        this.refusing = refusal;
        await this.clock.sleep(REFUSING_RECHECK_MS, signal).catch(() => {});
        continue;
      }
      if (this.refusing !== undefined) this.logger.info({ queue: this.name }, 'receiving from the SQS queue again');
      this.refusing = undefined;
      const room = this.config.maxInFlight - this.inProgress.size - this.asked;
      if (room <= 0) {
        await new Promise<void>((resolve) => this.waitingForRoom.add(resolve));
        continue;
      }
      const asking = Math.min(this.config.batchSize, room);
      // Counted before the receive: the other pollers must not ask for the same room while this one waits.
      this.asked += asking;
      let messages: Message[];
      try {
        const answer = await this.client!.send(
          new ReceiveMessageCommand({
            QueueUrl: this.config.url,
            MaxNumberOfMessages: asking,
            WaitTimeSeconds: this.config.waitTimeSeconds,
            VisibilityTimeout: this.config.visibilityTimeout / 1000,
            MessageSystemAttributeNames: ['ApproximateReceiveCount'],
          }),
          // A long poll answers after up to waitTimeSeconds by design: its bound is beyond that.
          { abortSignal: signal, requestTimeout: this.config.waitTimeSeconds * 1000 + this.config.callTimeout },
        );
        messages = answer.Messages ?? [];
        backoff = FIRST_BACKOFF_MS;
        if (!signal.aborted) this.state = 'running';
      } catch (err) {
        if (signal.aborted) break;
        this.failed('ReceiveMessage', err);
        this.logger.error({ err, queue: this.name, retryInMs: backoff }, 'could not receive from the SQS queue; trying again');
        this.state = 'failing';
        await this.clock.sleep(backoff, signal).catch(() => {});
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
        continue;
      } finally {
        this.asked -= asking;
        // Room asked for and not filled is free again for a poller waiting on it.
        this.wakePollers();
      }
      const receivedAt = this.clock.now();
      if (messages.length > 0) this.health.received(receivedAt);
      for (const message of messages) this.track(this.handle(message, receivedAt));
      if (messages.length === 0 && this.config.waitTimeSeconds === 0) await this.clock.sleep(EMPTY_SHORT_POLL_PAUSE_MS, signal).catch(() => {});
    }
  }

  /**
   * Why no message should be received now, as the sink contract asks of a
   * source: the run state cannot be saved, or no flow has room. Received, each
   * would only be left, and every receive counts towards the queue's
   * `maxReceiveCount`: a notice would reach the dead-letter queue unacted on.
   */
  private refusal(): string | undefined {
    const sink = this.sink!;
    if (!sink.durable) return UNAVAILABLE_BECAUSE[sink.backend];
    return sink.noRoom?.();
  }

  private track(work: Promise<void>): void {
    this.inProgress.add(work);
    this.metrics.inFlight.set({ queue: this.name }, this.inProgress.size);
    // handle() answers every failure it expects; anything else must not end the process with the other
    // sources and flows. The message is not deleted: it comes back after its visibility timeout.
    void work.catch((err: unknown) => {
      this.noteError(`handling a message: ${(err as Error).message}`);
      this.logger.error({ err, queue: this.name }, 'unexpected error handling an SQS message; it is left on the queue');
    }).finally(() => {
      this.inProgress.delete(work);
      this.metrics.inFlight.set({ queue: this.name }, this.inProgress.size);
      this.wakePollers();
    });
  }

  private wakePollers(): void {
    for (const wake of this.waitingForRoom) wake();
    this.waitingForRoom.clear();
  }

  private async handle(message: Message, receivedAt: number): Promise<void> {
    const labels = { queue: this.name };
    const fields = { queue: this.name, messageId: message.MessageId };
    this.metrics.received.inc(labels);
    const receiveCount = Number(message.Attributes?.['ApproximateReceiveCount'] ?? '1');
    if (receiveCount > 1) this.metrics.redelivered.inc(labels);
    const handle = message.ReceiptHandle;
    if (!handle) return;
    const id = message.MessageId;
    const current = id === undefined ? undefined : this.receipts.get(id);
    if (current) {
      // Handled as a message of its own, the copy would be deduplicated against the run and deleted with the newest
      // handle, which deletes the message: a run that then fails would leave nothing to redeliver.
      this.keeper!.replace(current.handle, handle);
      current.handle = handle;
      this.logger.warn({ ...fields, receiveCount }, 'SQS message handed out again while its events are in progress here (its visibility lapsed); its run goes on under the new receipt');
      return;
    }
    const receipt = { handle };
    if (id !== undefined) this.receipts.set(id, receipt);
    try {
      await this.settle(message, receipt, receivedAt, receiveCount);
    } finally {
      this.forget(id, receipt);
    }
  }

  /** Ends `receipt`'s hold on its message id: a copy received from then on is handled as a message of its own. */
  private forget(id: string | undefined, receipt: { handle: string }): void {
    // A copy received after an earlier forget may hold the id now: its entry is its own.
    if (id !== undefined && this.receipts.get(id) === receipt) this.receipts.delete(id);
  }

  /** Dispatches the message's events and deletes or leaves it by their verdict, under its newest receipt handle. */
  private async settle(message: Message, receipt: { handle: string }, receivedAt: number, receiveCount: number): Promise<void> {
    const labels = { queue: this.name };
    const fields = { queue: this.name, messageId: message.MessageId };
    const outcome = intact(message) ? noticeToEvents(message.Body ?? '', { region: this.region }) : undefined;
    let verdict: Verdict;
    if (outcome === undefined) {
      this.logger.error({ ...fields, receiveCount, md5OfBody: message.MD5OfBody }, 'SQS message body does not match its MD5 (MD5OfBody): not acted on; left for a redelivery, and for the dead-letter queue if it stays so');
      verdict = { action: 'leave', why: 'its body does not match its MD5 (MD5OfBody)' };
    } else if (outcome.kind === 'unprocessable') {
      this.metrics.parseFailures.inc(labels);
      this.logger.error({ ...fields, receiveCount, reason: outcome.reason }, 'SQS message is not a notice Hollowtrees can read; deleting it');
      verdict = { action: 'delete', reason: 'unprocessable' };
    } else if (outcome.kind === 'ignored') {
      this.logger.info({ ...fields, reason: outcome.reason }, 'SQS message needs no action; deleting it');
      verdict = { action: 'delete', reason: 'ignored' };
    } else if (this.acted.all(outcome.events.map((e) => e.id))) {
      // Dispatched again it would be deduplicated only while a cooldown holds its group: a flow without one would act again.
      this.logger.warn({ ...fields, receiveCount }, 'SQS message handed out again after this core acted on it (its delete failed, or SQS delivered it twice); deleted without acting again');
      verdict = { action: 'delete', reason: 'deduplicated' };
    } else {
      // Of a message left for a failed run, only the events, and of an event only the flows, not settled here go again:
      // dispatched whole, a Health notice's instance acted on, or a spot warning to a second flow that acted, would run
      // again where no cooldown holds its group.
      const events = outcome.events.filter((e) => !this.acted.has(e.id));
      this.keeper!.hold(receipt.handle, message.MessageId);
      try {
        const dispatched = await this.dispatchUntilKnown(events, receivedAt, fields);
        verdict = dispatched.verdict;
        events.forEach((e, i) => (settledForGood(dispatched.each[i]!) ? this.acted.add([e.id]) : this.acted.addFlows(e.id, dispatched.settledIn[i]!)));
        // Kept hidden until its delete is answered (the SDK's tries of a slow SQS take seconds): lapsed meanwhile, it
        // would be received again under handles the delete does not name, each receive counted towards maxReceiveCount.
        if (verdict.action === 'delete') {
          await this.delete(receipt, verdict.reason, fields, receiveCount);
          return;
        }
      } finally {
        this.keeper!.release(receipt.handle);
      }
    }
    if (verdict.action !== 'delete') {
      this.metrics.left.inc(labels);
      const now = verdict.action === 'leave' && verdict.now === true;
      this.logger.warn({ ...fields, receiveCount, why: verdict.why }, `SQS message left on the queue; it is handed out again ${now ? 'at once' : 'after its visibility timeout'}`);
      if (this.stopping.signal.aborted) await this.releaseAtStop(message.MessageId, receipt, fields);
      else if (now) await this.release(message.MessageId, receipt, fields, 'the flows it waited for changed');
      return;
    }
    await this.delete(receipt, verdict.reason, fields, receiveCount);
  }

  /** Deletes a message under its newest receipt handle, counted by why. */
  private async delete(receipt: { handle: string }, reason: DeleteReason, fields: Record<string, unknown>, receiveCount: number): Promise<void> {
    try {
      // SQS answers a delete under a handle older than the newest with success and deletes nothing: a copy received
      // while the delete was on its way (renewals lapsed) would come back after its visibility timeout and run again.
      let sent: string;
      do {
        sent = receipt.handle;
        await this.deleter!.send(sent);
      } while (receipt.handle !== sent);
      this.metrics.deleted.inc({ queue: this.name, reason });
      if (reason === 'not_found') this.logger.warn({ ...fields, receiveCount }, 'a plugin does not know the instance of this notice (another cluster\'s, or gone); deleted the message');
    } catch (err) {
      // The message comes back after its visibility timeout: one acted on finds its group cooling down, deduplicated and
      // deleted; any other is deleted again for the same reason.
      this.failed('DeleteMessageBatch', err);
      const msg = reason === 'acted' ? 'could not delete an SQS message that was acted on; it will be redelivered and deduplicated' : `could not delete an SQS message (${reason}); it will be redelivered and deleted again`;
      this.logger.error({ ...fields, reason, err }, msg);
    }
  }

  /**
   * Dispatches a message's events, then again every {@link RUNNING_ELSEWHERE_RECHECK_MS} those whose group another
   * replica is running, until that run is known to have ended or the source stops. The message stays hidden meanwhile: left,
   * it would be received again every visibility timeout, and every receive counts towards the queue's
   * `maxReceiveCount`, so a long drain elsewhere would push the notice to the dead-letter queue.
   */
  private async dispatchUntilKnown(
    events: readonly CloudEvent[],
    receivedAt: number,
    fields: Record<string, unknown>,
  ): Promise<{ verdict: Verdict; each: readonly Verdict[]; settledIn: ReadonlyArray<ReadonlySet<string>> }> {
    const verdicts: Verdict[] = [];
    /** By event, the flows whose run settled it for good, over every round. */
    const settledIn = events.map(() => new Set<string>());
    /** By event, the flows a look again asks: those whose run is in progress on another replica. */
    const waitingIn: Array<ReadonlySet<string>> = [];
    let pending = events.map((_, i) => i);
    let firstCallAt = Infinity;
    let verdict: Verdict;
    const recheckMs = Math.min(this.keeper!.intervalMs, RUNNING_ELSEWHERE_RECHECK_MS);
    for (let round = 0; ; round++) {
      const progress = pending.map((i) => dispatchForVerdict(this.sink!, events[i]!, receivedAt, round === 0 ? firstLook(this.acted.flowsOf(events[i]!.id)) : lookAgain(waitingIn[i]!)));
      const ended = await Promise.all(progress.map((p) => p.verdict));
      pending.forEach((i, n) => {
        verdicts[i] = round === 0 ? ended[n]! : afterLook(ended[n]!, waitingIn[i]!, progress[n]!.matched);
        waitingIn[i] = progress[n]!.waitingIn();
        for (const flow of progress[n]!.settledIn()) settledIn[i]!.add(flow);
      });
      for (const p of progress) firstCallAt = Math.min(firstCallAt, p.firstCallAt() ?? Infinity);
      verdict = combineVerdicts(verdicts);
      if (verdict.action !== 'wait' || this.stopping.signal.aborted) break;
      if (round === 0) this.logger.info({ ...fields, why: verdict.why, recheckMs }, 'SQS message kept hidden until a run on another replica ends');
      await this.clock.sleep(recheckMs, this.stopping.signal).catch(() => {});
      // Stopped mid-wait: dispatched now, the event could start a run here as core shuts down.
      if (this.stopping.signal.aborted) break;
      pending = pending.filter((i) => verdicts[i]!.action === 'wait');
    }
    if (firstCallAt !== Infinity) this.metrics.receiveToFirstCall.observe({ queue: this.name }, (firstCallAt - receivedAt) / 1000);
    return { verdict, each: verdicts, settledIn };
  }

  /**
   * Makes a message left while the source stops visible at once, for another replica or this one's restart: left
   * hidden, a spot notice would lose up to a visibility timeout of its two minutes. Only once this source's own
   * receives have ended: a long poll still open would take the message straight back, hide it for a timeout, and
   * count a receive towards the queue's `maxReceiveCount`.
   */
  private async releaseAtStop(id: string | undefined, receipt: { handle: string }, fields: Record<string, unknown>): Promise<void> {
    await Promise.all(this.pollers);
    await this.release(id, receipt, fields, 'the source is stopping');
  }

  /** Makes a message visible at once under its newest receipt handle, letting go of its id first; `because` ends its log line. */
  private async release(id: string | undefined, receipt: { handle: string }, fields: Record<string, unknown>, because: string): Promise<void> {
    // SQS may hand the message out again before it answers: that copy is to be dispatched, not taken for one received
    // while its events are in progress here (left hidden, it would wait a visibility timeout).
    this.forget(id, receipt);
    try {
      await this.releaser!.send(receipt.handle);
      this.logger.info(fields, `SQS message made visible again at once: ${because}`);
    } catch (err) {
      this.failed('ChangeMessageVisibilityBatch', err);
      this.logger.warn({ ...fields, err }, `could not make an SQS message visible at once (${because}); it is handed out again after its visibility timeout`);
    }
  }

  private failed(action: SqsAction, err: unknown): void {
    this.metrics.apiErrors.inc({ queue: this.name, action });
    this.noteError(`${action}: ${(err as Error).name}: ${(err as Error).message}`);
  }

  /** Counts an error in the source's status and keeps it as the last one. */
  private noteError(message: string): void {
    this.health.failed(this.clock.now(), message);
  }
}
