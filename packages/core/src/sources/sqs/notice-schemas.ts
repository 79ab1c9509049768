import { z } from 'zod';
import { rfc3339Time } from '../../time-schema.js';

/**
 * The shapes of the messages an EventBridge → SQS queue carries, as AWS
 * documents them (see test-fixtures/aws-notices/README.md). Only the fields Hollowtrees reads
 * are checked; AWS adds fields over time, so unknown ones pass.
 */

/** An EC2 instance id. */
export const INSTANCE_ID = /^i-[0-9a-f]{8,17}$/;
const instanceId = z.string().regex(INSTANCE_ID, 'expected an EC2 instance id (i-...)');
const nonEmpty = z.string().min(1, 'expected a non-empty string');

/** The EventBridge envelope every event shares. */
export const eventBridgeEnvelope = z.object({
  id: nonEmpty,
  'detail-type': nonEmpty,
  source: nonEmpty,
  account: z.string().optional(),
  time: rfc3339Time,
  region: nonEmpty,
  resources: z.array(z.string()).default([]),
  detail: z.record(z.string(), z.unknown()),
});
export type EventBridgeEnvelope = z.infer<typeof eventBridgeEnvelope>;

/** `detail` of "EC2 Spot Instance Interruption Warning". */
export const spotInterruptionDetail = z.object({
  'instance-id': instanceId,
  // terminate, stop or hibernate today; a new action must not make the warning unreadable.
  'instance-action': nonEmpty,
});

/** `detail` of "EC2 Instance Rebalance Recommendation". */
export const rebalanceDetail = z.object({ 'instance-id': instanceId });

/** `detail` of "EC2 Instance State-change Notification". */
export const stateChangeDetail = z.object({ 'instance-id': instanceId, state: nonEmpty });

/**
 * An Auto Scaling lifecycle action: the `detail` of "EC2 Instance-terminate
 * Lifecycle Action", and (with `Time`) the flat message Auto Scaling sends
 * straight to an SQS queue named as a lifecycle hook's notification target.
 */
export const lifecycleAction = z.object({
  EC2InstanceId: instanceId,
  AutoScalingGroupName: nonEmpty,
  LifecycleHookName: nonEmpty,
  LifecycleActionToken: nonEmpty,
  LifecycleTransition: nonEmpty,
  RequestId: z.string().optional(),
  Time: z.string().optional(),
  AccountId: z.string().optional(),
});
export type LifecycleAction = z.infer<typeof lifecycleAction>;

/** The flat message's test notification, sent once when a hook's target is set. */
export const TEST_NOTIFICATION = 'autoscaling:TEST_NOTIFICATION';

/** `detail` of "AWS Health Event". */
export const healthDetail = z.object({
  eventArn: nonEmpty,
  service: z.string(),
  eventTypeCode: nonEmpty,
  eventTypeCategory: z.string(),
  /** `upcoming`, `open`, or `closed`: AWS Health sends an event again at each change of status, the end included. */
  statusCode: z.string().optional(),
  startTime: z.string().optional(),
  endTime: z.string().optional(),
  /**
   * Each entity has a status of its own: `RESOLVED` once its change is done (an instance stopped and started onto
   * other hardware) while the event stays open for the others.
   */
  affectedEntities: z.array(z.object({ entityValue: z.string(), status: z.string().optional() })).default([]),
});

/**
 * What SNS sends a queue subscribed to a topic of another account, once: nothing the topic publishes reaches the
 * queue until someone visits `SubscribeURL` (or calls ConfirmSubscription with its `Token`).
 */
export const snsSubscriptionConfirmation = z.object({ Type: z.literal('SubscriptionConfirmation'), TopicArn: z.string(), SubscribeURL: z.string() });

/** An SNS notification that wraps the real message as a JSON string in `Message`. */
export const snsWrapper = z.object({ Type: z.literal('Notification'), Message: z.string() });
