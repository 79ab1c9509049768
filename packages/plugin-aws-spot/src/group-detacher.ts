import { DetachInstancesCommand, type AutoScalingGroup } from '@aws-sdk/client-auto-scaling';
import { CreateTagsCommand } from '@aws-sdk/client-ec2';
import { Code, deadlineOn, forEachBounded, PluginError, type Clock } from '@hollowtrees/grpcplugin';
import { abortReason, timeoutSignal } from './abortable.js';
import {
  completeTermination,
  describeGroup,
  lifecycleStates,
  notAMember,
  originalMinSize,
  restoreMinSize,
  setMinSize,
  tagOriginalMinSize,
  TERMINATING_WAIT,
  type GroupActionContext,
} from './asg-detach.js';
import { callAws, dryRunEc2 } from './aws-call.js';
import { toPluginError } from './aws-error.js';
import type { InstanceInfo } from './instance-lookup.js';
import type { ReplacementOutcome } from './replacement-outcome.js';
import { DETACHED_FROM_TAG, ORIGINAL_MIN_SIZE_TAG } from './tags.js';

/** How a {@link GroupDetacher} batches and paces its work. */
export interface GroupDetacherSettings extends GroupActionContext {
  /** How long the first detach of a batch waits for others to join it. */
  readonly coalesceMs: number;
  /** DetachInstances calls of one batch in flight at once. */
  readonly detachConcurrency: number;
  /** A call still queued this close to its deadline is answered RESOURCE_EXHAUSTED rather than left to time out. */
  readonly replyMarginMs: number;
  /** Told of each tag this process has put on an instance, so a description kept of it stays true. */
  readonly onTagged: (instanceId: string, key: string, value: string) => void;
  /** Reads the time against a call's deadline, and waits for its reply margin. */
  readonly clock: Clock;
}

/** One call's wish to see an instance leave the group. */
export interface DetachRequest {
  readonly instance: InstanceInfo;
  /** Whether a pending termination lifecycle action (`Terminating:Wait`) may be completed now. */
  readonly releaseHooks: boolean;
  /** The call's signal: it stops waiting when this aborts. */
  readonly signal: AbortSignal;
  /** The call's deadline, if it has one. */
  readonly deadline: Date | undefined;
}

interface Pending extends DetachRequest {
  state: 'queued' | 'running' | 'settled';
  settle(result: ReplacementOutcome | PluginError): void;
}

/** The calls of a running batch, by instance: two calls about one instance (an alert and a notice) share its outcome. */
interface BatchCalls {
  readonly byInstance: ReadonlyMap<string, readonly Pending[]>;
  readonly signal: AbortSignal;
  settle(id: string, result: ReplacementOutcome | PluginError): void;
}

/** The lifecycle states DetachInstances takes. */
const DETACHABLE = new Set(['InService', 'Standby']);
/** The states of a member whose detach has taken effect, on its way out of the group. */
const DETACHED = new Set(['Detaching', 'Detached']);

/** Instances one DetachInstances takes (the API's limit). */
const DETACH_BATCH = 20;
/** Instances tagged by one CreateTags. */
const TAG_BATCH = 100;
/** A batch's calls serve many callers, so the batch runs on its own clock. */
const BATCH_TIMEOUT_MS = 60_000;

const chunks = <T>(items: readonly T[], size: number): T[][] => Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));

/** A signal that aborts once every one of `signals` has (every caller of a batch has gone); `dispose` stops listening. */
function whenAllAborted(signals: readonly AbortSignal[]): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  let left = signals.filter((s) => !s.aborted).length;
  const onAbort = (event: Event): void => {
    if (--left === 0) controller.abort((event.target as AbortSignal).reason);
  };
  if (left === 0 && signals.length > 0) controller.abort(signals[0]!.reason);
  for (const s of signals) if (!s.aborted) s.addEventListener('abort', onAbort, { once: true });
  return { signal: controller.signal, dispose: () => signals.forEach((s) => s.removeEventListener('abort', onAbort)) };
}

