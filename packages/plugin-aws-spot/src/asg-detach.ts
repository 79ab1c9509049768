import {
  CompleteLifecycleActionCommand,
  CreateOrUpdateTagsCommand,
  DeleteTagsCommand,
  DescribeAutoScalingGroupsCommand,
  DescribeLifecycleHooksCommand,
  UpdateAutoScalingGroupCommand,
  type AutoScalingGroup,
  type TagDescription,
} from '@aws-sdk/client-auto-scaling';
import { Code, PluginError, type PluginLogger as Logger } from '@hollowtrees/grpcplugin';
import { timeoutSignal } from './abortable.js';
import { callAws } from './aws-call.js';
import { isAwsError } from './aws-error.js';
import type { AwsClients } from './aws-clients.js';
import type { InstanceInfo } from './instance-lookup.js';
import type { ReplacementOutcome } from './replacement-outcome.js';
import { AUTO_SCALING_GROUP_TAG, DETACHED_FROM_TAG, ORIGINAL_MIN_SIZE_TAG } from './tags.js';

const TERMINATING = 'autoscaling:EC2_INSTANCE_TERMINATING';
/** The lifecycle state of a member whose termination waits on its lifecycle hooks. */
export const TERMINATING_WAIT = 'Terminating:Wait';
/** How Auto Scaling refuses to complete a lifecycle action that is not pending (completed, timed out, or never started). */
const NO_ACTIVE_ACTION = /No active Lifecycle Action found/;

/** What the group actions need: the clients, the log, and whether to act or only check and log. */
export interface GroupActionContext {
  readonly clients: AwsClients;
  readonly logger: Logger;
  readonly dryRun: boolean;
}

/**
 * The answer for an instance its group no longer lists: already detached (it
 * carries {@link DETACHED_FROM_TAG}), or terminated by its group (Auto
 * Scaling's tag only): nothing to do. Never a member at all: FAILED_PRECONDITION.
 */
export function notAMember(instance: InstanceInfo): ReplacementOutcome {
  const detachedFrom = instance.tags[DETACHED_FROM_TAG];
  if (detachedFrom !== undefined) {
    return {
      status: 'ok',
      message: `${instance.instanceId} was already detached from Auto Scaling group ${detachedFrom}`,
      attributes: { auto_scaling_group: detachedFrom, replacement_requested: 'true' },
    };
  }
  const formerGroup = instance.tags[AUTO_SCALING_GROUP_TAG];
  if (formerGroup !== undefined) {
    return {
      status: 'skipped',
      message: `${instance.instanceId} is no longer in Auto Scaling group ${formerGroup} (${instance.state ?? 'unknown state'}): the group keeps its own capacity`,
      attributes: { auto_scaling_group: formerGroup },
    };
  }
  throw new PluginError(Code.FailedPrecondition, `${instance.instanceId} is not in an Auto Scaling group: the asg-detach strategy cannot replace it`);
}

/**
 * The group as DescribeAutoScalingGroups shows it: its members' lifecycle
 * states, MinSize and tags.
 * @throws PluginError NOT_FOUND when the group does not exist.
 */
export async function describeGroup(ctx: GroupActionContext, signal: AbortSignal, groupName: string): Promise<AutoScalingGroup> {
  const described = await callAws('Auto Scaling DescribeAutoScalingGroups', signal, (o) =>
    ctx.clients.autoScaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [groupName] }), o),
  );
  const group = described.AutoScalingGroups?.find((g) => g.AutoScalingGroupName === groupName);
  if (!group) throw new PluginError(Code.NotFound, `Auto Scaling group ${groupName} does not exist`);
  return group;
}

/** The lifecycle state of each member of `group`, by instance id; an instance it does not list is no member. */
export const lifecycleStates = (group: AutoScalingGroup): Map<string | undefined, string | undefined> =>
  new Map((group.Instances ?? []).map((i) => [i.InstanceId, i.LifecycleState]));

/**
 * The group's MinSize before any detach lowered it, and the value of its
 * {@link ORIGINAL_MIN_SIZE_TAG} tag if it carries one. The tag is written
 * before a lowering and removed after the restore, so on entry it means an
 * earlier detach (of any process or replica) did not put MinSize back: while
 * the group's MinSize is below the tag, the tag is the original (reading the
 * lowered value as the original would make the lowering stick, and a next
 * lowering would compound it). A MinSize at or above the tag was set since (by
 * hand, or by a restore whose untagging failed): it is the original, and the
 * tag is stale. So is a value that is not a number. A stale tag is replaced or
 * removed by this detach.
 */
