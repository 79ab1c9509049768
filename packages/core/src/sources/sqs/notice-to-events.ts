import { normalizeTime, type CloudEvent } from '@hollowtrees/grpcplugin/without-grpc';
import type { z } from 'zod';
import { MAX_DATA_DEPTH, textNestedDeeperThan, TOO_DEEP } from '../../json-depth.js';
import { isObject } from '../../json-object.js';
import { rfc3339Time } from '../../time-schema.js';
import { describeIssues, problemsText } from '../../validation-issues.js';
import {
  eventBridgeEnvelope,
  healthDetail,
  INSTANCE_ID,
  lifecycleAction,
  rebalanceDetail,
  snsSubscriptionConfirmation,
  snsWrapper,
  spotInterruptionDetail,
  stateChangeDetail,
  TEST_NOTIFICATION,
  type EventBridgeEnvelope,
  type LifecycleAction,
} from './notice-schemas.js';

/** The CloudEvent types the SQS source produces, one per notice. */
export const NOTICE_TYPES = {
  spotInterruption: 'aws.ec2.spot.interruption-warning',
  rebalance: 'aws.ec2.spot.rebalance-recommendation',
  stateChange: 'aws.ec2.instance.state-change',
  lifecycleTerminate: 'aws.autoscaling.lifecycle.instance-terminate',
  healthScheduledChange: 'aws.health.ec2.scheduled-change',
} as const;

/** The `data` of an event made from a notice: labels plus the notice's own fields. */
export interface NoticeEventData {
  labels: Record<string, string>;
  /** EventBridge's `detail-type`, or `Auto Scaling lifecycle notification` for the flat message. */
  detailType: string;
  /** The notice's `detail` (the whole message for the flat lifecycle notification), as AWS sent it. */
  detail: Record<string, unknown>;
  [field: string]: unknown;
}

/** What one queue message turned into. */
export type NoticeOutcome =
  /** Events to dispatch (a Health event gives one per instance). */
  | { readonly kind: 'events'; readonly events: ReadonlyArray<CloudEvent<NoticeEventData>> }
  /** A well-formed message Hollowtrees deliberately does not act on (a test notification, another service's Health event). */
  | { readonly kind: 'ignored'; readonly reason: string }
  /** A message that will never convert: not JSON, or missing what its type needs. `reason` says what and where. */
  | { readonly kind: 'unprocessable'; readonly reason: string };

/** Where a message came from, for what the message itself does not say. */
export interface NoticeContext {
  /** The queue's region: the flat lifecycle message names none. */
  readonly region: string;
}

/** How long the Spot service waits after the interruption warning before it acts. */
const SPOT_NOTICE_MS = 2 * 60_000;
const EVENT_BRIDGE_LIFECYCLE = 'EC2 Instance-terminate Lifecycle Action';
const TERMINATING = 'autoscaling:EC2_INSTANCE_TERMINATING';
const INSTANCE_ARN = /^arn:aws[a-z-]*:ec2:[^:]*:[^:]*:instance\/(.+)$/;
/** An AWS Health entity's status once its own change is done. */
const RESOLVED = 'RESOLVED';

const unprocessable = (reason: string): NoticeOutcome => ({ kind: 'unprocessable', reason });
const ignored = (reason: string): NoticeOutcome => ({ kind: 'ignored', reason });

/** Parses `value` with `schema`, or says what is wrong and where (paths under `at`). */
function check<S extends z.ZodType>(schema: S, value: unknown, at: string): { ok: true; value: z.infer<S> } | { ok: false; reason: string } {
  const result = schema.safeParse(value);
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, reason: problemsText(describeIssues(result.error.issues, at ? [at] : [])) };
}

/**
 * The availability zone an interruption warning's resource ARN carries: AWS
 * writes some as `arn:aws:ec2:us-east-2a:instance/i-...`, with the zone where
 * the region belongs. Undefined for the usual region form.
 */
function zoneFromArn(resources: readonly string[], region: string): string | undefined {
  for (const arn of resources) {
    const place = arn.split(':')[3];
    if (place && place !== region && place.startsWith(region) && /^[a-z]$/.test(place.slice(region.length))) return place;
  }
  return undefined;
}

/** RFC 3339 in UTC for a time AWS may write either as RFC 3339 or as an HTTP date (older Health samples). */
function utcTime(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) return undefined;
  const iso = new Date(ms).toISOString();
  // Years past 9999 parse, but fit no protobuf Timestamp.
  return rfc3339Time.safeParse(iso).success ? iso : undefined;
}

