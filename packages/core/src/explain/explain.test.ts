import { describe, expect, it } from 'vitest';
import { labelsOf } from '@hollowtrees/grpcplugin';
import { parseConfig } from '../config/load-config.js';
import { readFixture, readNoticeSample } from '../../test/support/fixtures.js';
import { explainEvent, formatExplanation } from './explain-event.js';
import { ExplainInputError, readExplainInput } from './read-events.js';

const { config } = parseConfig(
  `flows:
  drain:
    allowedEvents: [prometheus.server.alert.SpotTerminationNotice]
    filters: { cluster_name: prod, severity: [critical] }
    groupBy: [instance_id]
    plugins: [log]
  rebalance:
    allowedEvents: [prometheus.server.alert.SpotRebalance]
    plugins: [log]
  audit:
    allowedEvents: [prometheus.server.alert.*.resolved]
    plugins: [log]
`,
  'explain.yaml',
  {},
);
const read = (value: unknown) => readExplainInput(Buffer.from(JSON.stringify(value)), new Date('2026-11-25T03:32:18Z'), config.server.limits);
/** The events explain makes of `value`, none of it refused. */
const eventsOf = async (value: unknown) => {
  const { events, refused } = await read(value);
  expect(refused).toBeUndefined();
  return events;
};
const webhook = readFixture<{ alerts: Array<Record<string, unknown>> }>('alertmanager-0.25-webhook-firing.json');

