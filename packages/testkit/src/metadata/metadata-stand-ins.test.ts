import { afterEach, describe, expect, it } from 'vitest';
import { startAzureMetadataStandIn } from './azure-metadata-stand-in.js';
import { startGceMetadataStandIn } from './gce-metadata-stand-in.js';
import { startImdsStandIn } from './imds-stand-in.js';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});
function keep<T extends { close(): Promise<void> }>(standIn: T): T {
  closers.push(() => standIn.close());
  return standIn;
}

describe('IMDSv2 stand-in', () => {
  it('refuses a GET without a token (401) and a token request without a valid TTL (400) or through a proxy (403)', async () => {
    const imds = keep(await startImdsStandIn());
    expect((await fetch(`${imds.url}/latest/meta-data/instance-id`)).status).toBe(401);
    expect((await fetch(`${imds.url}/latest/api/token`, { method: 'PUT' })).status).toBe(400);
    expect((await fetch(`${imds.url}/latest/api/token`, { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '21601' } })).status).toBe(400);
    expect((await fetch(`${imds.url}/latest/api/token`, { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60', 'x-forwarded-for': '10.0.0.1' } })).status).toBe(403);
  });

  it('answers with a token until it expires; 404 for nothing pending, the notice once scheduled', async () => {
    let now = Date.parse('2026-11-30T00:00:00Z');
    const imds = keep(await startImdsStandIn({ now: () => now }));
    const token = await (await fetch(`${imds.url}/latest/api/token`, { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' } })).text();
    const get = (path: string) => fetch(`${imds.url}/latest/meta-data/${path}`, { headers: { 'x-aws-ec2-metadata-token': token } });
    expect(await (await get('instance-id')).text()).toBe('i-0abc123def4567890');
    expect((await get('spot/instance-action')).status).toBe(404);
    expect(await (await get('events/maintenance/scheduled')).json()).toEqual([]);
    imds.interruptSpot({ action: 'stop', time: '2026-11-30T00:02:00Z' });
    expect(await (await get('spot/instance-action')).json()).toEqual({ action: 'stop', time: '2026-11-30T00:02:00Z' });
    now += 60_000;
    expect((await get('instance-id')).status).toBe(401);
  });

  it('shows a notice scheduled for later only from then on', async () => {
    const imds = keep(await startImdsStandIn());
    const token = await (await fetch(`${imds.url}/latest/api/token`, { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' } })).text();
    // The GET before the notice's time must be served within inMs, which a stall of a busy machine must not outlast.
    imds.recommendRebalance('2026-11-30T00:00:00Z', { inMs: 1_000 });
    const get = () => fetch(`${imds.url}/latest/meta-data/events/recommendations/rebalance`, { headers: { 'x-aws-ec2-metadata-token': token } });
    expect((await get()).status).toBe(404);
    // Timers of one duration fire in the order they were set: the notice's first.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await (await get()).json()).toEqual({ noticeTime: '2026-11-30T00:00:00Z' });
  });
});

describe('Compute Engine metadata stand-in', () => {
  it('answers 403 without Metadata-Flavor: Google', async () => {
    const gce = keep(await startGceMetadataStandIn());
    expect((await fetch(`${gce.url}/computeMetadata/v1/instance/preempted`)).status).toBe(403);
  });

  it('answers a hanging GET on change, at once for a stale ETag, and unchanged after timeout_sec', async () => {
    const gce = keep(await startGceMetadataStandIn());
    const headers = { 'metadata-flavor': 'Google' };
    const url = `${gce.url}/computeMetadata/v1/instance/preempted`;
    const first = await fetch(url, { headers });
    expect(first.headers.get('metadata-flavor')).toBe('Google');
    const etag = first.headers.get('etag')!;
    expect(await first.text()).toBe('FALSE');

    const hanging = fetch(`${url}?wait_for_change=true&last_etag=${etag}`, { headers });
    while (gce.waiting === 0) await new Promise((r) => setTimeout(r, 5));
    gce.preempt();
    const changed = await hanging;
    expect(await changed.text()).toBe('TRUE');
    expect(changed.headers.get('etag')).not.toBe(etag);

    expect(await (await fetch(`${url}?wait_for_change=true&last_etag=${etag}`, { headers })).text()).toBe('TRUE');
    const timedOut = await fetch(`${url}?wait_for_change=true&last_etag=${changed.headers.get('etag')}&timeout_sec=0.05`, { headers });
    expect(await timedOut.text()).toBe('TRUE');
  });
});

describe('Azure metadata stand-in', () => {
  it('answers 400 without Metadata: true or without api-version', async () => {
    const azure = keep(await startAzureMetadataStandIn());
    const noHeader = await fetch(`${azure.url}/metadata/scheduledevents?api-version=2020-07-01`);
    expect(noHeader.status).toBe(400);
    expect(await noHeader.json()).toEqual({ error: 'Bad request. Required metadata header not specified' });
    expect((await fetch(`${azure.url}/metadata/scheduledevents`, { headers: { metadata: 'true' } })).status).toBe(400);
  });

  it('keeps DocumentIncarnation, growing at every change, and starts an event on StartRequests', async () => {
    const azure = keep(await startAzureMetadataStandIn());
    const url = `${azure.url}/metadata/scheduledevents?api-version=2020-07-01`;
    const read = async () => (await (await fetch(url, { headers: { metadata: 'true' } })).json()) as { DocumentIncarnation: number; Events: Array<{ EventId: string; Resources: string[] }> };
    expect(await read()).toEqual({ DocumentIncarnation: 1, Events: [] });
    const id = azure.scheduleEvent({ EventType: 'Terminate' });
    const doc = await read();
    expect(doc.DocumentIncarnation).toBe(2);
    expect(doc.Events).toMatchObject([{ EventId: id, EventType: 'Terminate', Resources: [azure.vm.name], EventStatus: 'Scheduled' }]);
    expect((await read()).DocumentIncarnation).toBe(2);

    const approved = await fetch(url, { method: 'POST', headers: { metadata: 'true' }, body: JSON.stringify({ StartRequests: [{ EventId: id }] }) });
    expect(approved.status).toBe(200);
    expect(azure.started).toEqual([id]);
    expect(await read()).toEqual({ DocumentIncarnation: 3, Events: [] });
  });

  it('refuses (400) StartRequests naming an event that has started, and starts nothing of it', async () => {
    const azure = keep(await startAzureMetadataStandIn());
    const id = azure.scheduleEvent({ EventStatus: 'Started', NotBefore: '' });
    const refused = await fetch(`${azure.url}/metadata/scheduledevents?api-version=2020-07-01`, { method: 'POST', headers: { metadata: 'true' }, body: JSON.stringify({ StartRequests: [{ EventId: id }] }) });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toEqual({ error: expect.stringContaining(id) as string });
    expect(azure.started).toEqual([]);
  });
});

describe('metadata faults', () => {
  it('fail the next requests with the status asked for, then the stand-in answers again', async () => {
    const gce = keep(await startGceMetadataStandIn());
    gce.faults.fail(2, 503);
    const get = () => fetch(`${gce.url}/computeMetadata/v1/instance/id`, { headers: { 'metadata-flavor': 'Google' } });
    expect((await get()).status).toBe(503);
    expect((await get()).status).toBe(503);
    expect((await get()).status).toBe(200);
    gce.faults.dropConnection(1);
    await expect(get()).rejects.toThrow();
    expect((await get()).status).toBe(200);
  });
});