/**
 * Detaches the members of one Auto Scaling group, in batches. The detaches
 * that arrive within `coalesceMs` of the first, and all that arrive while a
 * batch is running, form the next batch: one DescribeAutoScalingGroups reads
 * every member's lifecycle state and the group's MinSize, one CreateTags per
 * hundred instances marks them {@link DETACHED_FROM_TAG}, and DetachInstances
 * takes them twenty at a time (`detachConcurrency` calls at once), with the
 * desired capacity kept so the group launches replacements now.
 *
 * MinSize is lowered only when the batch needs it (Auto Scaling refuses a
 * detach that leaves fewer in service than MinSize, even with the desired
 * capacity kept), once for the whole batch, with the original recorded first
 * in the group tag {@link ORIGINAL_MIN_SIZE_TAG}; it is put back when no
 * detach of the group is left waiting, so a wave lowers and restores it once.
 * Batches of one group never overlap: they would restore each other's
 * lowered MinSize.
 *
 * A caller who goes (deadline, cancel) stops waiting at once; a batch whose
 * callers have all gone stops its calls and still restores MinSize. A call
 * still queued `replyMarginMs` before its deadline is answered
 * RESOURCE_EXHAUSTED (retryable) instead of timing out in the queue.
 */
export class GroupDetacher {
  private queue: Pending[] = [];
  private running: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Aborted by {@link close}: a batch still running stops its calls (its restore runs on its own signal). */
  private readonly closing = new AbortController();
  /** A restore the last batch left to the next one, done when no next batch comes. */
  private deferredRestore: { restoreTo: number | undefined; untag: string | undefined } | undefined;

  constructor(
    readonly groupName: string,
    private readonly settings: GroupDetacherSettings,
  ) {}

  /** Whether nothing is queued, scheduled or running (a batch's MinSize restore included): dropping it loses nothing. */
  get idle(): boolean {
    return this.queue.length === 0 && this.timer === undefined && this.running === undefined;
  }

  /** Detaches (or otherwise replaces) `request.instance`; see the class comment for when it answers. */
  detach(request: DetachRequest): Promise<ReplacementOutcome> {
    if (request.signal.aborted) return Promise.reject(abortReason(request.signal));
    if (this.closing.signal.aborted) return Promise.reject(abortReason(this.closing.signal));
    return new Promise<ReplacementOutcome>((resolve, reject) => {
      // Stops the wait for the call's reply margin once the call is settled.
      const margin = new AbortController();
      const onAbort = (): void => pending.settle(abortReason(request.signal));
      const pending: Pending = {
        ...request,
        state: 'queued',
        settle: (result) => {
          if (pending.state === 'settled') return;
          if (pending.state === 'queued') this.queue = this.queue.filter((p) => p !== pending);
          pending.state = 'settled';
          margin.abort();
          request.signal.removeEventListener('abort', onAbort);
          if (result instanceof PluginError) reject(result);
          else resolve(result);
        },
      };
      request.signal.addEventListener('abort', onAbort, { once: true });
      if (request.deadline) {
        const wait = deadlineOn(this.settings.clock, request.deadline) - this.settings.replyMarginMs - this.settings.clock.now();
        this.settings.clock.sleep(Math.max(0, wait), margin.signal).then(
          () => pending.state === 'queued' && pending.settle(this.stillQueued(pending)),
          () => {},
        );
      }
      this.queue.push(pending);
      this.schedule();
    });
  }

  private stillQueued(pending: Pending): PluginError {
    const ahead = this.queue.indexOf(pending);
    return new PluginError(
      Code.ResourceExhausted,
      `the detach of ${pending.instance.instanceId} from Auto Scaling group ${this.groupName} was still queued (${ahead} ahead of it${this.running !== undefined ? ', a batch in progress' : ''}) ` +
        `${this.settings.replyMarginMs} ms before the call's deadline; nothing was done for it, retry`,
    );
  }

