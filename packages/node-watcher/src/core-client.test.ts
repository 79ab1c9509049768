import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { CoreClient } from './core-client.js';
import type { Hollowtrees } from '@hollowtrees/core';
import { Cleanups, holdOtherGroups, OTHER_FLOW, startCoreWithConfig, startPrefixProxy, type PrefixProxy } from './test-support/watch-harness.js';

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

/** A server that answers every request through `answer`: a stand-in for a broken core or proxy. */
async function answeringWith(answer: (res: ServerResponse) => void): Promise<string> {
  const server = cleanups.add(createServer((_req, res) => answer(res)), (s) => {
    s.closeAllConnections();
    return new Promise((resolve) => s.close(resolve));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const EVENT = { specversion: '1.0', id: 'e-1', source: 'test', type: 't' };

describe('CoreClient', () => {
  it('reads Retry-After as delay-seconds and as an HTTP-date (a proxy in front of core may send either)', async () => {
    const answerOf = async (retryAfter: string) => {
      const url = await answeringWith((res) => res.writeHead(503, { 'retry-after': retryAfter }).end());
      const core = new CoreClient({ coreUrl: url });
      try {
        return await core.post(EVENT, new AbortController().signal);
      } finally {
        core.close();
      }
    };
    expect((await answerOf('7')).retryAfterMs).toBe(7_000);
    const inAMinute = (await answerOf(new Date(Date.now() + 60_000).toUTCString())).retryAfterMs;
    // The date has whole seconds, and the answer takes a moment: a little under a minute.
    expect(inAMinute).toBeGreaterThan(50_000);
    expect(inAMinute).toBeLessThanOrEqual(60_000);
    expect((await answerOf('Wed, 21 Oct 2015 07:28:00 GMT')).retryAfterMs).toBe(0);
    expect((await answerOf('soon')).retryAfterMs).toBeUndefined();
  });

  it('gives up on an answer that trickles in (a byte every 50 ms) after timeoutMs from the start, not only on an idle connection', async () => {
    const url = await answeringWith((res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const drip = setInterval(() => res.write(' '), 50);
      res.once('close', () => clearInterval(drip));
    });
    const client = cleanups.add(new CoreClient({ coreUrl: url, timeoutMs: 300 }), (c) => c.close());
    await expect(client.post(EVENT, new AbortController().signal)).rejects.toThrow(`POST ${url}/api/v1/events: no complete answer in 300 ms`);
  });

  it('refuses an answer larger than maxAnswerBytes, whether announced by Content-Length or streamed without one', async () => {
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const streamed = await answeringWith((res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      // 64 MiB at most, as fast as the client reads: the old client read it all.
      let left = 1_024;
      const more = (): void => {
        while (left-- > 0) if (!res.write(chunk)) return void res.once('drain', more);
        res.end();
      };
      res.once('close', () => (left = 0));
      more();
    });
    const announced = await answeringWith((res) => res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(64 * 1024 * 1024) }).flushHeaders());
    for (const url of [streamed, announced]) {
      const client = cleanups.add(new CoreClient({ coreUrl: url, maxAnswerBytes: 1024 * 1024, timeoutMs: 15_000 }), (c) => c.close());
      await expect(client.post(EVENT, new AbortController().signal)).rejects.toThrow(`POST ${url}/api/v1/events: the answer is larger than 1048576 bytes`);
    }
  });

  it("groupsOf and runsOf ask core for one event's: a read of a few hundred bytes among more groups than maxGroupsRead", async () => {
    const core = cleanups.add(await startCoreWithConfig(`flows:\n${OTHER_FLOW}`, 'groups.yaml', {}), (c) => c.close());
    await holdOtherGroups(core, 1_001);
    const proxy = cleanups.add(await startPrefixProxy('/core', core.url), (p) => p.close());
    const client = cleanups.add(new CoreClient({ coreUrl: `${proxy.url}/core`, maxGroupsRead: 1_000 }), (c) => c.close());
    const signal = new AbortController().signal;

    expect(await client.groupsOf('other-1000', signal)).toEqual([expect.objectContaining({ flow: 'other', eventId: 'other-1000' })]);
    expect(await client.runsOf('other-1000', signal)).toEqual([expect.objectContaining({ flow: 'other', eventId: 'other-1000', outcome: 'succeeded' })]);
    expect(await client.runsOf('never-sent', signal)).toEqual([]);
    expect(proxy.paths).toEqual(['/core/api/v1/status/groups?eventId=other-1000&limit=16', '/core/api/v1/status/runs?eventId=other-1000', '/core/api/v1/status/runs?eventId=never-sent']);
    expect(proxy.bytes).toBeLessThan(1_000);
  });

  describe('against a core older than the watcher (its status API lists every event\'s, whatever the eventId)', () => {
    async function olderCore(maxGroupsRead?: number): Promise<{ client: CoreClient; proxy: PrefixProxy; core: Hollowtrees }> {
      const core = cleanups.add(await startCoreWithConfig(`flows:\n${OTHER_FLOW}`, 'groups.yaml', {}), (c) => c.close());
      // One more than the status API's first page.
      await holdOtherGroups(core, 1_001);
      const proxy = cleanups.add(await startPrefixProxy('/core', core.url), (p) => p.close());
      proxy.dropEventIds(true);
      const client = cleanups.add(new CoreClient({ coreUrl: `${proxy.url}/core`, ...(maxGroupsRead === undefined ? {} : { maxGroupsRead }) }), (c) => c.close());
      return { client, proxy, core };
    }

    it("groupsOf reads core's groups past the status API's first page, but gives up on more than maxGroupsRead rather than fill the watcher's memory", async () => {
      const signal = new AbortController().signal;
      expect(await (await olderCore(1_001)).client.groupsOf('other-1000', signal)).toEqual([expect.objectContaining({ flow: 'other', eventId: 'other-1000' })]);
      expect(await (await olderCore(1_000)).client.groupsOf('other-1000', signal)).toBeUndefined();
    });

    it("groupsOf reads each of core's groups once when they take more than the status API's first page; runsOf finds the event's among all", async () => {
      const { client, proxy, core } = await olderCore();
      const all = Buffer.byteLength(await (await fetch(`${core.url}/api/v1/status/groups?limit=1001`)).text());

      expect(await client.groupsOf('other-1000', new AbortController().signal)).toEqual([expect.objectContaining({ flow: 'other', eventId: 'other-1000' })]);
      // Every group, and a few more bytes (a first look at 16 groups, for the count); the old client read the first 1,000 twice.
      expect(proxy.bytes).toBeLessThan(all * 1.02);
      expect(await client.runsOf('other-1000', new AbortController().signal)).toEqual([expect.objectContaining({ eventId: 'other-1000', outcome: 'succeeded' })]);
    });
  });
});