export function originalMinSize(
  logger: Logger,
  groupName: string,
  tags: readonly TagDescription[] | undefined,
  currentMinSize: number,
): { minSize: number; tagged: string | undefined } {
  const tagged = tags?.find((t) => t.Key === ORIGINAL_MIN_SIZE_TAG)?.Value;
  const recorded = tagged !== undefined && /^\d+$/.test(tagged) ? Number(tagged) : undefined;
  if (recorded === undefined || recorded <= currentMinSize) {
    if (tagged !== undefined) {
      logger.info('the group carries a stale original MinSize tag: this detach replaces or removes it', {
        auto_scaling_group: groupName,
        tag: `${ORIGINAL_MIN_SIZE_TAG}=${tagged}`,
        current_min_size: currentMinSize,
      });
    }
    return { minSize: currentMinSize, tagged };
  }
  logger.warn('the group MinSize is still lowered by an earlier detach: restoring the original after this one', {
    auto_scaling_group: groupName,
    min_size: recorded,
    current_min_size: currentMinSize,
  });
  return { minSize: recorded, tagged };
}

/** Sets the group's MinSize, leaving its desired capacity alone. */
export function setMinSize(ctx: GroupActionContext, signal: AbortSignal, groupName: string, minSize: number): Promise<unknown> {
  return callAws('Auto Scaling UpdateAutoScalingGroup', signal, (o) =>
    ctx.clients.autoScaling.send(new UpdateAutoScalingGroupCommand({ AutoScalingGroupName: groupName, MinSize: minSize }), o),
  );
}

/** The group's {@link ORIGINAL_MIN_SIZE_TAG} as CreateOrUpdateTags and DeleteTags name it. */
function originalMinSizeTag(groupName: string, value: string): { ResourceId: string; ResourceType: string; Key: string; Value: string } {
  return { ResourceId: groupName, ResourceType: 'auto-scaling-group', Key: ORIGINAL_MIN_SIZE_TAG, Value: value };
}

/** Records the original MinSize on the group, before it is lowered. */
export function tagOriginalMinSize(ctx: GroupActionContext, signal: AbortSignal, groupName: string, value: string): Promise<unknown> {
  return callAws('Auto Scaling CreateOrUpdateTags', signal, (o) =>
    ctx.clients.autoScaling.send(new CreateOrUpdateTagsCommand({ Tags: [{ ...originalMinSizeTag(groupName, value), PropagateAtLaunch: false }] }), o),
  );
}

/** How long restoring MinSize and removing the tag may take together, retries included. */
const RESTORE_MIN_SIZE_TIMEOUT_MS = 10_000;

/**
 * Puts MinSize back (when `restoreTo` is set), then removes the tag (when
 * `untag` is set). It runs with its own bounded signal, not a call's: a
 * deadline or a cancel that cut the detach short must not also cut the
 * restore, or MinSize would stay lowered. The detach may have happened by now,
 * so a failure here does not fail the call (a retry would find nothing to
 * detach). A failed restore is logged and returned as a note for the answer's
 * message; the tag stays, so the next detach from the group restores the
 * original. A failed untagging is only logged: MinSize is the original again,
 * and the next detach takes the tag for stale.
 */
export async function restoreMinSize(ctx: GroupActionContext, groupName: string, restoreTo: number | undefined, untag: string | undefined): Promise<string> {
  if (restoreTo === undefined && untag === undefined) return '';
  const signal = timeoutSignal(RESTORE_MIN_SIZE_TIMEOUT_MS, `restoring the MinSize of Auto Scaling group ${groupName}`);
  if (restoreTo !== undefined) {
    try {
      await setMinSize(ctx, signal, groupName, restoreTo);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      ctx.logger.warn('could not restore the group MinSize after the detach: the group keeps the original in its tag', {
        auto_scaling_group: groupName,
        min_size: restoreTo,
        tag: `${ORIGINAL_MIN_SIZE_TAG}=${restoreTo}`,
        err,
      });
      return `; restoring MinSize ${restoreTo} failed, set it back by hand or let the next detach from the group do it (tag ${ORIGINAL_MIN_SIZE_TAG}=${restoreTo}) (${reason})`;
    }
  }
  if (untag !== undefined) {
    try {
      // With the value: a tag another replica has rewritten since is not this detach's to remove.
      await callAws('Auto Scaling DeleteTags', signal, (o) => ctx.clients.autoScaling.send(new DeleteTagsCommand({ Tags: [originalMinSizeTag(groupName, untag)] }), o));
    } catch (err) {
      ctx.logger.warn('could not remove the original MinSize tag from the group', {
        auto_scaling_group: groupName,
        tag: `${ORIGINAL_MIN_SIZE_TAG}=${untag}`,
        err,
      });
    }
  }
  return '';
}

