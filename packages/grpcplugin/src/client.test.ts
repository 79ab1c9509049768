import { getEventListeners } from 'node:events';
import { makeTestCertificates, rejectionOf } from '@hollowtrees/testkit';
import { describe, expect, it } from 'vitest';
import { PluginClient } from './client.js';
import { Code, PluginError } from './errors.js';
import { pluginPairs, TRANSPORTS, testEvent } from './test-support/plugin-pair.js';

const pairs = pluginPairs();
const certs = makeTestCertificates();
const rejection = (p: Promise<unknown>): Promise<PluginError> => rejectionOf(p, PluginError);

describe.each(TRANSPORTS)('PluginClient over %s', (transport) => {
  const start = pairs.over(transport);

  it('a signal aborted before the call fails it with CANCELLED, and the plugin never sees it', async () => {
    let calls = 0;
    const { client } = await start({ handle: () => void calls++ });
    const err = await rejection(client.handle(testEvent, { flow: 'f', signal: AbortSignal.abort() }));
    expect([err.code, err.message]).toEqual([Code.Canceled, 'call cancelled before it started']);
    await client.handle(testEvent, { flow: 'f' });
    expect(calls).toBe(1);
  });

  it('leaves no listener on a signal shared by many calls, whether they succeed or fail', async () => {
    let n = 0;
    const { client } = await start({
      handle: () => {
        if (n++ % 2) throw new PluginError(Code.Unavailable, 'busy');
      },
    });
    const run = new AbortController();
    for (let i = 0; i < 4; i++) await client.handle(testEvent, { flow: 'f', signal: run.signal }).catch(() => {});
    expect(getEventListeners(run.signal, 'abort')).toHaveLength(0);
  });

  it('refuses to send a request larger than maxSendMessageBytes (RESOURCE_EXHAUSTED); the plugin never sees it', async () => {
    let calls = 0;
    const { client } = await start({ handle: () => void calls++ }, {}, { maxSendMessageBytes: 4_096 });
    const big = { ...testEvent, data: { labels: { pad: 'x'.repeat(8_192) } } };
    expect((await rejection(client.handle(big, { flow: 'f' }))).code).toBe(Code.ResourceExhausted);
    await client.handle(testEvent, { flow: 'f' });
    expect(calls).toBe(1);
  });

  it('a request that cannot be encoded (an attempt of 1.5) fails INTERNAL, unsent, and the next call goes out whole', async () => {
    const saw: string[] = [];
    const { client } = await start({ handle: (e, { attempt }) => void saw.push(`attempt ${attempt}, extensions ${JSON.stringify(e.extensions ?? {})}`) });
    // Its event is encoded before the attempt fails: an extension shows whether those bytes leak into the next request.
    const err = await rejection(client.handle({ ...testEvent, extensions: { leftover: { type: 'string', value: 'yes' } } }, { flow: 'f', attempt: 1.5 }));
    expect([err.code, err.message]).toEqual([Code.Internal, 'request message serialization failure: invalid uint32: 1.5']);
    // The encoder shared by every call was left part-written: the next request must not carry those bytes.
    expect(await client.handle(testEvent, { flow: 'f', attempt: 3 })).toMatchObject({ status: 'ok' });
    expect(saw).toEqual(['attempt 3, extensions {}']);
  });

  it.each([0, -1, 1.5, Number.NaN])('refuses maxSendMessageBytes %s at once, naming it', (bad) => {
    // 0 refused every call with RESOURCE_EXHAUSTED, which core retries; NaN lifted the limit.
    expect(() => new PluginClient('127.0.0.1:1', { transport, maxSendMessageBytes: bad })).toThrow(
      new RangeError(`PluginClient: maxSendMessageBytes must be a whole number of bytes of at least 1, got ${bad}`),
    );
  });

  it.each([
    [{ initialMs: 0, maxMs: 2_000 }, 'reconnectBackoff.initialMs must be a whole number of milliseconds from 1 to 2147483647 (24.8 days), got 0'],
    [{ initialMs: 250, maxMs: Number.NaN }, 'reconnectBackoff.maxMs must be a whole number of milliseconds from 1 to 2147483647 (24.8 days), got NaN'],
    [{ initialMs: 5_000, maxMs: 1_000 }, 'reconnectBackoff.initialMs (5000) must be at most maxMs (1000)'],
  ])('refuses reconnectBackoff %j at once, naming it', (reconnectBackoff, message) => {
    // 0 had grpc-js retry a plugin that is down in a tight loop.
    expect(() => new PluginClient('127.0.0.1:1', { transport, reconnectBackoff })).toThrow(new RangeError(`PluginClient: ${message}`));
  });

  it('refuses a timeout no timer can wait (NaN, Infinity, 2^31 ms or more) at once, naming it; the plugin never sees the call', async () => {
    // A timer fires a delay past 2^31-1 ms after 1 ms: such a call failed at once with DEADLINE_EXCEEDED, and over the stream NaN or Infinity threw out of its write, ending the process.
    let calls = 0;
    const { client } = await start({ handle: () => void calls++ });
    for (const timeoutMs of [Number.NaN, Infinity, 2 ** 31]) {
      await expect(client.handle(testEvent, { flow: 'f', timeoutMs })).rejects.toThrow(new RangeError(`PluginClient.handle: timeoutMs must be a number of milliseconds up to 2147483647 (24.8 days), got ${timeoutMs}`));
      await expect(client.checkHealth({ timeoutMs })).rejects.toThrow(/^PluginClient.checkHealth: timeoutMs must be/);
    }
    expect(() => new PluginClient('127.0.0.1:1', { defaultTimeoutMs: 2 ** 40 })).toThrow(new RangeError('PluginClient: defaultTimeoutMs must be a number of milliseconds up to 2147483647 (24.8 days), got 1099511627776'));
    expect(await client.handle(testEvent, { flow: 'f', timeoutMs: 2 ** 31 - 1 })).toMatchObject({ status: 'ok' });
    expect(await client.checkHealth({ timeoutMs: 2 ** 31 - 1 })).toBe('SERVING');
    expect(calls).toBe(1);
  });

  it('refuses a timeout of 0 or less at once, naming it: each call failed with DEADLINE_EXCEEDED, which callers retry as a slow plugin; the plugin never sees the call', async () => {
    let calls = 0;
    const { client } = await start({ handle: () => void calls++ });
    for (const timeoutMs of [0, -1_000]) {
      await expect(client.handle(testEvent, { flow: 'f', timeoutMs })).rejects.toThrow(new RangeError(`PluginClient.handle: timeoutMs must be more than 0 milliseconds, got ${timeoutMs}`));
      await expect(client.checkHealth({ timeoutMs })).rejects.toThrow(new RangeError(`PluginClient.checkHealth: timeoutMs must be more than 0 milliseconds, got ${timeoutMs}`));
      expect(() => new PluginClient('127.0.0.1:1', { defaultTimeoutMs: timeoutMs })).toThrow(new RangeError(`PluginClient: defaultTimeoutMs must be more than 0 milliseconds, got ${timeoutMs}`));
    }
    expect(calls).toBe(0);
  });

  it('asks the health service about the plugin service, or the service named', async () => {
    const { client } = await start({ handle: () => {} });
    expect(await client.checkHealth()).toBe('SERVING');
    expect(await client.checkHealth({ service: 'hollowtrees.plugin.v1.PluginService' })).toBe('SERVING');
    expect((await rejection(client.checkHealth({ service: 'no.such.Service' }))).code).toBe(Code.NotFound);
  });

  it('checkHealth after close() fails as a call does, with a PluginError: CANCELLED, the client was closed', async () => {
    // grpc-js threw its plain Error "Channel has been shut down" out of the check: no code to branch on.
    const { client } = await start({ handle: () => {} });
    client.close();
    expect(await rejection(client.checkHealth())).toMatchObject({ code: Code.Canceled, message: 'the client was closed before the call was sent' });
  });

  it('a call made in the turn of close(), or after it, never goes out; it fails with CANCELLED, saying so (the stream\'s) or as grpc-js says (a unary call made before close())', async () => {
    let calls = 0;
    const { client } = await start({ handle: () => void calls++ });
    await client.handle(testEvent, { flow: 'f' });
    const sameTurn = rejection(client.handle(testEvent, { flow: 'f', timeoutMs: 2_000 }));
    client.close();
    const after = rejection(client.handle(testEvent, { flow: 'f', timeoutMs: 2_000 }));
    // A unary call made before close() is grpc-js' own, which fails it UNAVAILABLE: "Channel closed before call started".
    expect((await sameTurn).code).toBe(transport === 'stream' ? Code.Canceled : Code.Unavailable);
    expect(await after).toMatchObject({ code: Code.Canceled, message: 'the client was closed before the call was sent' });
    expect(calls).toBe(1);
  });

  it('a call cancelled after close() costs the calls still in flight nothing: they get their answers', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const started: string[] = [];
    const { client } = await start({
      handle: async (_event, context) => {
        started.push(context.flow);
        await held;
        return {};
      },
    });
    const cancel = new AbortController();
    const cancelled = rejection(client.handle(testEvent, { flow: 'cancelled', signal: cancel.signal, timeoutMs: 10_000 }));
    const answered = client.handle(testEvent, { flow: 'answered', timeoutMs: 10_000 });
    await expect.poll(() => started.length, { timeout: 10_000 }).toBe(2);
    client.close();
    // A half-closed stream takes no more writes: a cancel written now would end it, and the answers on their way with it.
    cancel.abort();
    expect((await cancelled).code).toBe(Code.Canceled);
    await new Promise((resolve) => setTimeout(resolve, 50));
    release();
    expect(await answered).toMatchObject({ status: 'ok' });
  });

  it('TLS: serverName is the name the server certificate is checked against', async () => {
    // 127.0.0.2 is this machine, but not a name in the certificate (localhost, 127.0.0.1).
    const serveOptions = { host: '127.0.0.2', tls: { cert: certs.server.cert, key: certs.server.key } };
    const named = await start({ handle: () => ({ attributes: { over: 'tls' } }) }, serveOptions, { tls: { ca: certs.ca.cert, serverName: 'localhost' } });
    expect((await named.client.handle(testEvent, { flow: 'f' })).attributes).toEqual({ over: 'tls' });
    const unnamed = await start({ handle: () => {} }, serveOptions, { tls: { ca: certs.ca.cert } });
    expect((await rejection(unnamed.client.handle(testEvent, { flow: 'f', timeoutMs: 2_000 }))).code).toBe(Code.Unavailable);
  });

  it('TLS: a client certificate without its key (or a key without its certificate) is refused at once', () => {
    expect(() => new PluginClient('127.0.0.1:1', { tls: { cert: certs.client.cert } })).toThrow(new TypeError('client TLS: cert and key must be given together'));
    expect(() => new PluginClient('127.0.0.1:1', { tls: { key: certs.client.key } })).toThrow(new TypeError('client TLS: cert and key must be given together'));
  });
});
