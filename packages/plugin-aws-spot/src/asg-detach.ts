import {
  CompleteLifecycleActionCommand,
  CreateOrUpdateTagsCommand,
  DeleteTagsCommand,
  DescribeAutoScalingGroupsCommand,
  DescribeLifecycleHooksCommand,
  DetachInstancesCommand,
  UpdateAutoScalingGroupCommand,
  type TagDescription,
} from '@aws-sdk/client-auto-scaling';
import { CreateTagsCommand } from '@aws-sdk/client-ec2';
import { Code, PluginError } from '@hollowtrees/grpcplugin';
import { callAws, dryRunEc2 } from './aws-call.js';
import { KeyedSerial } from './keyed-serial.js';
import type { ReplacementOutcome, StrategyContext } from './replacement-outcome.js';
import { AUTO_SCALING_GROUP_TAG, DETACHED_FROM_TAG, ORIGINAL_MIN_SIZE_TAG } from './tags.js';

const TERMINATING = 'autoscaling:EC2_INSTANCE_TERMINATING';

// MinSize is lowered and restored around a detach: two detaches from one group
// at once would restore each other's lowered value, so they take turns.
const perGroup = new KeyedSerial();

/**
 * Strategy `asg-detach`: the group replaces its own member.
 *
 * - `InService` / `Standby`: tag the instance {@link DETACHED_FROM_TAG}, then detach it
 *   with `ShouldDecrementDesiredCapacity=false`, so the group launches a
 *   replacement now instead of after the termination. When the detach would
 *   leave fewer instances in service than `MinSize`, MinSize is lowered by what
 *   is needed for the detach and restored right after; the original is kept in
 *   the group tag {@link ORIGINAL_MIN_SIZE_TAG} until then.
 * - `Terminating:Wait` (a termination lifecycle hook is pending; such an instance
 *   cannot be detached): complete the termination hooks with `CONTINUE`, so the
 *   group replaces it without waiting for the hook's heartbeat timeout.
 * - Already detached (it carries the tag), or no longer in its group: nothing to do.
 */
export async function detachFromGroup(ctx: StrategyContext): Promise<ReplacementOutcome> {
  const { instance } = ctx;
  if (!instance.group) return notAMember(ctx);
  const group = instance.group.name;
  switch (instance.group.lifecycleState) {
    case 'InService':
    case 'Standby':
      return perGroup.run(group, () => detach(ctx, group));
    case 'Terminating:Wait':
      return completeTermination(ctx, group);
    default:
      return {
        status: 'skipped',
        message: `${instance.instanceId} is ${instance.group.lifecycleState} in Auto Scaling group ${group}: nothing to detach`,
        attributes: { auto_scaling_group: group },
      };
  }
}