describe('hollowtrees explain', () => {
  it('reads a webhook payload through the receiver\'s parser and tells, per flow, whether it runs, in which group, with which plugins', async () => {
    const [event] = await eventsOf(webhook);
    expect(event!.type).toBe('prometheus.server.alert.SpotTerminationNotice');
    expect(explainEvent(event!, config.flows)).toEqual([
      { flow: 'drain', matched: true, groupKey: 'drain:{instance_id="i-0abc123"}', plugins: ['log'] },
      { flow: 'rebalance', matched: false, reason: 'type is "prometheus.server.alert.SpotTerminationNotice", expected one of allowedEvents [prometheus.server.alert.SpotRebalance]' },
      { flow: 'audit', matched: false, reason: 'type is "prometheus.server.alert.SpotTerminationNotice", expected one of allowedEvents [prometheus.server.alert.*.resolved]' },
    ]);
  });

  it('reads one postable alert or a list of them (v2: endsAt in the past means resolved), and names the filter that failed', async () => {
    const alert = { labels: { alertname: 'SpotTerminationNotice', instance_id: 'i-1', cluster_name: 'dev' }, startsAt: '2026-11-25T03:32:00Z' };
    const [one] = await eventsOf(alert);
    expect(formatExplanation(one!, explainEvent(one!, config.flows))).toBe(
      [
        `event prometheus.server.alert.SpotTerminationNotice (id ${one!.id}, source urn:hollowtrees:receiver)`,
        '  drain: not taken: cluster_name is "dev", expected "prod"',
        '  rebalance: not taken: type is "prometheus.server.alert.SpotTerminationNotice", expected one of allowedEvents [prometheus.server.alert.SpotRebalance]',
        '  audit: not taken: type is "prometheus.server.alert.SpotTerminationNotice", expected one of allowedEvents [prometheus.server.alert.*.resolved]',
        '  no flow takes this event',
        '',
      ].join('\n'),
    );
    const events = await eventsOf([alert, { ...alert, endsAt: '2026-11-25T03:32:10Z' }]);
    expect(events.map((e) => e.type)).toEqual(['prometheus.server.alert.SpotTerminationNotice', 'prometheus.server.alert.SpotTerminationNotice.resolved']);
    expect(explainEvent(events[1]!, config.flows).find((v) => v.flow === 'audit')).toEqual({ flow: 'audit', matched: true, groupKey: `audit:{id=${JSON.stringify(events[1]!.id)}}`, plugins: ['log'] });
  });

  it('reads a CloudEvent in JSON, and says what is wrong with one it cannot use', async () => {
    const cloudEvent = { specversion: '1.0', id: 'ev-1', source: 'urn:node-watcher', type: 'prometheus.server.alert.SpotRebalance', data: { labels: { instance_id: 'i-2' } } };
    const [event] = await eventsOf(cloudEvent);
    // As the receiver hands it to the flows.
    expect(event).toEqual({ ...cloudEvent, datacontenttype: 'application/json' });
    expect(explainEvent(event!, config.flows)[1]).toEqual({ flow: 'rebalance', matched: true, groupKey: 'rebalance:{id="ev-1"}', plugins: ['log'] });
    await expect(read({ ...cloudEvent, type: undefined })).rejects.toThrow(new ExplainInputError('type: required (expected string)'));
    await expect(read([{ labels: { alertname: 5 } }])).rejects.toThrow(/^not a CloudEvent \(no specversion\), an SQS notice, nor an alert the receiver takes: alerts\[0\]\.labels\.alertname/);
    await expect(readExplainInput(Buffer.from('{"labels":'), new Date(), config.server.limits)).rejects.toThrow(/^not valid JSON: /);
    // JSON that is no object nor list is named as what it is, not as an alert inside a list the input does not have.
    for (const value of [42, 'text', null, true]) {
      await expect(read(value)).rejects.toThrow(new ExplainInputError('not a CloudEvent (no specversion), an SQS notice, nor an alert the receiver takes: alerts: expected a JSON array of alerts'));
    }
  });

  it('says that an empty list of alerts, or a webhook payload without alerts, holds nothing to explain, instead of printing nothing', async () => {
    const nothing = new ExplainInputError('holds no alert or event to explain (the receiver would answer it 200 and run nothing)');
    await expect(read([])).rejects.toThrow(nothing);
    await expect(read({ ...webhook, alerts: [] })).rejects.toThrow(nothing);
  });

  it('takes the valid alerts of a batch, as the receiver does, and names the ones it would refuse', async () => {
    const spot = { labels: { alertname: 'SpotTerminationNotice', instance_id: 'i-1' } };
    const { events, refused } = await read([spot, { labels: { instance_id: 'i-2' } }]);
    expect(events.map((e) => labelsOf(e).instance_id)).toEqual(['i-1']);
    expect(refused).toBe('alerts[1].labels.alertname: required: labels.alertname (1 of 2 alerts; the others are explained)');
  });

  it('reads an SQS message body as the queue source converts it, and says what the source would do with one it does not act on', async () => {
    const { config: sqsFlows } = parseConfig(
      'flows:\n  spot:\n    allowedEvents: [aws.ec2.spot.interruption-warning]\n    filters: { instance_action: terminate }\n    groupBy: [instance_id]\n    plugins: [log]\n',
      'explain.yaml',
      {},
    );
    const [event] = (await readExplainInput(Buffer.from(readNoticeSample('spot-interruption-warning.json')), new Date(), sqsFlows.server.limits)).events;
    expect(explainEvent(event!, sqsFlows.flows)).toEqual([{ flow: 'spot', matched: true, groupKey: 'spot:{instance_id="i-0b662ef9931388ba0"}', plugins: ['log'] }]);
    await expect(readExplainInput(Buffer.from(readNoticeSample('autoscaling-test-notification.json')), new Date(), sqsFlows.server.limits)).rejects.toThrow(/^an SQS message the queue source would delete without a run: /);
    await expect(readExplainInput(Buffer.from('{"detail-type": "EC2 Spot Instance Interruption Warning", "id": "x"}'), new Date(), sqsFlows.server.limits)).rejects.toThrow(/^an SQS message the queue source would delete as unprocessable: /);
  });

  it('refuses a body that is not UTF-8 with the receiver\'s message, as the receiver answers it 400, instead of explaining what a lenient decoding made of it', async () => {
    const latin1 = Buffer.from('[{"labels":{"alertname":"SpotTerminationNotice","instance_id":"i-\xe9"}}]', 'latin1');
    await expect(readExplainInput(latin1, new Date(), config.server.limits)).rejects.toThrow(new ExplainInputError('body is not valid UTF-8'));
  });

  it('refuses a body larger than server.limits.maxBodyBytes, as the receiver answers it 413 whatever it holds; an SQS message body is not held to it', async () => {
    const limits = { ...config.server.limits, maxBodyBytes: 1_024 };
    const alert = { labels: { alertname: 'SpotTerminationNotice', instance_id: 'i-1', cluster_name: 'prod', severity: 'critical' }, annotations: { summary: 'x'.repeat(1_100) } };
    const event = { specversion: '1.0', id: 'e-1', source: 's', type: 'prometheus.server.alert.SpotTerminationNotice', data: { labels: { instance_id: 'i-1' }, pad: 'x'.repeat(1_100) } };
    for (const body of [alert, [alert], { version: '4', status: 'firing', alerts: [alert] }, event, [event]]) {
      await expect(readExplainInput(Buffer.from(JSON.stringify(body)), new Date(), limits)).rejects.toThrow(new ExplainInputError('request body is larger than the limit of 1024 bytes'));
    }
    // Just within the limit, the same alert is explained.
    const within = JSON.stringify({ ...alert, annotations: { summary: 'x'.repeat(900) } });
    expect((await readExplainInput(Buffer.from(within), new Date(), { ...limits, maxBodyBytes: Buffer.byteLength(within) })).events).toHaveLength(1);
    const notice = readNoticeSample('spot-interruption-warning.json');
    expect((await readExplainInput(Buffer.from(notice), new Date(), { ...limits, maxBodyBytes: 16 })).events).toHaveLength(1);
  });
});