  private schedule(): void {
    if (this.running || this.timer || this.closing.signal.aborted) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.drain().finally(() => {
        this.running = undefined;
        if (this.queue.length > 0) this.schedule();
      });
    }, this.settings.coalesceMs);
  }

  /**
   * Shuts the detacher down: detaches still queued are answered UNAVAILABLE
   * (nothing was done for them), a batch still running stops its calls, and
   * the returned promise settles once its MinSize restore has run (bounded by
   * the restore's own timeout), so the clients it uses can then be released.
   */
  async close(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.closing.abort(new PluginError(Code.Unavailable, `the plugin is shutting down: detaches from Auto Scaling group ${this.groupName} stopped; retry`));
    for (const p of [...this.queue]) p.settle(abortReason(this.closing.signal));
    await this.running;
  }

  /** Runs batches while detaches are waiting, then any restore the last batch left over. */
  private async drain(): Promise<void> {
    for (let batch = this.take(); batch.length > 0; batch = this.take()) {
      const callers = whenAllAborted(batch.map((p) => p.signal));
      try {
        await this.runBatch(batch, AbortSignal.any([callers.signal, this.closing.signal, timeoutSignal(BATCH_TIMEOUT_MS, `a detach batch of Auto Scaling group ${this.groupName}`)]));
      } catch (err) {
        for (const p of batch) p.settle(toPluginError(err, `detaching from Auto Scaling group ${this.groupName}`));
      } finally {
        callers.dispose();
      }
    }
    if (this.deferredRestore) {
      const { restoreTo, untag } = this.deferredRestore;
      this.deferredRestore = undefined;
      await restoreMinSize(this.settings, this.groupName, restoreTo, untag);
    }
  }

  private take(): Pending[] {
    const batch = this.queue;
    this.queue = [];
    for (const p of batch) p.state = 'running';
    return batch;
  }

  private async runBatch(batch: readonly Pending[], signal: AbortSignal): Promise<void> {
    const group = await describeGroup(this.settings, signal, this.groupName);
    const states = lifecycleStates(group);
    const byInstance = new Map<string, Pending[]>();
    for (const p of batch) byInstance.set(p.instance.instanceId, [...(byInstance.get(p.instance.instanceId) ?? []), p]);
    const calls: BatchCalls = { byInstance, signal, settle: (id, result) => byInstance.get(id)?.forEach((p) => p.settle(result)) };
    const ids = [...byInstance.keys()];
    const detachable = (id: string): boolean => DETACHABLE.has(states.get(id) ?? '');
    await Promise.all([this.detachAll(ids.filter(detachable), group, calls), this.settleUndetachable(ids.filter((id) => !detachable(id)), states, calls)]);
  }

  /**
   * Answers the instances that are not to be detached, by their lifecycle
   * state: one in `Terminating:Wait` gets its lifecycle actions completed
   * when one of its calls may release them, any other is answered at once.
   */
  private async settleUndetachable(ids: readonly string[], states: ReadonlyMap<string | undefined, string | undefined>, calls: BatchCalls): Promise<void> {
    await Promise.all(
      ids.map(async (id) => {
        const pendings = calls.byInstance.get(id) ?? [];
        const state = states.get(id);
        if (state !== TERMINATING_WAIT || !pendings.some((p) => p.releaseHooks)) {
          calls.settle(id, this.otherwise(pendings[0]!.instance, state));
          return;
        }
        const outcome = await completeTermination(this.settings, calls.signal, this.groupName, id).catch((err: unknown) =>
          toPluginError(err, `completing the lifecycle actions of ${id}`),
        );
        calls.settle(id, outcome);
      }),
    );
  }

  /** The answer for a member that is not to be detached now. */
  private otherwise(instance: InstanceInfo, state: string | undefined): ReplacementOutcome | PluginError {
    // Still listed on its way out (a load balancer draining it) after this plugin's detach, whose answer was lost: as when gone.
    const ownDetach = DETACHED.has(state ?? '') && instance.tags[DETACHED_FROM_TAG] === this.groupName;
    if (state === undefined || ownDetach) {
      try {
        return notAMember(instance);
      } catch (err) {
        return PluginError.from(err);
      }
    }
    if (state === TERMINATING_WAIT) {
      return {
        status: 'skipped',
        message: `${instance.instanceId} is terminating in Auto Scaling group ${this.groupName}: its lifecycle actions are left pending until the node is drained`,
        attributes: { auto_scaling_group: this.groupName },
      };
    }
    return {
      status: 'skipped',
      message: `${instance.instanceId} is ${state} in Auto Scaling group ${this.groupName}: nothing to detach`,
      attributes: { auto_scaling_group: this.groupName },
    };
  }

  private async detachAll(ids: readonly string[], group: AutoScalingGroup, calls: BatchCalls): Promise<void> {
    if (ids.length === 0) return;
    const { signal } = calls;
    const { clients, logger } = this.settings;
    const name = this.groupName;
    const currentMinSize = group.MinSize ?? 0;
    const { minSize, tagged } = originalMinSize(logger, name, group.Tags, currentMinSize);
    const inService = (group.Instances ?? []).filter((i) => i.LifecycleState === 'InService').length;
    const detaching = new Set(ids);
    const leaving = (group.Instances ?? []).filter((i) => i.LifecycleState === 'InService' && detaching.has(i.InstanceId ?? '')).length;
    // Auto Scaling refuses a detach that leaves fewer than MinSize in service, even with the desired capacity kept.
    const loweredMinSize = inService - leaving < currentMinSize ? inService - leaving : undefined;
    // Put back once the group has nothing more to detach: when lowered now, or still lowered by an earlier detach (the tag says so).
    const restoreTo = loweredMinSize !== undefined || minSize !== currentMinSize ? minSize : undefined;
    // Tagged before the lowering, unless the group already carries the original: a restore that never
    // happens (failure, crash, restart) then leaves the original on the group for any later detach.
    const tagValue = String(minSize);
    const writeTag = loweredMinSize !== undefined && tagged !== tagValue;
    // Removed once MinSize is the original again: the tag written now, or the one found on the group.
    const untag = writeTag ? tagValue : tagged;
    const attributes = { auto_scaling_group: name, replacement_requested: 'true' };
    const tagCommand = (chunk: string[]): CreateTagsCommand =>
      new CreateTagsCommand({ Resources: chunk, Tags: [{ Key: DETACHED_FROM_TAG, Value: name }], DryRun: this.settings.dryRun });

    if (this.settings.dryRun) {
      // Auto Scaling has no DryRun parameter: EC2 checks the tag call, the rest is logged.
      for (const chunk of chunks(ids, TAG_BATCH)) await dryRunEc2('EC2 CreateTags', signal, (o) => clients.ec2.send(tagCommand(chunk), o));
      for (const id of ids) {
        logger.info('dry run: would detach the instance keeping the desired capacity', {
          instance_id: id,
          auto_scaling_group: name,
          ...(restoreTo !== undefined && { min_size: minSize, lowered_min_size: loweredMinSize ?? currentMinSize }),
          ...(writeTag && { tag_group: `${ORIGINAL_MIN_SIZE_TAG}=${tagValue}` }),
          ...(untag !== undefined && { untag_group: `${ORIGINAL_MIN_SIZE_TAG}=${untag}` }),
        });
        calls.settle(id, { status: 'ok', message: `dry run: would detach ${id} from ${name} keeping its desired capacity`, attributes: { ...attributes, dry_run: 'true' } });
      }
      return;
    }

    for (const chunk of chunks(ids, TAG_BATCH)) {
      await callAws('EC2 CreateTags', signal, (o) => clients.ec2.send(tagCommand(chunk), o));
      for (const id of chunk) this.settings.onTagged(id, DETACHED_FROM_TAG, name);
    }
    // Outside the try: when the tag is not written, MinSize is not lowered either, and there is nothing to restore.
    if (writeTag) await tagOriginalMinSize(this.settings, signal, name, tagValue);
    const detached: string[] = [];
    const failed = new Map<string, PluginError>();
    try {
      if (loweredMinSize !== undefined) await setMinSize(this.settings, signal, name, loweredMinSize);
      await forEachBounded(chunks(ids, DETACH_BATCH), this.settings.detachConcurrency, (chunk) => this.detachChunk(chunk, signal, detached, failed));
    } catch (err) {
      for (const id of ids) if (!detached.includes(id)) failed.set(id, toPluginError(err, `detaching ${id} from ${name}`, signal));
    } finally {
      // Inside the finally also when the lowering itself was cut off: it may have landed all the same.
      this.deferredRestore = { restoreTo, untag };
    }
    // Before the restore: the group as the refusal left it tells whether another process raised MinSize.
    await this.recheck(failed, detached, calls, loweredMinSize);
    // More detaches of this group are waiting: the next batch reads the tag and restores after itself.
    const note = this.queue.length > 0 ? '' : await this.restoreNow();
    for (const id of detached) {
      calls.settle(id, {
        status: 'ok',
        message: `detached ${id} from ${name} keeping its desired capacity: the group launches a replacement${note}`,
        attributes,
      });
    }
    for (const [id, err] of failed) calls.settle(id, err);
  }

  /**
   * Reads the group again after DetachInstances failed for some of `failed`,
   * and settles each by what it shows. A detach whose answer was lost (a 5xx
   * after it took effect, so the SDK's re-send is refused: "not part of Auto
   * Scaling group") left the instance no member, or on its way out: detached.
   * A member that moved on between the batch's describe and its detach (a
   * spot reclaim put it in `Terminating:Wait`) is answered as the batch
   * answers that state. One still detachable keeps its refusal, unless the
   * batch lowered MinSize and the group shows it higher again: another process
   * (a replica detaching from the same group) restored it under this detach,
   * which Auto Scaling then refused for MinSize; that refusal becomes ABORTED,
   * so core retries instead of failing the run for good.
   * Instances settled here leave `failed`; a failed read leaves it as it is.
   */
  private async recheck(failed: Map<string, PluginError>, detached: string[], calls: BatchCalls, loweredMinSize: number | undefined): Promise<void> {
    if (failed.size === 0 || calls.signal.aborted) return;
    let group: AutoScalingGroup;
    try {
      group = await describeGroup(this.settings, calls.signal, this.groupName);
    } catch (err) {
      this.settings.logger.warn('could not read the group again after a refused detach: the refusal stands', { auto_scaling_group: this.groupName, err });
      return;
    }
    const states = lifecycleStates(group);
    const minSize = group.MinSize ?? 0;
    const raisedMeanwhile = loweredMinSize !== undefined && minSize > loweredMinSize;
    const movedOn: string[] = [];
    for (const [id, refusal] of [...failed]) {
      const state = states.get(id);
      if (state !== undefined && DETACHABLE.has(state)) {
        if (raisedMeanwhile && refusal.code === Code.InvalidArgument) {
          failed.set(
            id,
            new PluginError(
              Code.Aborted,
              `${refusal.message}; the MinSize of Auto Scaling group ${this.groupName} is ${minSize} again, above the ${loweredMinSize} this detach set: another process restored it meanwhile; retry`,
              { cause: refusal },
            ),
          );
        }
        continue;
      }
      this.settings.logger.info('a refused detach is settled by what the group shows', {
        instance_id: id,
        auto_scaling_group: this.groupName,
        lifecycle_state: state ?? 'no member',
        refusal: refusal.message,
      });
      failed.delete(id);
      if (state === undefined || DETACHED.has(state)) detached.push(id);
      else movedOn.push(id);
    }
    await this.settleUndetachable(movedOn, states, calls);
  }

  private async restoreNow(): Promise<string> {
    const { restoreTo, untag } = this.deferredRestore ?? {};
    this.deferredRestore = undefined;
    return restoreMinSize(this.settings, this.groupName, restoreTo, untag);
  }

  /** One DetachInstances; a refusal of a multi-instance call is retried one instance at a time, so one bad member fails alone. */
  private async detachChunk(chunk: string[], signal: AbortSignal, detached: string[], failed: Map<string, PluginError>): Promise<void> {
    try {
      await callAws('Auto Scaling DetachInstances', signal, (o) =>
        this.settings.clients.autoScaling.send(new DetachInstancesCommand({ AutoScalingGroupName: this.groupName, InstanceIds: chunk, ShouldDecrementDesiredCapacity: false }), o),
      );
      detached.push(...chunk);
    } catch (err) {
      const error = toPluginError(err, `detaching ${chunk.join(', ')} from ${this.groupName}`, signal);
      if (chunk.length > 1 && error.code === Code.InvalidArgument) {
        for (const id of chunk) await this.detachChunk([id], signal, detached, failed);
      } else {
        for (const id of chunk) failed.set(id, error);
      }
    }
  }
}