/**
 * For a member in `Terminating:Wait` (a termination lifecycle hook is pending;
 * Auto Scaling does not detach such an instance): completes the group's
 * termination hooks with CONTINUE, so the group replaces it without waiting
 * for the hook's heartbeat timeout.
 *
 * Idempotent, as core's retries and the SDK's re-sends need: a hook whose
 * action is no longer active (completed by an earlier try whose answer was
 * lost, by an earlier call, or by someone else) is logged and passed over.
 * When no hook was completed by this call, the group is read again to confirm
 * the member has moved on.
 * @throws PluginError ABORTED (retryable) when it has not: still
 * `Terminating:Wait` with no action active to complete.
 */
export async function completeTermination(ctx: GroupActionContext, signal: AbortSignal, groupName: string, instanceId: string): Promise<ReplacementOutcome> {
  const { clients, logger } = ctx;
  const described = await callAws('Auto Scaling DescribeLifecycleHooks', signal, (o) =>
    clients.autoScaling.send(new DescribeLifecycleHooksCommand({ AutoScalingGroupName: groupName }), o),
  );
  const hooks = (described.LifecycleHooks ?? []).filter((h) => h.LifecycleTransition === TERMINATING).flatMap((h) => h.LifecycleHookName ?? []);
  const attributes = { auto_scaling_group: groupName, replacement_requested: 'true', lifecycle_hooks_completed: hooks.join(',') };
  if (ctx.dryRun) {
    logger.info('dry run: would complete the termination lifecycle actions with CONTINUE', { instance_id: instanceId, auto_scaling_group: groupName, hooks });
    return { status: 'ok', message: `dry run: would complete ${hooks.join(', ')} for ${instanceId} with CONTINUE`, attributes: { ...attributes, dry_run: 'true' } };
  }
  const completed: string[] = [];
  const inactive: string[] = [];
  for (const hook of hooks) {
    try {
      await callAws('Auto Scaling CompleteLifecycleAction', signal, (o) =>
        clients.autoScaling.send(
          new CompleteLifecycleActionCommand({ AutoScalingGroupName: groupName, LifecycleHookName: hook, InstanceId: instanceId, LifecycleActionResult: 'CONTINUE' }),
          o,
        ),
      );
      completed.push(hook);
    } catch (err) {
      if (!isAwsError(err, 'ValidationError', NO_ACTIVE_ACTION)) throw err;
      logger.info('the lifecycle action was already completed', { instance_id: instanceId, auto_scaling_group: groupName, hook });
      inactive.push(hook);
    }
  }
  // Had this call completed one, the member would be on its way; with none, only the group can say.
  if (completed.length === 0 && inactive.length > 0 && lifecycleStates(await describeGroup(ctx, signal, groupName)).get(instanceId) === TERMINATING_WAIT) {
    throw new PluginError(
      Code.Aborted,
      `${instanceId} is still ${TERMINATING_WAIT} in Auto Scaling group ${groupName}, but no lifecycle action of ${inactive.join(', ')} is active: retry`,
    );
  }
  return {
    status: 'ok',
    message:
      inactive.length === 0
        ? `${instanceId} is terminating in ${groupName}: completed ${hooks.join(', ')} with CONTINUE so the group replaces it now`
        : `${instanceId} is terminating in ${groupName}: ${completed.length > 0 ? `completed ${completed.join(', ')} with CONTINUE, ` : ''}` +
          `${inactive.join(', ')} completed before, so the group replaces it now`,
    attributes,
  };
}