function eventOf(
  envelope: Pick<EventBridgeEnvelope, 'id' | 'source' | 'time' | 'detail-type'>,
  type: string,
  labels: Record<string, string | undefined>,
  detail: Record<string, unknown>,
): CloudEvent<NoticeEventData> {
  const defined = Object.fromEntries(Object.entries(labels).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ''));
  return {
    id: envelope.id,
    source: envelope.source,
    specversion: '1.0',
    type,
    time: normalizeTime(envelope.time),
    datacontenttype: 'application/json',
    data: { labels: defined, detailType: envelope['detail-type'], detail },
  };
}

function lifecycleLabels(action: LifecycleAction): Record<string, string> {
  return {
    instance_id: action.EC2InstanceId,
    auto_scaling_group: action.AutoScalingGroupName,
    lifecycle_hook: action.LifecycleHookName,
    lifecycle_action_token: action.LifecycleActionToken,
    lifecycle_transition: action.LifecycleTransition,
  };
}

/** One EventBridge event (already known to have the envelope) to its outcome. */
function fromEventBridge(envelope: EventBridgeEnvelope): NoticeOutcome {
  const base = { region: envelope.region, account_id: envelope.account };
  switch (envelope['detail-type']) {
    case 'EC2 Spot Instance Interruption Warning': {
      const detail = check(spotInterruptionDetail, envelope.detail, 'detail');
      if (!detail.ok) return unprocessable(detail.reason);
      const termination = new Date(Date.parse(envelope.time) + SPOT_NOTICE_MS).toISOString();
      return {
        kind: 'events',
        events: [
          eventOf(
            envelope,
            NOTICE_TYPES.spotInterruption,
            {
              ...base,
              // From detail: the resource ARN may be in zone form, and is not where AWS promises the id.
              instance_id: detail.value['instance-id'],
              availability_zone: zoneFromArn(envelope.resources, envelope.region),
              instance_action: detail.value['instance-action'],
              termination_time: termination,
            },
            envelope.detail,
          ),
        ],
      };
    }
    case 'EC2 Instance Rebalance Recommendation': {
      const detail = check(rebalanceDetail, envelope.detail, 'detail');
      if (!detail.ok) return unprocessable(detail.reason);
      return { kind: 'events', events: [eventOf(envelope, NOTICE_TYPES.rebalance, { ...base, instance_id: detail.value['instance-id'] }, envelope.detail)] };
    }
    case 'EC2 Instance State-change Notification': {
      const detail = check(stateChangeDetail, envelope.detail, 'detail');
      if (!detail.ok) return unprocessable(detail.reason);
      const labels = { ...base, instance_id: detail.value['instance-id'], state: detail.value.state };
      return { kind: 'events', events: [eventOf(envelope, NOTICE_TYPES.stateChange, labels, envelope.detail)] };
    }
    case EVENT_BRIDGE_LIFECYCLE: {
      const detail = check(lifecycleAction, envelope.detail, 'detail');
      if (!detail.ok) return unprocessable(detail.reason);
      return { kind: 'events', events: [eventOf(envelope, NOTICE_TYPES.lifecycleTerminate, { ...base, ...lifecycleLabels(detail.value) }, envelope.detail)] };
    }
    case 'AWS Health Event':
      return fromHealth(envelope, base);
    default:
      return ignored(`detail-type "${envelope['detail-type']}" is not a notice Hollowtrees converts`);
  }
}

/**
 * The instance an AWS Health entity names: its id, or its ARN (`arn:aws:ec2:<region>:<account>:instance/i-...`), as
 * AWS's EC2 retirement sample has it. Undefined for any other entity (a volume, a host).
 */
function instanceOf(entity: string): string | undefined {
  const id = INSTANCE_ARN.exec(entity)?.[1] ?? entity;
  return INSTANCE_ID.test(id) ? id : undefined;
}

/** An AWS Health scheduled change for EC2: one event per affected instance, each with its own stable id. */
function fromHealth(envelope: EventBridgeEnvelope, base: Record<string, string | undefined>): NoticeOutcome {
  const detail = check(healthDetail, envelope.detail, 'detail');
  if (!detail.ok) return unprocessable(detail.reason);
  const health = detail.value;
  if (health.service !== 'EC2' || health.eventTypeCategory !== 'scheduledChange') {
    return ignored(`AWS Health event of service "${health.service}", category "${health.eventTypeCategory}": only EC2 scheduledChange is converted`);
  }
  // Sent when the change is done or cancelled: acted on, it would drain an instance whose maintenance is over.
  if (health.statusCode === 'closed') return ignored(`AWS Health event ${health.eventTypeCode} is closed: the scheduled change is over or cancelled`);
  // Entities are in detail.affectedEntities; older events list them only as resources.
  const named = health.affectedEntities.length > 0 ? health.affectedEntities : envelope.resources.map((entityValue) => ({ entityValue, status: undefined }));
  const onInstances = named.flatMap((e) => {
    const instance = instanceOf(e.entityValue);
    return instance === undefined ? [] : [{ instance, status: e.status }];
  });
  if (onInstances.length === 0) return ignored(`AWS Health event ${health.eventTypeCode} names no EC2 instance`);
  // An instance whose own change is done is not drained again because the event stays open for others.
  const instances = [...new Set(onInstances.filter((e) => e.status !== RESOLVED).map((e) => e.instance))];
  if (instances.length === 0) return ignored(`AWS Health event ${health.eventTypeCode}: every instance it names is resolved (status ${RESOLVED})`);
  return {
    kind: 'events',
    events: instances.map((instance) =>
      eventOf(
        { ...envelope, id: `${envelope.id}:${instance}` },
        NOTICE_TYPES.healthScheduledChange,
        {
          ...base,
          instance_id: instance,
          health_event_type: health.eventTypeCode,
          health_event_arn: health.eventArn,
          scheduled_start: utcTime(health.startTime),
          scheduled_end: utcTime(health.endTime),
        },
        envelope.detail,
      ),
    ),
  };
}

