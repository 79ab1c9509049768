import { createServer, type IncomingMessage, type Server } from 'node:http';
import { Code } from '@hollowtrees/grpcplugin';
import { invokeHandler, testEvent } from '@hollowtrees/grpcplugin/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { WebhookHandler } from './webhook-handler.js';

/** A webhook on loopback answering each POST with `status` (none: it never answers), keeping what it was sent. */
async function webhook(status: number | undefined): Promise<{ url: string; bodies: string[]; closed: Promise<void>; server: Server }> {
  const bodies: string[] = [];
  let requestClosed!: () => void;
  const closed = new Promise<void>((resolve) => (requestClosed = resolve));
  const server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      bodies.push(body);
      if (status !== undefined) res.writeHead(status).end();
    });
    res.on('close', requestClosed);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}/hook`, bodies, closed, server };
}

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve).closeAllConnections());
});

const reclaim = testEvent({ labels: { instance_id: 'i-0abc123' } });

describe('WebhookHandler', () => {
  it("posts the event's type and instance to the flow's config.url", async () => {
    const hook = await webhook(200);
    const outcome = await invokeHandler(new WebhookHandler(), reclaim, { config: { url: hook.url } });
    const text = 'prometheus.server.alert.SpotInstanceTerminating: i-0abc123';
    expect(outcome).toEqual({ ok: true, result: { status: 'ok', message: `posted "${text}"`, attributes: {} } });
    expect(hook.bodies.map((b) => JSON.parse(b) as unknown)).toEqual([{ text }]);
  });

  it.each([
    [503, Code.Unavailable, true],
    [429, Code.ResourceExhausted, true],
    [404, Code.FailedPrecondition, false],
  ])('a webhook answering %s fails with %s, retried by core: %s', async (status, code, retryable) => {
    const hook = await webhook(status);
    const outcome = await invokeHandler(new WebhookHandler(), reclaim, { config: { url: hook.url } });
    expect(outcome.ok || [outcome.error.code, outcome.error.retryable]).toEqual([code, retryable]);
  });

  it('an unreachable webhook is UNAVAILABLE, retried', async () => {
    const hook = await webhook(200);
    await new Promise((resolve) => hook.server.close(resolve));
    const outcome = await invokeHandler(new WebhookHandler(), reclaim, { config: { url: hook.url } });
    expect(outcome.ok || [outcome.error.code, outcome.error.message]).toEqual([Code.Unavailable, 'webhook unreachable: fetch failed']);
  });

  it('a webhook that never answers: at the deadline the call is DEADLINE_EXCEEDED and the request is abandoned', async () => {
    const hook = await webhook(undefined);
    const outcome = await invokeHandler(new WebhookHandler(), reclaim, { config: { url: hook.url }, timeoutMs: 300 });
    expect(outcome.ok || outcome.error.code).toBe(Code.DeadlineExceeded);
    await hook.closed;
  });

  it('a flow that gives no config.url fails the run at once (FAILED_PRECONDITION, not retried)', async () => {
    const outcome = await invokeHandler(new WebhookHandler(), reclaim);
    expect(outcome.ok || [outcome.error.code, outcome.error.retryable]).toEqual([Code.FailedPrecondition, false]);
  });
});
