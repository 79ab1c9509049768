import { connect as connectHttp2 } from 'node:http2';
import { connect as connectTcp, createServer } from 'node:net';
import { networkInterfaces } from 'node:os';
import { hasIpv6Loopback, makeTestCertificates, rejectionOf, startTcpRelay } from '@hollowtrees/testkit';
import { credentials, makeGenericClientConstructor, type Client, type ClientReadableStream } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { describe, expect, it } from 'vitest';
import { PluginClient } from './client.js';
import { Code, PluginError, codeName } from './errors.js';
import * as proto from './gen/hollowtrees/plugin/v1/plugin.js';
import type { EventHandler, HandleContext, HandleResult } from './handler.js';
import { listenFailure } from './listen-failure.js';
import { jsonLogger, type LogFields, type PluginLogger } from './plugin-logger.js';
import { serve, type PluginServer, type ServeOptions } from './serve.js';
import { recordingLogger } from './testing.js';
import { pluginPairs, TRANSPORTS, testEvent as event } from './test-support/plugin-pair.js';

const pairs = pluginPairs();
const hasIpv6 = await hasIpv6Loopback();

const silentLogger: PluginLogger = jsonLogger({ service: 'test', level: 'silent' });

/** Opens a TCP connection and closes it: 'connected', or the error code. */
const tcpConnect = (host: string, port: number): Promise<string> =>
  new Promise((resolve) => {
    const socket = connectTcp(port, host);
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });

const rejection = (p: Promise<unknown>): Promise<PluginError> => rejectionOf(p, PluginError);

/**
 * The deadline of a call the plugin cannot take: the client waits for a connection until then, so the call
 * fails UNAVAILABLE only once it passes. A call the plugin could take answers in milliseconds (the served
 * calls here take under 100 ms on a busy machine), so half a second still tells the two apart.
 */
const UNSERVABLE_MS = 500;