function notAMember({ instance }: StrategyContext): ReplacementOutcome {
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

async function detach(ctx: StrategyContext, groupName: string): Promise<ReplacementOutcome> {
  const { clients, instance, signal, logger } = ctx;
  const described = await callAws('Auto Scaling DescribeAutoScalingGroups', signal, (o) =>
    clients.autoScaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [groupName] }), o),
  );
  const group = described.AutoScalingGroups?.find((g) => g.AutoScalingGroupName === groupName);
  if (!group) throw new PluginError(Code.NotFound, `Auto Scaling group ${groupName} of ${instance.instanceId} does not exist`);
  const currentMinSize = group.MinSize ?? 0;
  const { minSize, tagged } = originalMinSize(ctx, groupName, group.Tags, currentMinSize);
  const inService = (group.Instances ?? []).filter((i) => i.LifecycleState === 'InService').length;
  const leaving = instance.group?.lifecycleState === 'InService' ? 1 : 0;
  // Auto Scaling refuses a detach that leaves fewer than MinSize in service, even with the desired capacity kept.
  const loweredMinSize = inService - leaving < currentMinSize ? inService - leaving : undefined;
  // Put back after the detach: when lowered now, or still lowered by an earlier detach (the tag says so).
  const restoreTo = loweredMinSize !== undefined || minSize !== currentMinSize ? minSize : undefined;
  // Tagged before the lowering, unless the group already carries the original: a restore that never
  // happens (failure, crash, restart) then leaves the original on the group for any later detach.
  const tagValue = String(minSize);
  const writeTag = loweredMinSize !== undefined && tagged !== tagValue;
  // Removed once MinSize is the original again: the tag written now, or the one found on the group.
  const untag = writeTag ? tagValue : tagged;
  const attributes = { auto_scaling_group: groupName, replacement_requested: 'true' };
  const tag = new CreateTagsCommand({ Resources: [instance.instanceId], Tags: [{ Key: DETACHED_FROM_TAG, Value: groupName }], DryRun: ctx.dryRun });

  if (ctx.dryRun) {
    // Auto Scaling has no DryRun parameter: EC2 checks the tag call, the rest is logged.
    await dryRunEc2('EC2 CreateTags', signal, (o) => clients.ec2.send(tag, o));
    logger.info('dry run: would detach the instance keeping the desired capacity', {
      instance_id: instance.instanceId,
      auto_scaling_group: groupName,
      ...(restoreTo !== undefined && { min_size: minSize, lowered_min_size: loweredMinSize ?? currentMinSize }),
      ...(writeTag && { tag_group: `${ORIGINAL_MIN_SIZE_TAG}=${tagValue}` }),
      ...(untag !== undefined && { untag_group: `${ORIGINAL_MIN_SIZE_TAG}=${untag}` }),
    });
    return { status: 'ok', message: `dry run: would detach ${instance.instanceId} from ${groupName} keeping its desired capacity`, attributes: { ...attributes, dry_run: 'true' } };
  }

  await callAws('EC2 CreateTags', signal, (o) => clients.ec2.send(tag, o));
  // Outside the try: when the tag is not written, MinSize is not lowered either, and there is nothing to restore.
  if (writeTag) await tagOriginalMinSize(ctx, groupName, tagValue);
  let restoreWarning = '';
  try {
    if (loweredMinSize !== undefined) await setMinSize(ctx, signal, groupName, loweredMinSize);
    await callAws('Auto Scaling DetachInstances', signal, (o) =>
      clients.autoScaling.send(
        new DetachInstancesCommand({ AutoScalingGroupName: groupName, InstanceIds: [instance.instanceId], ShouldDecrementDesiredCapacity: false }),
        o,
      ),
    );
  } finally {
    // Inside the finally also when the lowering itself was cut off: it may have landed all the same.
    restoreWarning = await restoreMinSize(ctx, groupName, restoreTo, untag);
  }
  return {
    status: 'ok',
    message: `detached ${instance.instanceId} from ${groupName} keeping its desired capacity: the group launches a replacement${restoreWarning}`,
    attributes,
  };
}

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
function originalMinSize(
  ctx: StrategyContext,
  groupName: string,
  tags: readonly TagDescription[] | undefined,
  currentMinSize: number,
): { minSize: number; tagged: string | undefined } {
  const tagged = tags?.find((t) => t.Key === ORIGINAL_MIN_SIZE_TAG)?.Value;
  const recorded = tagged !== undefined && /^\d+$/.test(tagged) ? Number(tagged) : undefined;
  if (recorded === undefined || recorded <= currentMinSize) {
    if (tagged !== undefined) {
      ctx.logger.info('the group carries a stale original MinSize tag: this detach replaces or removes it', {
        auto_scaling_group: groupName,
        tag: `${ORIGINAL_MIN_SIZE_TAG}=${tagged}`,
        current_min_size: currentMinSize,
      });
    }
    return { minSize: currentMinSize, tagged };
  }
  ctx.logger.warn('the group MinSize is still lowered by an earlier detach: restoring the original after this one', {
    auto_scaling_group: groupName,
    min_size: recorded,
    current_min_size: currentMinSize,
  });
  return { minSize: recorded, tagged };
}

function setMinSize(ctx: StrategyContext, signal: AbortSignal, groupName: string, minSize: number): Promise<unknown> {
  return callAws('Auto Scaling UpdateAutoScalingGroup', signal, (o) =>
    ctx.clients.autoScaling.send(new UpdateAutoScalingGroupCommand({ AutoScalingGroupName: groupName, MinSize: minSize }), o),
  );
}

/** The group's {@link ORIGINAL_MIN_SIZE_TAG} as CreateOrUpdateTags and DeleteTags name it. */
function originalMinSizeTag(groupName: string, value: string): { ResourceId: string; ResourceType: string; Key: string; Value: string } {
  return { ResourceId: groupName, ResourceType: 'auto-scaling-group', Key: ORIGINAL_MIN_SIZE_TAG, Value: value };
}

