import { labelsOf } from '@hollowtrees/grpcplugin';
import { describe, expect, it } from 'vitest';
import { NOTICE_TYPES, noticeToEvents, type NoticeOutcome } from './notice-to-events.js';
import { readNoticeSample } from '../../../test/support/fixtures.js';

const context = { region: 'eu-west-1' };

function eventsOf(outcome: NoticeOutcome) {
  if (outcome.kind !== 'events') throw new Error(`expected events, got ${outcome.kind}: ${outcome.reason}`);
  return outcome.events;
}
const convert = (body: string) => eventsOf(noticeToEvents(body, context));

describe('noticeToEvents', () => {
  it('spot interruption warning: instance from detail (the ARN is in zone form), termination 2 minutes after the event, action as a label', () => {
    const [event, ...rest] = convert(readNoticeSample('spot-interruption-warning.json'));
    expect(rest).toEqual([]);
    expect(event).toMatchObject({
      id: '1e5527d7-bb36-4607-3370-4164db56a40e',
      source: 'aws.ec2',
      specversion: '1.0',
      type: NOTICE_TYPES.spotInterruption,
      time: '2026-11-29T18:40:12Z',
    });
    expect(labelsOf(event!)).toEqual({
      instance_id: 'i-0b662ef9931388ba0',
      region: 'us-east-2',
      availability_zone: 'us-east-2a',
      account_id: '123456789012',
      instance_action: 'terminate',
      termination_time: '2026-11-29T18:42:12.000Z',
    });
  });

  it('a spot warning with a region-form ARN has no availability_zone label', () => {
    const body = JSON.parse(readNoticeSample('spot-interruption-warning.json')) as { resources: string[] };
    body.resources = ['arn:aws:ec2:us-east-2:123456789012:instance/i-0b662ef9931388ba0'];
    expect(labelsOf(convert(JSON.stringify(body))[0]!)).not.toHaveProperty('availability_zone');
  });

  it('the same message converted twice gives the same event (a redelivery is the same event)', () => {
    expect(convert(readNoticeSample('rebalance-recommendation.json'))).toEqual(convert(readNoticeSample('rebalance-recommendation.json')));
  });

  it('rebalance recommendation and state change carry the instance, the state as a label', () => {
    const [rebalance] = convert(readNoticeSample('rebalance-recommendation.json'));
    expect(rebalance!.type).toBe(NOTICE_TYPES.rebalance);
    expect(rebalance!.id).toBe('2b6b8a0c-1a3e-4d1b-9f0e-3c1d9a6e2f71');
    expect(labelsOf(rebalance!)).toMatchObject({ instance_id: 'i-0b662ef9931388ba0', region: 'us-east-2' });
    const [state] = convert(readNoticeSample('instance-state-change.json'));
    expect(state!.type).toBe(NOTICE_TYPES.stateChange);
    expect(labelsOf(state!)).toMatchObject({ instance_id: 'i-0b662ef9931388ba0', state: 'shutting-down' });
  });

  it('lifecycle terminate action via EventBridge, flat to SQS and wrapped by SNS: the same labels', () => {
    const expected = {
      instance_id: 'i-0b662ef9931388ba0',
      auto_scaling_group: 'spot-workers',
      lifecycle_hook: 'hollowtrees-drain',
      lifecycle_action_token: '630aa23f-48eb-45e7-aba6-799ea6093a0f',
      lifecycle_transition: 'autoscaling:EC2_INSTANCE_TERMINATING',
      account_id: '123456789012',
    };
    const [viaEventBridge] = convert(readNoticeSample('lifecycle-terminate-eventbridge.json'));
    expect(viaEventBridge).toMatchObject({ id: '468fe059-f4b7-445f-bb22-2a87c6e5ef4f', type: NOTICE_TYPES.lifecycleTerminate, source: 'aws.autoscaling' });
    expect(labelsOf(viaEventBridge!)).toEqual({ ...expected, region: 'us-east-2' });

    const [flat] = convert(readNoticeSample('lifecycle-terminate-sqs.json'));
    // No region in the flat message: the queue's.
    expect(flat).toMatchObject({ id: '4ab10aa8-0f60-4c3f-9fb9-4bd4c3b2f6a1', type: NOTICE_TYPES.lifecycleTerminate, time: '2026-11-29T18:44:02.113Z' });
    expect(labelsOf(flat!)).toEqual({ ...expected, region: 'eu-west-1' });

    expect(convert(readNoticeSample('sns-wrapped-lifecycle.json'))).toEqual([flat]);
  });

  it('a flat lifecycle message with an empty RequestId takes its id from the action token: two such actions never share the empty id', () => {
    const body = (token: string): string => JSON.stringify({ ...(JSON.parse(readNoticeSample('lifecycle-terminate-sqs.json')) as object), RequestId: '', LifecycleActionToken: token });
    expect(convert(body('630aa23f-48eb-45e7-aba6-799ea6093a0f')).map((e) => e.id)).toEqual(['630aa23f-48eb-45e7-aba6-799ea6093a0f']);
    expect(convert(body('71c5b2d0-9a1e-4c1b-8f5e-2d1c0b7a6e55')).map((e) => e.id)).toEqual(['71c5b2d0-9a1e-4c1b-8f5e-2d1c0b7a6e55']);
  });

  it('the Auto Scaling test notification is ignored, not an error', () => {
    expect(noticeToEvents(readNoticeSample('autoscaling-test-notification.json'), context)).toEqual({ kind: 'ignored', reason: 'Auto Scaling test notification' });
  });

  it('a flat lifecycle message for a launch is ignored', () => {
    const body = { ...(JSON.parse(readNoticeSample('lifecycle-terminate-sqs.json')) as object), LifecycleTransition: 'autoscaling:EC2_INSTANCE_LAUNCHING' };
    expect(noticeToEvents(JSON.stringify(body), context).kind).toBe('ignored');
  });

  it('AWS Health scheduled change for EC2: one event per instance, each with its own stable id, times in UTC', () => {
    const events = convert(readNoticeSample('health-scheduled-change.json'));
    expect(events.map((e) => [e.id, labelsOf(e)['instance_id']])).toEqual([
      ['121345678-1234-1234-1234-123456789012:i-0b662ef9931388ba0', 'i-0b662ef9931388ba0'],
      ['121345678-1234-1234-1234-123456789012:i-0c1f2e3d4c5b6a798', 'i-0c1f2e3d4c5b6a798'],
    ]);
    expect(events[0]!.type).toBe(NOTICE_TYPES.healthScheduledChange);
    expect(labelsOf(events[0]!)).toMatchObject({
      health_event_type: 'AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED',
      scheduled_start: '2026-12-05T15:10:09.000Z',
      scheduled_end: '2026-12-05T17:10:09.000Z',
    });
  });

  it('AWS Health events of another category or service are ignored', () => {
    const body = JSON.parse(readNoticeSample('health-scheduled-change.json')) as { detail: Record<string, unknown> };
    body.detail['eventTypeCategory'] = 'issue';
    expect(noticeToEvents(JSON.stringify(body), context).kind).toBe('ignored');
    body.detail['eventTypeCategory'] = 'scheduledChange';
    body.detail['service'] = 'RDS';
    expect(noticeToEvents(JSON.stringify(body), context).kind).toBe('ignored');
  });

  it('an AWS Health scheduled change that is closed (done or cancelled) is ignored: its instances are not acted on again', () => {
    const body = JSON.parse(readNoticeSample('health-scheduled-change.json')) as { detail: Record<string, unknown> };
    body.detail['statusCode'] = 'upcoming';
    expect(convert(JSON.stringify(body))).toHaveLength(2);
    body.detail['statusCode'] = 'closed';
    expect(noticeToEvents(JSON.stringify(body), context)).toEqual({
      kind: 'ignored',
      reason: 'AWS Health event AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED is closed: the scheduled change is over or cancelled',
    });
  });

  it('an AWS Health scheduled change whose instance is resolved while the event stays open acts on the others only; all resolved, it is ignored', () => {
    const body = JSON.parse(readNoticeSample('health-scheduled-change.json')) as { detail: Record<string, unknown> };
    body.detail['statusCode'] = 'upcoming';
    // The first instance was stopped and started onto other hardware: its change is done, the second's is not.
    body.detail['affectedEntities'] = [
      { entityValue: 'i-0b662ef9931388ba0', status: 'RESOLVED' },
      { entityValue: 'i-0c1f2e3d4c5b6a798', status: 'PENDING' },
    ];
    expect(convert(JSON.stringify(body)).map((e) => labelsOf(e)['instance_id'])).toEqual(['i-0c1f2e3d4c5b6a798']);
    body.detail['affectedEntities'] = [
      { entityValue: 'i-0b662ef9931388ba0', status: 'RESOLVED' },
      { entityValue: 'i-0c1f2e3d4c5b6a798', status: 'RESOLVED' },
    ];
    expect(noticeToEvents(JSON.stringify(body), context)).toEqual({
      kind: 'ignored',
      reason: 'AWS Health event AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED: every instance it names is resolved (status RESOLVED)',
    });
  });

  it('an AWS Health entity named by its instance ARN, as AWS\'s EC2 retirement sample has it (and no resources), is acted on: not ignored as naming no instance', () => {
    const body = JSON.parse(readNoticeSample('health-scheduled-change.json')) as { resources?: string[]; detail: Record<string, unknown> };
    delete body.resources;
    body.detail['affectedEntities'] = [
      { entityValue: 'arn:aws:ec2:us-east-2:123456789012:instance/i-0b662ef9931388ba0', lastUpdatedTime: 'Thu, 26 Nov 2026 19:01:55 GMT', status: 'PENDING' },
      { entityValue: 'arn:aws:ec2:us-east-2:123456789012:volume/vol-0b662ef9931388ba0', status: 'PENDING' },
    ];
    expect(convert(JSON.stringify(body)).map((e) => [e.id, labelsOf(e)['instance_id']])).toEqual([
      ['121345678-1234-1234-1234-123456789012:i-0b662ef9931388ba0', 'i-0b662ef9931388ba0'],
    ]);
  });

  it('an EventBridge event of a type it does not convert is ignored, naming the type', () => {
    const body = { ...(JSON.parse(readNoticeSample('rebalance-recommendation.json')) as object), 'detail-type': 'EBS Volume Notification' };
    expect(noticeToEvents(JSON.stringify(body), context)).toEqual({ kind: 'ignored', reason: 'detail-type "EBS Volume Notification" is not a notice Hollowtrees converts' });
  });

  it.each([
    ['not JSON', '{"detail-type":', 'the message body is not JSON'],
    ['a JSON array', '[1]', 'the message body is not a JSON object'],
    ['an unknown object', '{"hello":"world"}', 'neither an EventBridge event'],
    ['an SNS wrapper around text', '{"Type":"Notification","Message":"hello"}', 'Message: the SNS notification does not wrap JSON'],
    ['an object nested 65 levels deep', `${'{"a":'.repeat(65)}1${'}'.repeat(65)}`, 'the message is nested more than 64 levels deep'],
    // Told from the text, not parsed: parsing SQS's largest body (1 MiB) of brackets holds the event loop a second on a busy host.
    ['1 MiB of opening brackets', '['.repeat(1024 * 1024), 'the message is nested more than 64 levels deep'],
    ['an SNS wrapper around JSON nested 65 levels deep', JSON.stringify({ Type: 'Notification', Message: `${'['.repeat(65)}${']'.repeat(65)}` }), 'Message: the SNS notification wraps JSON nested more than 64 levels deep'],
  ])('%s is unprocessable with a reason', (_what, body, reason) => {
    const outcome = noticeToEvents(body, context);
    expect(outcome.kind).toBe('unprocessable');
    expect(outcome.kind !== 'events' && outcome.reason).toContain(reason);
  });

  it('an SNS subscription confirmation (a topic of another account) is unprocessable with the link that confirms it, which is lost with the message', () => {
    const topic = 'arn:aws:sns:us-east-1:210987654321:spot-notices';
    const link = `https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=${topic}&Token=2336412f37fb`;
    const body = { Type: 'SubscriptionConfirmation', MessageId: '165545c9-2a5c-472c-8df2-7ff2be2b3b1b', Token: '2336412f37fb', TopicArn: topic, Message: 'You have chosen to subscribe to the topic', SubscribeURL: link };
    expect(noticeToEvents(JSON.stringify(body), context)).toEqual({
      kind: 'unprocessable',
      reason: `an SNS subscription confirmation: nothing topic ${topic} publishes reaches this queue until the subscription is confirmed; confirm it at ${link}`,
    });
  });

  it('a spot warning without an instance id is unprocessable, naming the field', () => {
    const body = JSON.parse(readNoticeSample('spot-interruption-warning.json')) as { detail: Record<string, unknown> };
    delete body.detail['instance-id'];
    expect(noticeToEvents(JSON.stringify(body), context)).toEqual({ kind: 'unprocessable', reason: 'detail.instance-id: required (expected string)' });
  });

  it('an EventBridge event with a bad time is unprocessable, naming the field', () => {
    const body = { ...(JSON.parse(readNoticeSample('rebalance-recommendation.json')) as object), time: 'yesterday' };
    expect(noticeToEvents(JSON.stringify(body), context)).toEqual({ kind: 'unprocessable', reason: 'EventBridge event: time: expected an RFC 3339 time' });
  });
});