describe.each(TRANSPORTS)('serve over %s', (transport) => {
  const start = pairs.over(transport);

  it('passes flow, attempt and deadline to the handler and returns its attributes', async () => {
    let seen: HandleContext | undefined;
    const { client } = await start({
      handle: (_e, ctx) => {
        seen = ctx;
        return { message: 'done', attributes: { replacement_instance_id: 'i-new' } };
      },
    });
    const before = Date.now();
    const res = await client.handle(event, { flow: 'spot', attempt: 3, timeoutMs: 5_000 });
    expect(res).toEqual({ status: 'ok', message: 'done', attributes: { replacement_instance_id: 'i-new' } });
    expect(seen?.flow).toBe('spot');
    expect(seen?.attempt).toBe(3);
    expect(seen?.deadline!.getTime()).toBeGreaterThanOrEqual(before + 4_000);
    expect(seen?.signal.aborted).toBe(false);
    expect(seen?.config).toEqual({});
  });

  it("passes the flow's config for the plugin to the handler", async () => {
    let seen: HandleContext | undefined;
    const { client } = await start({ handle: (_e, ctx) => void (seen = ctx) });
    await client.handle(event, { flow: 'surge', config: { mode: 'pool', maxUnavailable: '2' } });
    expect(seen?.config).toEqual({ mode: 'pool', maxUnavailable: '2' });
  });

  it('a handler that returns nothing answers ok, with no message and no attributes', async () => {
    const { client } = await start({ handle: () => {} });
    expect(await client.handle(event, { flow: 'f' })).toEqual({ status: 'ok', message: '', attributes: {} });
  });

  it('reports skipped', async () => {
    const { client } = await start({ handle: () => ({ status: 'skipped', message: 'already drained' }) });
    expect(await client.handle(event, { flow: 'f' })).toMatchObject({ status: 'skipped', message: 'already drained' });
  });

  it.each([
    [Code.Unavailable, true],
    [Code.DeadlineExceeded, true],
    [Code.ResourceExhausted, true],
    [Code.Aborted, true],
    [Code.NotFound, false],
    [Code.PermissionDenied, false],
    [Code.InvalidArgument, false],
  ])('a thrown PluginError with code %i arrives with that code (retryable: %s)', async (code, retryable) => {
    const { client } = await start({
      handle: () => {
        throw new PluginError(code, `failed with ${code}`);
      },
    });
    const err = await rejection(client.handle(event, { flow: 'f' }));
    expect(err.code).toBe(code);
    expect(err.message).toBe(`failed with ${code}`);
    expect(err.retryable).toBe(retryable);
  });

  it.each([Code.Ok, 17 as Code, -1 as Code])('a thrown PluginError with code %i, no gRPC failure code, arrives as INTERNAL naming the code, with its message', async (code) => {
    // OK reached a unary client as UNIMPLEMENTED "No message received", the message lost, and a stream client as a CallStatus of OK.
    const { client } = await start({
      handle: () => {
        throw new PluginError(code, 'already drained');
      },
    });
    const err = await rejection(client.handle(event, { flow: 'f' }));
    expect([err.code, err.message]).toEqual([Code.Internal, `a PluginError with code ${code} (${codeName(code)}), which is no gRPC failure code (1 to 16): already drained`]);
  });

  it('an unknown thrown error arrives as INTERNAL with its message', async () => {
    const { client } = await start({
      handle: async () => {
        throw new TypeError('cannot read properties of undefined');
      },
    });
    const err = await rejection(client.handle(event, { flow: 'f' }));
    expect(err.code).toBe(Code.Internal);
    expect(err.message).toBe('cannot read properties of undefined');
  });

  it("a handler's own failure (a TypeError, a result of the wrong shape) is logged by the plugin with its stack; a PluginError it throws is its answer, not logged", async () => {
    // Core only ever got the message: the stack of a bug in a handler was written nowhere.
    const logger = recordingLogger();
    let answer: () => HandleResult = () => {
      throw new PluginError(Code.Unavailable, 'webhook down');
    };
    const { client } = await start({ handle: () => answer() }, { logger });
    await rejection(client.handle(event, { flow: 'notify', attempt: 2 }));
    expect(logger.lines.filter((l) => l.level === 'error')).toEqual([]);
    const bug = new TypeError("Cannot read properties of undefined (reading 'url')");
    answer = () => {
      throw bug;
    };
    expect((await rejection(client.handle(event, { flow: 'notify', attempt: 2 }))).message).toBe(bug.message);
    answer = () => ({ status: 'done' }) as unknown as HandleResult;
    await rejection(client.handle(event, { flow: 'notify' }));
    expect(logger.lines.filter((l) => l.level === 'error')).toEqual([
      { level: 'error', message: `handler failed, answered INTERNAL: ${bug.message}`, fields: { flow: 'notify', event_id: '1', attempt: 2, err: bug } },
      {
        level: 'error',
        message: `handler failed, answered INTERNAL: the handler's result is not a HandleResult: status is the string "done", expected 'ok' or 'skipped'`,
        fields: { flow: 'notify', event_id: '1', attempt: 1, err: expect.any(PluginError) },
      },
    ]);
  });

  it('a failure after the call ended (its signal aborted: the AbortError of an I/O given the signal) is not logged', async () => {
    const logger = recordingLogger();
    const { client } = await start(
      {
        handle: (_event, { signal }) =>
          new Promise((_, reject) => signal.addEventListener('abort', () => reject(new DOMException('This operation was aborted', 'AbortError')))),
      },
      { logger },
    );
    expect((await rejection(client.handle(event, { flow: 'f', timeoutMs: 100 }))).code).toBe(Code.DeadlineExceeded);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(logger.lines.filter((l) => l.level === 'error')).toEqual([]);
  });

  it('a thrown non-Error arrives as INTERNAL', async () => {
    const { client } = await start({
      handle: () => {
        throw 'a string'; // eslint-disable-line no-throw-literal
      },
    });
    const err = await rejection(client.handle(event, { flow: 'f' }));
    expect([err.code, err.message]).toEqual([Code.Internal, 'a string']);
  });

  it.each([
    ["status 'failed'", { status: 'failed', message: 'could not drain' }, `status is the string "failed", expected 'ok' or 'skipped'`],
    ['a number as message', { message: 404 }, 'message is a number (404), expected a string'],
    ['a number among the attributes', { attributes: { replacement_instance_id: 'i-0new', count: 2 } }, 'attributes.count is a number (2), expected a string'],
    ['an attribute undefined', { attributes: { replacement_instance_id: undefined } }, 'attributes.replacement_instance_id is undefined, expected a string'],
    ['a string as attributes', { attributes: 'i-0new' }, 'attributes is the string "i-0new", expected an object of strings'],
  ])('a result with %s (a plugin in JavaScript) fails as INTERNAL naming the field, never as ok', async (_shape, result, what) => {
    // A status 'failed' counted as ok, so core went on to the next plugin; a number among the attributes failed with Node's 'The "string" argument must be of type string'.
    const { client } = await start({ handle: () => result as HandleResult });
    const err = await rejection(client.handle(event, { flow: 'f' }));
    expect([err.code, err.message]).toEqual([Code.Internal, `the handler's result is not a HandleResult: ${what}`]);
  });

  it('a slow handler: the client gets DEADLINE_EXCEEDED and the AbortSignal fires with DEADLINE_EXCEEDED', async () => {
    let aborted: (reason: unknown) => void = () => {};
    const abortedReason = new Promise<unknown>((resolve) => (aborted = resolve));
    const { client } = await start({
      handle: (_e, { signal, flow }) =>
        flow === 'warm-up'
          ? undefined
          : new Promise((resolve) => {
              signal.addEventListener('abort', () => {
                aborted(signal.reason);
                resolve();
              });
            }),
    });
    // On a connection still being made, the plugin's copy of a stream call's deadline starts late by the time that takes:
    // under load the client's cancel at its deadline then came first, more than 250 ms early, and was CANCELLED.
    await client.handle(event, { flow: 'warm-up' });
    const err = await rejection(client.handle(event, { flow: 'f', timeoutMs: 500 }));
    expect(err.code).toBe(Code.DeadlineExceeded);
    const reason = await abortedReason;
    expect(reason).toBeInstanceOf(PluginError);
    expect(reason).toMatchObject({ code: Code.DeadlineExceeded, message: 'deadline exceeded' });
  });

  it('a client deadline that reaches the plugin ahead of the plugin\'s own copy (the request was read late) is still DEADLINE_EXCEEDED', async () => {
    let aborted!: (reason: unknown) => void;
    const abortedReason = new Promise<unknown>((resolve) => (aborted = resolve));
    let calls = 0;
    const { server } = await start({
      handle: (_e, { signal }) => {
        if (++calls === 1) return; // the call that opens the connection
        return new Promise<void>((resolve) =>
          signal.addEventListener('abort', () => {
            aborted(signal.reason);
            resolve();
          }),
        );
      },
    });
    const relay = await startTcpRelay(server.port);
    const client = new PluginClient(`127.0.0.1:${relay.port}`, { transport });
    pairs.defer(() => relay.close());
    pairs.defer(() => client.close());
    await client.handle(event, { flow: 'f' });
    // The plugin's deadline now starts 150 ms after the client's: the client's reset arrives first.
    relay.delayNextClientBytes(150);
    expect((await rejection(client.handle(event, { flow: 'f', timeoutMs: 500 }))).code).toBe(Code.DeadlineExceeded);
    expect(await abortedReason).toMatchObject({ code: Code.DeadlineExceeded, message: 'deadline exceeded' });
  });

  it('the AbortSignal fires with CANCELLED when the client cancels before the deadline', async () => {
    let fired!: (reason: unknown) => void;
    const cancelled = new Promise<unknown>((resolve) => (fired = resolve));
    let entered!: () => void;
    const inHandler = new Promise<void>((resolve) => (entered = resolve));
    const { client } = await start({
      handle: (_e, { signal }) =>
        new Promise<void>((resolve) => {
          entered();
          signal.addEventListener('abort', () => {
            fired(signal.reason);
            resolve();
          });
        }),
    });
    const controller = new AbortController();
    const call = client.handle(event, { flow: 'f', signal: controller.signal, timeoutMs: 10_000 });
    await inHandler;
    controller.abort();
    expect((await rejection(call)).code).toBe(Code.Canceled);
    expect(await cancelled).toMatchObject({ code: Code.Canceled, message: 'call cancelled by the client' });
  });

  it('a finished call\'s signal stays unaborted, whether the handler answered or threw', async () => {
    const signals: AbortSignal[] = [];
    const { client } = await start({
      handle: (_e, { signal }) => {
        signals.push(signal);
        if (signals.length === 2) throw new PluginError(Code.NotFound, 'no such node');
      },
    });
    await client.handle(event, { flow: 'f' });
    await rejection(client.handle(event, { flow: 'f' }));
    // grpc-js reports each finished call's stream closing as 'cancelled' on the next tick.
    await new Promise((resolve) => setImmediate(resolve));
    expect(signals.map((s) => s.aborted)).toEqual([false, false]);
  });

  it('grants every connection a 16 MiB HTTP/2 receive window, not the 64 KiB default (see flow-control.test.ts)', async () => {
    const { server } = await start({ handle: () => {} });
    for (let i = 0; i < 2; i++) {
      const session = connectHttp2(`http://127.0.0.1:${server.port}`);
      pairs.defer(() => new Promise<void>((resolve) => session.close(() => resolve())));
      // The server's WINDOW_UPDATE is on the wire before its answer to any request.
      const request = session.request({ ':method': 'POST', ':path': '/no.Such/Method', 'content-type': 'application/grpc', te: 'trailers' });
      await new Promise((resolve, reject) => request.on('response', resolve).on('error', reject).end());
      request.close();
      expect(session.state.remoteWindowSize).toBe(16 * 1024 * 1024);
    }
  });

  // gRPC refuses a stream whole for one message too large: the call fails as every call on a broken stream does.
  it('refuses a request larger than maxReceiveMessageBytes (RESOURCE_EXHAUSTED, or UNAVAILABLE over the stream); the handler never sees it', async () => {
    let calls = 0;
    const { client } = await start({ handle: () => void calls++ }, { maxReceiveMessageBytes: 4_096 });
    const big = { ...event, data: { labels: { pad: 'x'.repeat(8_192) } } };
    const refused = await rejection(client.handle(big, { flow: 'f' }));
    expect(refused.code).toBe(transport === 'unary' ? Code.ResourceExhausted : Code.Unavailable);
    expect(refused.retryable).toBe(true);
    await client.handle(event, { flow: 'f' });
    expect(calls).toBe(1);
  });

  it('an answer too large to send (over 4 MiB) fails that call alone, for good: INTERNAL, saying why; the call beside it is answered', async () => {
    // Sent, it would fail at the client as RESOURCE_EXHAUSTED (over the stream: every call on it), and core would run the call again.
    const { client } = await start({ handle: (e) => ({ message: e.id === 'huge' ? 'x'.repeat(5 * 1024 * 1024) : 'small' }) });
    const huge = rejection(client.handle({ ...event, id: 'huge' }, { flow: 'f' }));
    const small = client.handle({ ...event, id: 'small' }, { flow: 'f' });
    const err = await huge;
    expect([err.code, err.retryable, err.message]).toEqual([Code.Internal, false, expect.stringMatching(/^the plugin's answer takes 524\d{4} bytes, more than the \d+ one answer may take/)]);
    expect(await small).toEqual({ status: 'ok', message: 'small', attributes: {} });
  });

  /** Watches the server's overall health on a connection of its own: the statuses it is told, as they come. */
  async function watchHealth(server: PluginServer): Promise<string[]> {
    const Health = makeGenericClientConstructor(healthService, 'Health');
    const health = new Health(`127.0.0.1:${server.port}`, credentials.createInsecure()) as unknown as Client & {
      watch(request: { service: string }): ClientReadableStream<{ status: string }>;
    };
    pairs.defer(() => health.close());
    const statuses: string[] = [];
    const watch = health.watch({ service: '' });
    watch.on('error', () => {});
    watch.on('data', ({ status }) => statuses.push(status));
    await new Promise((resolve) => watch.once('data', resolve));
    return statuses;
  }

  it('close() ends while a client holds a health Watch stream open', async () => {
    const { server } = await start({ handle: () => {} });
    await watchHealth(server);
    await server.close();
    const late = new PluginClient(`127.0.0.1:${server.port}`, { transport });
    pairs.defer(() => late.close());
    expect((await rejection(late.handle(event, { flow: 'f', timeoutMs: UNSERVABLE_MS }))).code).toBe(Code.Unavailable);
  });

  it('health is SERVING, then NOT_SERVING during close() to a client watching it; no new connection or call is taken meanwhile; close() waits for the call in flight', async () => {
    let release!: () => void;
    let entered!: () => void;
    const inHandler = new Promise<void>((resolve) => (entered = resolve));
    const { server, client } = await start({
      handle: () =>
        new Promise((resolve) => {
          entered();
          release = () => resolve({ attributes: { finished: 'yes' } });
        }),
    });
    expect(await client.checkHealth({ service: 'hollowtrees.plugin.v1.PluginService' })).toBe('SERVING');
    expect(await client.checkHealth({ service: '' })).toBe('SERVING');
    const watched = await watchHealth(server);

    const inFlight = client.handle(event, { flow: 'f' });
    await inHandler;
    let closed = false;
    const closing = server.close().then(() => (closed = true));

    await expect.poll(() => watched).toEqual(['SERVING', 'NOT_SERVING']);
    // Clients go elsewhere (another instance behind the address, or this plugin restarted): this one is
    // not listening, and a call on the open connection is not started (core sends it again, elsewhere).
    expect(await tcpConnect('127.0.0.1', server.port)).toBe('ECONNREFUSED');
    expect((await rejection(client.handle(event, { flow: 'f', timeoutMs: UNSERVABLE_MS }))).code).toBe(Code.Unavailable);
    expect(closed).toBe(false);

    release();
    expect((await inFlight).attributes).toEqual({ finished: 'yes' });
    await closing;
    expect(closed).toBe(true);
  });

  /** Sends `request` as it is, the way a client other than PluginClient could. */
  async function rawHandle(server: PluginServer, request: proto.HandleRequest): Promise<{ code: number; details: string }> {
    const raw = new proto.PluginServiceClient(`127.0.0.1:${server.port}`, credentials.createInsecure());
    try {
      return await new Promise((resolve) => raw.handle(request, (err) => resolve({ code: err?.code ?? 0, details: err?.details ?? '' })));
    } finally {
      raw.close();
    }
  }

  it('an event it cannot read is INVALID_ARGUMENT and holds no in-flight slot, so close() does not wait', async () => {
    const { server } = await start({ handle: () => {} }, { shutdownTimeoutMs: 10_000 });
    const badTime = { attr: { $case: 'ceTimestamp' as const, value: { seconds: 1e15, nanos: 0 } } };
    const answer = await rawHandle(server, { event: { id: '1', source: 's', specVersion: '1.0', type: 't', attributes: { time: badTime }, data: undefined }, flow: 'f', attempt: 1, config: {} });
    expect(answer).toEqual({ code: Code.InvalidArgument, details: 'cannot read the event: Invalid time value' });
    const started = Date.now();
    await server.close();
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('a request without an event is INVALID_ARGUMENT', async () => {
    const { server } = await start({ handle: () => {} });
    expect(await rawHandle(server, { event: undefined, flow: 'f', attempt: 1, config: {} })).toEqual({ code: Code.InvalidArgument, details: 'request has no event' });
  });

  it('a request without an attempt number is attempt 1', async () => {
    let attempt = 0;
    const { server } = await start({ handle: (_e, ctx) => void (attempt = ctx.attempt) });
    await rawHandle(server, { event: { id: '1', source: 's', specVersion: '1.0', type: 't', attributes: {}, data: undefined }, flow: 'f', attempt: 0, config: {} });
    expect(attempt).toBe(1);
  });

  it('a port already in use gives an error naming the port', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    pairs.defer(() => new Promise((r) => blocker.close(r)));
    const port = (blocker.address() as { port: number }).port;
    const err = await rejectionOf(serve(port, { handle: () => {} }, { host: '127.0.0.1' }), Error);
    expect(err).toMatchObject({ code: 'EADDRINUSE', message: `cannot serve on 127.0.0.1:${port}: the port is already in use` });
    expect(err.cause).toBeInstanceOf(Error);
  });

  it('an address of no interface here, or a name that does not resolve, rejects naming the address, the reason in words and its code, as listenFailure() reads it', async () => {
    // 192.0.2.1 (TEST-NET-1) is an address of no interface here; .invalid never resolves (RFC 6761).
    const [notHere, unresolved] = await Promise.all([
      rejectionOf(serve(0, { handle: () => {} }, { host: '192.0.2.1' }), Error),
      rejectionOf(serve(0, { handle: () => {} }, { host: 'no-such-host.invalid' }), Error),
    ]);
    expect(notHere).toMatchObject({ code: 'EADDRNOTAVAIL', message: 'cannot serve on 192.0.2.1:0: no interface of this machine has that address' });
    expect(unresolved).toMatchObject({ code: 'ENOTFOUND', message: 'cannot serve on no-such-host.invalid:0: the host name does not resolve' });
    expect(listenFailure(notHere)).toEqual({ reason: 'no interface of this machine has that address', notThisMachine: true });
    expect(notHere.cause).toBeInstanceOf(Error);
  });

  it('a host with a port in it rejects at once, saying to give the host alone and the port as serve()\'s first argument', async () => {
    const [v4, v6] = await Promise.all([rejectionOf(serve(0, { handle: () => {} }, { host: '0.0.0.0:9000' }), TypeError), rejectionOf(serve(0, { handle: () => {} }, { host: '[::1]:9000' }), TypeError)]);
    expect(v4.message).toBe('serve: host "0.0.0.0:9000" has a port in it: give the host alone ("0.0.0.0"), and the port as serve()\'s first argument (9000)');
    expect(v6.message).toBe('serve: host "[::1]:9000" has a port in it: give the host alone ("::1"), and the port as serve()\'s first argument (9000)');
  });

  it('a link-local IPv6 address without its interface rejects naming the interface to add after a % (Node says only EINVAL), as listenFailure() reads it', async () => {
    const err = await rejectionOf(serve(0, { handle: () => {} }, { host: 'fe80::1234' }), Error);
    expect(err).toMatchObject({ code: 'EINVAL', message: 'cannot serve on [fe80::1234]:0: a link-local IPv6 address needs the interface it is on after a % (fe80::1234%<interface>), and no interface of this machine has it' });
    expect(listenFailure(err)).toMatchObject({ notThisMachine: true });
    // One this machine has: its interface is named.
    const own = Object.entries(networkInterfaces()).flatMap(([name, infos]) => (infos ?? []).filter((i) => i.family === 'IPv6' && /^fe80:/i.test(i.address)).map((i) => ({ name, address: i.address })))[0];
    if (!own) return;
    const ownErr = await rejectionOf(serve(0, { handle: () => {} }, { host: own.address }), Error);
    expect(ownErr.message).toBe(`cannot serve on [${own.address}]:0: a link-local IPv6 address needs the interface it is on after a %: ${own.address}%${own.name}`);
  });

  it('a link-local IPv6 address this machine has, written out in full or with an interface it lacks after its %, rejects naming its interface, as an address none of this machine\'s', async (ctx) => {
    const own = Object.entries(networkInterfaces()).flatMap(([name, infos]) => (infos ?? []).filter((i) => i.family === 'IPv6' && /^fe80:/i.test(i.address)).map((i) => ({ name, address: i.address })))[0];
    if (!own) return ctx.skip();
    // The same address with its zero groups written out: fe80::1 as fe80:0:0:0:0:0:0:1.
    const [left, right] = own.address.split('::') as [string, string];
    const missing = 8 - left.split(':').length - right.split(':').length;
    const full = [left, ...Array<string>(missing).fill('0'), right].join(':').toUpperCase();
    const [unscoped, wrongInterface] = await Promise.all([
      rejectionOf(serve(0, { handle: () => {} }, { host: full }), Error),
      rejectionOf(serve(0, { handle: () => {} }, { host: `${own.address}%no-such-if0` }), Error),
    ]);
    // Before: "... (FE80:0:0:0:...%<interface>), and no interface of this machine has it", though eth0 has it.
    expect(unscoped.message).toBe(`cannot serve on [${full}]:0: a link-local IPv6 address needs the interface it is on after a %: ${full}%${own.name}`);
    // Before: Node's bare "EINVAL", and the bins exited 1 as for a port in use.
    expect(wrongInterface.message).toBe(`cannot serve on [${own.address}%no-such-if0]:0: no interface of this machine is named no-such-if0 (after the %): ${own.address} is on ${own.name}, so ${own.address}%${own.name}`);
    expect(listenFailure(wrongInterface)).toMatchObject({ notThisMachine: true });
    const nowhere = await rejectionOf(serve(0, { handle: () => {} }, { host: 'fe80::1234%no-such-if0' }), Error);
    expect(nowhere.message).toBe('cannot serve on [fe80::1234%no-such-if0]:0: no interface of this machine is named no-such-if0 (after the %), and none has fe80::1234');
  });

  it.skipIf(!hasIpv6)('serves an IPv6 address given bare (::1), as a Node server takes it', async () => {
    // grpc-js read '::1:0' as host '::1:0' and port 443: serve() failed with "address not available ::1:0:443", and '::' with a name resolution failure.
    const server = await serve(0, { handle: () => ({ message: 'over IPv6' }) }, { host: '::1' });
    pairs.defer(() => server.close());
    const client = new PluginClient(`[::1]:${server.port}`, { transport });
    pairs.defer(() => client.close());
    expect((await client.handle(event, { flow: 'f' })).message).toBe('over IPv6');
  });

  it('by default serves on 127.0.0.1 only, and says nothing about it', async () => {
    const warnings: string[] = [];
    const server = await serve(0, { handle: () => ({ attributes: { reached: 'yes' } }) }, { logger: { ...silentLogger, warn: (m) => warnings.push(m) } });
    pairs.defer(() => server.close());
    const client = new PluginClient(`127.0.0.1:${server.port}`);
    pairs.defer(() => client.close());
    expect((await client.handle(event, { flow: 'f' })).attributes).toEqual({ reached: 'yes' });
    // 127.0.0.2 is this host too, but not the address bound: an all-interfaces bind would accept it.
    expect(await tcpConnect('127.0.0.2', server.port)).toBe('ECONNREFUSED');
    expect(warnings).toEqual([]);
  });

  it('warns, naming the risk, when it serves another address without TLS or without client certificates', async () => {
    const warned = async (options: ServeOptions): Promise<Array<{ message: string; fields: LogFields | undefined }>> => {
      const warnings: Array<{ message: string; fields: LogFields | undefined }> = [];
      const server = await serve(0, { handle: () => {} }, { ...options, logger: { ...silentLogger, warn: (message, fields) => warnings.push({ message, fields }) } });
      await server.close();
      return warnings;
    };
    const certs = makeTestCertificates();
    const plain = await warned({ host: '0.0.0.0' });
    expect(plain).toEqual([{ message: expect.stringMatching(/^serving on 0\.0\.0\.0:\d+ without TLS: anyone who can reach the port can make this plugin act \(drain a node/), fields: expect.objectContaining({ host: '0.0.0.0', tls: false }) }]);
    const tlsOnly = await warned({ host: '0.0.0.0', tls: { cert: certs.server.cert, key: certs.server.key } });
    expect(tlsOnly.map((w) => w.message)).toEqual([expect.stringMatching(/without client certificates: anyone who can reach the port/)]);
    expect(await warned({ host: '0.0.0.0', tls: { cert: certs.server.cert, key: certs.server.key, ca: certs.ca.cert } })).toEqual([]);
    expect(await warned({ host: '127.0.0.1' })).toEqual([]);
    expect(await warned({ host: 'localhost' })).toEqual([]);
  });

  it('handleSignals: SIGTERM and SIGINT close the server, which then stops listening for them', async () => {
    const before = { SIGTERM: process.listeners('SIGTERM'), SIGINT: process.listeners('SIGINT') };
    const added = (signal: 'SIGTERM' | 'SIGINT') => process.listeners(signal).filter((l) => !before[signal].includes(l));
    const { client } = await start({ handle: () => {} }, { handleSignals: true });
    const [onTerm] = added('SIGTERM');
    expect([added('SIGTERM').length, added('SIGINT').length]).toEqual([1, 1]);
    await start({ handle: () => {} });
    expect([added('SIGTERM').length, added('SIGINT').length]).toEqual([1, 1]);

    onTerm!('SIGTERM');
    for (let i = 0; i < 100 && added('SIGTERM').length + added('SIGINT').length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect([added('SIGTERM').length, added('SIGINT').length]).toEqual([0, 0]);
    expect((await rejection(client.handle(event, { flow: 'f', timeoutMs: UNSERVABLE_MS }))).code).toBe(Code.Unavailable);
  });

  it('handleSignals with a SignalStop: logs stopping at once, lets the call in flight answer, then closes what the plugin holds and logs stopped', async () => {
    const before = process.listeners('SIGTERM');
    const logger = recordingLogger();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const order: string[] = [];
    const { client } = await start(
      { handle: async () => { await held; return { message: 'answered' }; } },
      { logger, shutdownTimeoutMs: 5_000, handleSignals: { inFlight: 'drains', afterClose: () => void order.push('afterClose') } },
    );
    const call = client.handle(event, { flow: 'f', timeoutMs: 5_000 });
    await new Promise((r) => setTimeout(r, 100));
    const [onTerm] = process.listeners('SIGTERM').filter((l) => !before.includes(l));
    onTerm!('SIGTERM');
    onTerm!('SIGTERM');
    const stopping = { level: 'info', message: 'stopping: new calls go elsewhere, drains in flight go on', fields: { shutdown_timeout_ms: 5_000 } };
    expect(logger.lines).toEqual([stopping]);
    await new Promise((r) => setTimeout(r, 100));
    expect(order).toEqual([]);
    release();
    expect((await call).message).toBe('answered');
    for (let i = 0; i < 100 && !logger.lines.some((l) => l.message === 'stopped'); i++) await new Promise((r) => setTimeout(r, 20));
    expect(order).toEqual(['afterClose']);
    expect(logger.lines).toEqual([stopping, { level: 'info', message: 'stopped', fields: undefined }]);
  });

  it('handleSignals with a SignalStop whose afterClose fails: logs it and exits 1, no unhandled rejection', async () => {
    const before = process.listeners('SIGTERM');
    const logger = recordingLogger();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const exitCode = process.exitCode;
    try {
      await start({ handle: () => ({ message: 'ok' }) }, { logger, shutdownTimeoutMs: 5_000, handleSignals: { afterClose: () => Promise.reject(new Error('watch would not stop')) } });
      const [onTerm] = process.listeners('SIGTERM').filter((l) => !before.includes(l));
      onTerm!('SIGTERM');
      for (let i = 0; i < 100 && logger.lines.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 20));
      expect(logger.lines.at(-1)).toEqual({ level: 'error', message: 'stopped, but closing what the plugin holds failed', fields: { error: 'watch would not stop' } });
      expect(process.exitCode).toBe(1);
      expect(unhandled).toEqual([]);
    } finally {
      process.exitCode = exitCode;
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('an unreachable plugin fails with UNAVAILABLE', async () => {
    const { server, client } = await start({ handle: () => {} });
    await server.close();
    const err = await rejection(client.handle(event, { flow: 'f', timeoutMs: UNSERVABLE_MS }));
    expect(err.code).toBe(Code.Unavailable);
  });
});

describe.each(TRANSPORTS)('serve with TLS over %s', (transport) => {
  const start = pairs.over(transport);
  const certs = makeTestCertificates();
  const tlsPair = (mutual: boolean, clientOptions: ConstructorParameters<typeof PluginClient>[1]) =>
    start(
      { handle: () => ({ attributes: { tls: 'yes' } }) },
      { tls: { cert: certs.server.cert, key: certs.server.key, ...(mutual ? { ca: certs.ca.cert } : {}) } },
      clientOptions,
    );

  it('serves over TLS to a client that trusts the CA', async () => {
    const { client } = await tlsPair(false, { tls: { ca: certs.ca.cert } });
    expect((await client.handle(event, { flow: 'f' })).attributes).toEqual({ tls: 'yes' });
    expect(await client.checkHealth()).toBe('SERVING');
  });

  it('a plaintext client cannot talk to a TLS server', async () => {
    const { client } = await tlsPair(false, {});
    expect((await rejection(client.handle(event, { flow: 'f', timeoutMs: UNSERVABLE_MS }))).code).toBe(Code.Unavailable);
  });

  it('mTLS: a client with a certificate from the CA is served', async () => {
    const { client } = await tlsPair(true, { tls: { ca: certs.ca.cert, cert: certs.client.cert, key: certs.client.key } });
    expect((await client.handle(event, { flow: 'f' })).attributes).toEqual({ tls: 'yes' });
  });

  it('mTLS: a client without a certificate is refused', async () => {
    const { client } = await tlsPair(true, { tls: { ca: certs.ca.cert } });
    expect((await rejection(client.handle(event, { flow: 'f', timeoutMs: UNSERVABLE_MS }))).code).toBe(Code.Unavailable);
  });

  it('mTLS can be turned off while a CA is given (requireClientCert: false)', async () => {
    const { client } = await start(
      { handle: () => ({ attributes: { tls: 'yes' } }) },
      { tls: { cert: certs.server.cert, key: certs.server.key, ca: certs.ca.cert, requireClientCert: false } },
      { tls: { ca: certs.ca.cert } },
    );
    expect((await client.handle(event, { flow: 'f' })).attributes).toEqual({ tls: 'yes' });
  });
});

describe('serve with a shutdownTimeoutMs no timer can wait', () => {
  it.each([Infinity, Number.NaN, 2 ** 31])('%s is refused at once, naming the option', async (bad) => {
    // Taken, Infinity ("wait for every call") fired after 1 ms: close() stopped waiting at once and cancelled the calls in flight.
    await expect(serve(0, { handle: () => {} }, { shutdownTimeoutMs: bad })).rejects.toThrow(
      new RangeError(`serve: shutdownTimeoutMs must be a number of milliseconds up to 2147483647 (24.8 days), got ${bad}`),
    );
  });
});

describe('serve with TLS options that cannot hold', () => {
  const certs = makeTestCertificates();

  it('refuses requireClientCert without a ca: client certificates would be checked against the system roots', async () => {
    const tls = { cert: certs.server.cert, key: certs.server.key, requireClientCert: true };
    await expect(serve(0, { handle: () => {} }, { host: '127.0.0.1', logger: silentLogger, tls })).rejects.toThrow(
      new TypeError('server TLS: requireClientCert needs ca, the CA bundle client certificates must chain to (without it, any certificate a public CA signed would be accepted)'),
    );
  });
});

describe('serve with something that is no EventHandler', () => {
  it.each([
    ['a bare function', async () => ({}), 'a function (give { handle: yourFunction })'],
    ['an object without handle', { handler: () => ({}) }, 'an object whose handle is undefined'],
    ['a handle that is no function', { handle: 'drain' }, 'an object whose handle is the string "drain"'],
    ['null', null, 'null'],
  ])('%s is refused at once, saying what it got', async (_what, handler, got) => {
    // Taken, the server said SERVING and failed every call with INTERNAL "this.handler.handle is not a function".
    await expect(serve(0, handler as unknown as EventHandler, { logger: silentLogger })).rejects.toThrow(
      new TypeError(`serve: handler must be an EventHandler, an object with a handle(event, context) method; got ${got}`),
    );
  });
});

describe('serve on a port that is no port', () => {
  it.each([Number.NaN, -1, 1.5, 65_536, '0' as unknown as number])('%s is refused at once, naming the option', async (port) => {
    // `serve(Number(process.env.PORT), ...)` with PORT unset failed with "Failed to parse DNS address dns:127.0.0.1:NaN".
    await expect(serve(port, { handle: () => {} }, { logger: silentLogger })).rejects.toThrow(
      new RangeError(`serve: port must be a whole number from 0 to 65535 (0 for an ephemeral one), got ${typeof port === 'string' ? `the string "${port}"` : `a number (${port})`}`),
    );
  });
});