/** The flat message Auto Scaling sends straight to SQS (no EventBridge envelope). */
function fromFlatLifecycle(message: Record<string, unknown>, context: NoticeContext): NoticeOutcome {
  if (message['Event'] === TEST_NOTIFICATION) return ignored('Auto Scaling test notification');
  const action = check(lifecycleAction, message, '');
  if (!action.ok) return unprocessable(`Auto Scaling lifecycle message: ${action.reason}`);
  if (action.value.LifecycleTransition !== TERMINATING) return ignored(`lifecycle transition ${action.value.LifecycleTransition} is not a termination`);
  const time = utcTime(action.value.Time);
  if (!time) return unprocessable('Auto Scaling lifecycle message: Time: expected a time');
  // The message has no event id; Auto Scaling's RequestId names the activity, and the token the action.
  // An empty RequestId counts as none: every such message would share the empty id, and with it a group.
  const id = action.value.RequestId || action.value.LifecycleActionToken;
  const envelope = { id, source: 'aws.autoscaling', time, 'detail-type': 'Auto Scaling lifecycle notification' };
  return {
    kind: 'events',
    events: [eventOf(envelope, NOTICE_TYPES.lifecycleTerminate, { region: context.region, account_id: action.value.AccountId, ...lifecycleLabels(action.value) }, message)],
  };
}

/**
 * Turns the body of one SQS message into CloudEvents: an EventBridge event
 * (spot interruption warning, rebalance recommendation, state change,
 * lifecycle terminate action, AWS Health scheduled change), or the flat
 * message Auto Scaling sends to a queue, either possibly wrapped by SNS. Each
 * event's id is the EventBridge event id, so a redelivered message is the same
 * event. Never throws: bad input is an `unprocessable` outcome naming the field.
 */
export function noticeToEvents(body: string, context: NoticeContext): NoticeOutcome {
  // Its detail becomes the event's data, which the journal and the plugin calls serialise recursively; and told
  // before parsing, a hostile body (1 MiB of brackets) does not hold the event loop while it is parsed.
  if (textNestedDeeperThan(body, MAX_DATA_DEPTH)) return unprocessable(`the message is ${TOO_DEEP}`);
  let message: unknown;
  try {
    message = JSON.parse(body);
  } catch {
    return unprocessable('the message body is not JSON');
  }
  const confirmation = snsSubscriptionConfirmation.safeParse(message);
  // Deleted as any message that is no notice, its link would be lost with it: the reason, logged, keeps it.
  if (confirmation.success) {
    const { TopicArn, SubscribeURL } = confirmation.data;
    return unprocessable(`an SNS subscription confirmation: nothing topic ${TopicArn} publishes reaches this queue until the subscription is confirmed; confirm it at ${SubscribeURL}`);
  }
  const wrapped = snsWrapper.safeParse(message);
  if (wrapped.success) {
    if (textNestedDeeperThan(wrapped.data.Message, MAX_DATA_DEPTH)) return unprocessable(`Message: the SNS notification wraps JSON ${TOO_DEEP}`);
    try {
      message = JSON.parse(wrapped.data.Message);
    } catch {
      return unprocessable('Message: the SNS notification does not wrap JSON');
    }
  }
  if (!isObject(message)) return unprocessable('the message body is not a JSON object');
  if ('detail-type' in message) {
    const envelope = check(eventBridgeEnvelope, message, '');
    if (!envelope.ok) return unprocessable(`EventBridge event: ${envelope.reason}`);
    return fromEventBridge(envelope.value);
  }
  if ('LifecycleTransition' in message || message['Event'] === TEST_NOTIFICATION) return fromFlatLifecycle(message, context);
  return unprocessable('neither an EventBridge event (no "detail-type") nor an Auto Scaling lifecycle message (no "LifecycleTransition")');
}