function tagOriginalMinSize(ctx: StrategyContext, groupName: string, value: string): Promise<unknown> {
  return callAws('Auto Scaling CreateOrUpdateTags', ctx.signal, (o) =>
    ctx.clients.autoScaling.send(new CreateOrUpdateTagsCommand({ Tags: [{ ...originalMinSizeTag(groupName, value), PropagateAtLaunch: false }] }), o),
  );
}

/** How long restoring MinSize and removing the tag may take together, retries included. */
const RESTORE_MIN_SIZE_TIMEOUT_MS = 10_000;

/**
 * Puts MinSize back (when `restoreTo` is set), then removes the tag (when
 * `untag` is set). It runs with its own bounded signal, not the call's: the
 * call's deadline or a cancel that cut the detach short must not also cut the
 * restore, or MinSize would stay lowered. The detach may have happened by now,
 * so a failure here does not fail the call (a retry would find nothing to
 * detach). A failed restore is logged and returned as a note for the answer's
 * message; the tag stays, so the next detach from the group restores the
 * original. A failed untagging is only logged: MinSize is the original again,
 * and the next detach takes the tag for stale.
 */
async function restoreMinSize(ctx: StrategyContext, groupName: string, restoreTo: number | undefined, untag: string | undefined): Promise<string> {
  if (restoreTo === undefined && untag === undefined) return '';
  const signal = AbortSignal.timeout(RESTORE_MIN_SIZE_TIMEOUT_MS);
  if (restoreTo !== undefined) {
    try {
      await setMinSize(ctx, signal, groupName, restoreTo);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      ctx.logger.warn('could not restore the group MinSize after the detach: the group keeps the original in its tag', {
        auto_scaling_group: groupName,
        min_size: restoreTo,
        tag: `${ORIGINAL_MIN_SIZE_TAG}=${restoreTo}`,
        error: reason,
      });
      return `; restoring MinSize ${restoreTo} failed, set it back by hand or let the next detach from the group do it (tag ${ORIGINAL_MIN_SIZE_TAG}=${restoreTo}) (${reason})`;
    }
  }
  if (untag !== undefined) {
    try {
      // With the value: a tag another replica has rewritten since is not this detach's to remove.
      await callAws('Auto Scaling DeleteTags', signal, (o) =>
        ctx.clients.autoScaling.send(new DeleteTagsCommand({ Tags: [originalMinSizeTag(groupName, untag)] }), o),
      );
    } catch (err) {
      ctx.logger.warn('could not remove the original MinSize tag from the group', {
        auto_scaling_group: groupName,
        tag: `${ORIGINAL_MIN_SIZE_TAG}=${untag}`,
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }
  return '';
}

async function completeTermination(ctx: StrategyContext, groupName: string): Promise<ReplacementOutcome> {
  const { clients, instance, signal, logger } = ctx;
  const described = await callAws('Auto Scaling DescribeLifecycleHooks', signal, (o) =>
    clients.autoScaling.send(new DescribeLifecycleHooksCommand({ AutoScalingGroupName: groupName }), o),
  );
  const hooks = (described.LifecycleHooks ?? []).filter((h) => h.LifecycleTransition === TERMINATING).flatMap((h) => h.LifecycleHookName ?? []);
  const attributes = { auto_scaling_group: groupName, replacement_requested: 'true', lifecycle_hooks_completed: hooks.join(',') };
  if (ctx.dryRun) {
    logger.info('dry run: would complete the termination lifecycle actions with CONTINUE', { instance_id: instance.instanceId, auto_scaling_group: groupName, hooks });
    return { status: 'ok', message: `dry run: would complete ${hooks.join(', ')} for ${instance.instanceId} with CONTINUE`, attributes: { ...attributes, dry_run: 'true' } };
  }
  for (const hook of hooks) {
    await callAws('Auto Scaling CompleteLifecycleAction', signal, (o) =>
      clients.autoScaling.send(
        new CompleteLifecycleActionCommand({ AutoScalingGroupName: groupName, LifecycleHookName: hook, InstanceId: instance.instanceId, LifecycleActionResult: 'CONTINUE' }),
        o,
      ),
    );
  }
  return {
    status: 'ok',
    message: `${instance.instanceId} is terminating in ${groupName}: completed ${hooks.join(', ')} with CONTINUE so the group replaces it now`,
    attributes,
  };
}
