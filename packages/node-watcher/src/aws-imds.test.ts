import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { manualClock } from '@hollowtrees/grpcplugin/testing';
import { startImdsStandIn, type ImdsScheduledEvent } from '@hollowtrees/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { AwsImdsMonitor } from './aws-imds.js';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

describe('AwsImdsMonitor', () => {
  it('renews its session token at 80 % of the TTL, before IMDS would refuse it', async () => {
    const clock = manualClock();
    const imds = await startImdsStandIn({ now: clock.now });
    closers.push(() => imds.close());
    const monitor = new AwsImdsMonitor({ baseUrl: imds.url, tokenTtlSeconds: 100, pollIntervalMs: 1_000, backoff: () => 1, clock });
    const signal = new AbortController().signal;
    const identity = await monitor.identity(signal);
    expect(identity).toEqual({ instanceId: 'i-0abc123def4567890', instanceType: 'm5.large', availabilityZone: 'us-east-1a', region: 'us-east-1' });
    expect(imds.tokensIssued).toBe(1);

    clock.advance(79_000);
    await monitor.check(identity, signal);
    expect(imds.tokensIssued).toBe(1);

    clock.advance(1_000);
    await monitor.check(identity, signal);
    expect(imds.tokensIssued).toBe(2);
    // Renewed ahead of time: IMDS never had to refuse a token.
    expect(imds.calls.filter((c) => c.status === 401)).toEqual([]);
  });

  it('a token request answered 200 with a page (a broken proxy in front of IMDS) is no token: refused, and the next read asks again', async () => {
    const imds = await startImdsStandIn();
    closers.push(() => imds.close());
    // In front of IMDS, a proxy whose first token request meets its error page; then it passes requests on.
    let garbled = 1;
    const proxy = createServer((req, res) => {
      if (req.method === 'PUT' && garbled-- > 0) return void res.writeHead(200, { 'content-type': 'text/html' }).end('<html>\n<body>502 Bad Gateway</body>\n</html>\n');
      const headers = Object.fromEntries(Object.entries(req.headers).filter((h): h is [string, string] => h[0].startsWith('x-aws-ec2-metadata-') && typeof h[1] === 'string'));
      void fetch(`${imds.url}${req.url}`, { method: req.method ?? 'GET', headers }).then(async (answer) => res.writeHead(answer.status).end(await answer.text()));
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise((resolve) => proxy.close(() => resolve())));
    const monitor = new AwsImdsMonitor({ baseUrl: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, pollIntervalMs: 1_000, backoff: () => 1, clock: manualClock() });
    const signal = new AbortController().signal;
    await expect(monitor.identity(signal)).rejects.toThrow(/latest\/api\/token: HTTP 200, and the answer is no session token/);
    // The proxy is fixed: the very next read gets a token, not hours later when the page would have been renewed.
    expect(await monitor.identity(signal)).toMatchObject({ instanceId: 'i-0abc123def4567890' });
  });

  it('says which path answered what when IMDS fails', async () => {
    const imds = await startImdsStandIn();
    closers.push(() => imds.close());
    const monitor = new AwsImdsMonitor({ baseUrl: imds.url, pollIntervalMs: 1_000, backoff: () => 1, clock: manualClock() });
    const signal = new AbortController().signal;
    const identity = await monitor.identity(signal);
    imds.faults.fail(1, 500);
    await expect(monitor.check(identity, signal)).rejects.toThrow(/HTTP 500/);
    imds.faults.fail(1, 403);
    await expect(monitor.identity(signal)).rejects.toThrow(/HTTP 403/);
  });

  it('names the whole URL asked, base included, when IMDS answers a read badly: --metadata-url may point at a proxy', async () => {
    const imds = await startImdsStandIn();
    closers.push(() => imds.close());
    const monitor = new AwsImdsMonitor({ baseUrl: imds.url, pollIntervalMs: 1_000, backoff: () => 1, clock: manualClock() });
    const signal = new AbortController().signal;
    imds.faults.failPath('/latest/meta-data/placement/region', 403);
    await expect(monitor.identity(signal)).rejects.toThrow(`GET ${imds.url}/latest/meta-data/placement/region: HTTP 403`);
    imds.faults.clear();
    const identity = await monitor.identity(signal);
    imds.faults.failPath('/latest/meta-data/spot/instance-action', 500);
    await expect(monitor.check(identity, signal)).rejects.toThrow(`GET ${imds.url}/latest/meta-data/spot/instance-action: HTTP 500`);
  });

  it.each(['null', '[]', '5', '"terminate"'])('an instance-action or rebalance answer that is JSON but no object (%s) fails naming its URL, and makes no notice', async (body) => {
    const imds = await startImdsStandIn();
    closers.push(() => imds.close());
    const monitor = new AwsImdsMonitor({ baseUrl: imds.url, pollIntervalMs: 1_000, backoff: () => 1, clock: manualClock() });
    const signal = new AbortController().signal;
    const identity = await monitor.identity(signal);
    for (const path of ['spot/instance-action', 'events/recommendations/rebalance']) {
      imds.answerRaw(path, body);
      await expect(monitor.check(identity, signal)).rejects.toThrow(`GET ${imds.url}/latest/meta-data/${path}: expected a JSON object, got ${body}`);
      imds.answerRaw(path, '{}');
    }
  });

  it('a scheduled event that is no object (a broken IMDS or proxy) does not hide the active one beside it', async () => {
    const imds = await startImdsStandIn();
    closers.push(() => imds.close());
    const monitor = new AwsImdsMonitor({ baseUrl: imds.url, pollIntervalMs: 1_000, backoff: () => 1, clock: manualClock() });
    const signal = new AbortController().signal;
    const identity = await monitor.identity(signal);
    imds.scheduleMaintenance(null as unknown as ImdsScheduledEvent);
    imds.scheduleMaintenance({ NotBefore: '30 Nov 2026 01:00:00 GMT', Code: 'system-reboot', Description: 'scheduled reboot', EventId: 'instance-event-0d59937288b749b32', State: 'active' });
    expect(await monitor.check(identity, signal)).toMatchObject([{ kind: 'scheduled-maintenance', id: 'instance-event-0d59937288b749b32' }]);
  });
});
