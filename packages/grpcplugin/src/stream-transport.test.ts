/**
 * What only the stream transport has to get right: calls that share one stream must not
 * share a fate (one stuck call, a slow plugin, a killed plugin), and a plugin without the
 * stream is still served. Real gRPC on loopback; the killed plugin is a process of its own.
 */
import { BinaryReader, BinaryWriter } from '@bufbuild/protobuf/wire';
import { credentials, Metadata, Server, ServerCredentials, status, type ServerDuplexStream, type StatusObject } from '@grpc/grpc-js';
import { rejectionOf } from '@hollowtrees/testkit';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { ChannelConnections } from './channel-connections.js';
import { PluginClient, type PluginTransport } from './client.js';
import { ClientStream } from './client-stream.js';
import type { CloudEvent } from './cloud-event.js';
import { Code, PluginError } from './errors.js';
import { eventToProto } from './event-codec.js';
import type { EventHandler, HandleContext } from './handler.js';
import type { LogFields, PluginLogger } from './plugin-logger.js';
import { HandleCall, HandleStatus, PluginServiceClient, PluginServiceService, type HandleStreamRequest, type HandleStreamResponse, type StreamCall } from './gen/hollowtrees/plugin/v1/plugin.js';
import { serve } from './serve.js';
import { streamLimitHeaders } from './stream-limit-headers.js';
import { requestBytes } from './request-bytes.js';
import { pluginPairs, testEvent } from './test-support/plugin-pair.js';
import { serveAgainOn } from './test-support/serve-again.js';
import { stuckPluginProcess } from './test-support/stuck-plugin-process.js';
import { serveUnaryOnly, type UnaryOnlyPlugin } from './unary-only-plugin.js';

const pairs = pluginPairs();
const stream = pairs.over('stream');
const eventWithId = (id: string) => ({ ...testEvent, id });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A HandleStreamRequest of one call, by hand, as a client not built with this SDK may write it (the generated encoder's id is a number). */
const callMessage = (callId: bigint, id: string): Buffer => {
  const call = HandleCall.encode({ request: { event: eventToProto(eventWithId(id)), flow: 'f', attempt: 1, config: {} }, timeoutMs: 10_000 }).finish();
  return Buffer.from(new BinaryWriter().uint32(10).fork().uint32(8).uint64(callId).uint32(18).bytes(call).join().finish());
};
/** A HandleStreamRequest cancelling call `callId`, by hand. */
const cancelMessage = (callId: bigint): Buffer => Buffer.from(new BinaryWriter().uint32(10).fork().uint32(8).uint64(callId).uint32(26).fork().join().join().finish());

/** A handler that records the ids of the calls it starts and holds the call `long` until `release()` (or the test's end). */
function holdingLong(): { handler: EventHandler; started: string[]; longRunning: Promise<void>; release: () => void } {
  const started: string[] = [];
  let entered!: () => void;
  const longRunning = new Promise<void>((resolve) => (entered = resolve));
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  pairs.defer(() => release()); // a failed test still lets the server close without waiting for it
  const handler: EventHandler = {
    handle: async (event) => {
      started.push(event.id);
      if (event.id === 'long') {
        entered();
        await held;
      }
      return { message: event.id };
    },
  };
  return { handler, started, longRunning, release };
}

describe('calls sharing one stream', () => {
  it('a call the plugin never answers hits its own deadline; the others on the stream complete', async () => {
    let stuck: HandleContext | undefined;
    const { client } = await stream({
      handle: (event, context) => {
        if (event.id !== 'stuck') return new Promise((resolve) => setTimeout(() => resolve({ message: event.id }), 20));
        stuck = context;
        return new Promise(() => {}); // ignores its signal too
      },
    }, { shutdownTimeoutMs: 500 });
    // On a connection still being made, the plugin's copy of the deadline starts late by the time that takes (the
    // client reckons timeout_ms as it hands the call to gRPC): under load the client's cancel then came first, CANCELLED.
    await client.handle(eventWithId('warm-up'), { flow: 'f' });
    const stuckCall = client.handle(eventWithId('stuck'), { flow: 'f', timeoutMs: 1_000 });
    const others = Array.from({ length: 50 }, (_, i) => client.handle(eventWithId(`e${i}`), { flow: 'f', timeoutMs: 20_000 }));
    expect((await Promise.all(others)).map((r) => r.message)).toEqual(Array.from({ length: 50 }, (_, i) => `e${i}`));
    expect((await rejectionOf(stuckCall, PluginError)).code).toBe(Code.DeadlineExceeded);
    // The plugin's signal fired at the call's deadline, by the stream's own timer: there is no gRPC deadline to cancel it.
    await new Promise((resolve) => (stuck!.signal.aborted ? resolve(undefined) : stuck!.signal.addEventListener('abort', resolve)));
    expect(stuck!.signal.reason).toMatchObject({ code: Code.DeadlineExceeded });
    // The stream is still good after it.
    expect((await client.handle(eventWithId('after'), { flow: 'f' })).message).toBe('after');
  });

  it('calls whose handler never returns, ignoring its signal, free their slots at their deadline or cancel: the calls after them are served', async () => {
    // Such calls held their slots for ever: once they took all of them, every later call on the stream waited unread until its deadline.
    const { client } = await stream(
      { handle: (event) => (event.id === 'stuck' ? new Promise(() => {}) : { message: event.id }) },
      { maxConcurrentCallsPerStream: 2, shutdownTimeoutMs: 100 },
    );
    const cancel = new AbortController();
    const stuck = [client.handle(eventWithId('stuck'), { flow: 'f', timeoutMs: 300 }), client.handle(eventWithId('stuck'), { flow: 'f', timeoutMs: 20_000, signal: cancel.signal })];
    const next = client.handle(eventWithId('next'), { flow: 'f', timeoutMs: 10_000 });
    await sleep(100); // the stuck calls reach the plugin before the cancel
    cancel.abort();
    expect(await Promise.all(stuck.map((call) => rejectionOf(call, PluginError).then((err) => err.code)))).toEqual([Code.DeadlineExceeded, Code.Canceled]);
    expect((await next).message).toBe('next');
  });

  it('a call whose request cannot be encoded fails alone; the calls after it go out whole (the encoder is shared)', async () => {
    const { client } = await stream({ handle: (event, context) => ({ message: `${event.id}/${context.attempt}/${context.config.k}` }) });
    const before = client.handle(eventWithId('before'), { flow: 'f', attempt: 2, config: { k: 'v1' } });
    // attempt is a uint32 field: 2^33 cannot be written, and the encoder throws half-way through the request.
    await expect(client.handle(eventWithId('bad'), { flow: 'f', attempt: 2 ** 33, config: { k: 'x' } })).rejects.toThrow(/uint32/);
    const after = await Promise.all([3, 4].map((attempt) => client.handle(eventWithId(`after${attempt}`), { flow: 'f', attempt, config: { k: `v${attempt}` } })));
    expect([(await before).message, ...after.map((a) => a.message)]).toEqual(['before/2/v1', 'after3/3/v3', 'after4/4/v4']);
  });

  it('a busy process still moves many calls per turn: 500 calls made at once all complete while every turn of the event loop takes 20 ms', async () => {
    // gRPC writes a stream's messages one per turn of the event loop; calls (and answers) that
    // travelled one per message took 500 turns here, 10 s, past their 5 s deadline. Core in a
    // wave is such a process: each turn parses a batch of alerts.
    const { client } = await stream({ handle: (event) => ({ message: event.id }) });
    await client.handle(eventWithId('warm-up'), { flow: 'f' });
    const busy = setInterval(() => {
      const until = Date.now() + 20;
      while (Date.now() < until);
    }, 0);
    try {
      const answers = await Promise.all(Array.from({ length: 500 }, (_, i) => client.handle(eventWithId(`b${i}`), { flow: 'f', timeoutMs: 5_000 })));
      expect(answers.map((a) => a.message)).toEqual(Array.from({ length: 500 }, (_, i) => `b${i}`));
    } finally {
      clearInterval(busy);
    }
  });

  it('a busy process that makes its calls a few at a time, each from a task of its own, gets every answer within 1.5 s, not behind a backlog in gRPC', async () => {
    // Core makes its calls so: each run starts from its own task (an HTTP request, the end of the run before it). grpc-js
    // took each message at once into its retry buffer (up to 1 MiB a call) and sent them one per completed socket write,
    // a turn or more each, while the stream took some ten a turn: the calls of a busy core waited there for many seconds.
    const { client } = await stream({ handle: (event) => ({ message: event.id }) });
    await client.handle(eventWithId('warm-up'), { flow: 'f' });
    const latencies: Array<Promise<number>> = [];
    const call = (i: number): void => {
      const started = Date.now();
      latencies.push(client.handle(eventWithId(`t${i}`), { flow: 'f', timeoutMs: 10_000 }).then(() => Date.now() - started));
    };
    let made = 0;
    const busy = setInterval(() => {
      for (let i = 0; i < 10; i++) setImmediate(() => call(made++));
      const until = Date.now() + 20;
      while (Date.now() < until);
    }, 0);
    try {
      await sleep(4_000);
    } finally {
      clearInterval(busy);
    }
    await new Promise((resolve) => setImmediate(resolve)); // the calls the last turn made
    const slowest = Math.max(...(await Promise.all(latencies)));
    expect(made).toBeGreaterThan(500);
    expect(slowest).toBeLessThan(1_500);
  });

  it('answers that together exceed 4 MiB, the most a gRPC client reads in one message, all arrive: each call the plugin completed is reported done', async () => {
    // Sent as one message, they ended the stream with RESOURCE_EXHAUSTED: every call on it failed UNAVAILABLE, and core ran them again.
    let ran = 0;
    const { client } = await stream({ handle: (event) => (ran++, { message: `${event.id} ${'x'.repeat(200_000)}` }) });
    await client.handle(eventWithId('warm-up'), { flow: 'f' });
    // A handler that answers at once: the 30 answers (6 MB) are ready in one turn and go out together.
    const outcomes = await Promise.all(
      Array.from({ length: 30 }, (_, i) => client.handle(eventWithId(`e${i}`), { flow: 'f', timeoutMs: 10_000 }).then((r) => r.message.split(' ')[0], (err: Error) => `failed: ${err.message}`)),
    );
    expect(outcomes).toEqual(Array.from({ length: 30 }, (_, i) => `e${i}`));
    expect(ran).toBe(31);
  });

  it('a slow plugin holds the client back: no more calls run at once than the stream allows, and every call completes', async () => {
    let running = 0;
    let most = 0;
    let entered = 0;
    const waiting: Array<() => void> = [];
    const { client } = await stream(
      {
        handle: () => {
          entered++;
          most = Math.max(most, ++running);
          return new Promise<void>((resolve) => waiting.push(resolve)).finally(() => running--);
        },
      },
      { maxConcurrentCallsPerStream: 4 },
    );
    // 64 KB each: 200 of them are far beyond what HTTP/2's windows let through unread.
    const big = { ...testEvent, data: { labels: { pad: 'x'.repeat(64 * 1024) } } };
    const calls = Array.from({ length: 200 }, () => client.handle(big, { flow: 'f', timeoutMs: 60_000 }));
    while (entered < 4) await new Promise((resolve) => setTimeout(resolve, 10));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(entered).toBe(4);
    // Released one by one, each answer lets one more call in.
    while (entered < 200 || waiting.length > 0) {
      if (waiting.length > 0) waiting.shift()!();
      else await new Promise((resolve) => setTimeout(resolve, 1));
    }
    expect((await Promise.all(calls)).every((r) => r.status === 'ok')).toBe(true);
    expect(most).toBe(4);
  });

  it('calls the plugin has no slot for wait in the client, where their deadline ends them: none that core gave up runs once a slot frees', async () => {
    // Before, they were written and waited unread in the plugin, whose deadline for a call counts from when it reads
    // it: 98 of these 100 calls ran in full once the slots freed, each given up and reported DEADLINE_EXCEEDED long
    // before (core tries such a call again: acted on twice).
    const entered: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    pairs.defer(() => release());
    const { client } = await stream(
      {
        handle: async (event) => {
          entered.push(event.id);
          if (event.id.startsWith('hold')) await held;
          return { message: event.id };
        },
      },
      { maxConcurrentCallsPerStream: 2 },
    );
    const holding = [client.handle(eventWithId('hold-1'), { flow: 'f', timeoutMs: 20_000 }), client.handle(eventWithId('hold-2'), { flow: 'f', timeoutMs: 20_000 })];
    while (entered.length < 2) await sleep(5);
    const late = Array.from({ length: 100 }, (_, i) => rejectionOf(client.handle(eventWithId(`late-${i}`), { flow: 'f', timeoutMs: 300 }), PluginError));
    expect(new Set((await Promise.all(late)).map((err) => err.code))).toEqual(new Set([Code.DeadlineExceeded]));
    release();
    expect((await Promise.all(holding)).map((r) => r.message)).toEqual(['hold-1', 'hold-2']);
    // A call made now goes through the freed slots; nothing given up ran before or after it.
    expect((await client.handle(eventWithId('after'), { flow: 'f', timeoutMs: 20_000 })).message).toBe('after');
    await sleep(100);
    expect(entered).toEqual(['hold-1', 'hold-2', 'after']);
  });

  it('a call whose deadline passed in a turn too busy to run its timer is not written: the plugin never starts it', async () => {
    const entered: string[] = [];
    const { client } = await stream({ handle: (event) => void entered.push(event.id) });
    await client.handle(eventWithId('warm-up'), { flow: 'f' });
    const call = rejectionOf(client.handle(eventWithId('expired'), { flow: 'f', timeoutMs: 20 }), PluginError);
    // The call is written at the end of this tick, after the turn's work: 60 ms of it here.
    const busyUntil = Date.now() + 60;
    while (Date.now() < busyUntil);
    expect((await call).code).toBe(Code.DeadlineExceeded);
    expect((await client.handle(eventWithId('after'), { flow: 'f' })).status).toBe('ok');
    expect(entered).toEqual(['warm-up', 'after']);
  });
});

/** A plugin of plain grpc-js (no SDK) serving `handleStream`; resolves with a stream client to it. */
async function plainStreamPlugin(handleStream: (call: ServerDuplexStream<HandleStreamRequest, HandleStreamResponse>) => void): Promise<PluginClient> {
  const server = new Server();
  server.addService(PluginServiceService, { handle: () => {}, handleStream } as unknown as Parameters<Server['addService']>[1]);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  pairs.defer(() => server.forceShutdown());
  const client = new PluginClient(`127.0.0.1:${port}`, { transport: 'stream' });
  pairs.defer(() => client.close());
  return client;
}

/** An OK answer to each call of `message`. */
const answeredOk = (message: HandleStreamRequest): HandleStreamResponse['results'] =>
  message.calls.map((c) => ({ callId: c.callId, outcome: { $case: 'response' as const, value: { status: HandleStatus.HANDLE_STATUS_OK, message: 'ok', attributes: {} } } }));

describe('calls made before the plugin\'s headers came', () => {
  it('one call is written until the headers come: a burst on a new stream does not pass the slots the plugin has not told yet', async () => {
    // A plugin of plain grpc-js whose headers (2 calls at once) come 200 ms after the stream opened; it answers each call
    // as it reads it, once they were sent. Before, a call went out as each write before it completed: all 20 before the headers.
    let headersSent = false;
    let readBeforeHeaders = 0;
    const handleStream = (call: ServerDuplexStream<HandleStreamRequest, HandleStreamResponse>): void => {
      const held: HandleStreamResponse['results'] = [];
      const answer = (results: HandleStreamResponse['results']): void => void call.write({ results });
      setTimeout(() => {
        headersSent = true;
        call.sendMetadata(streamLimitHeaders({ receiveBytes: 4 * 1024 * 1024, calls: 2 }));
        answer(held.splice(0));
      }, 200);
      call.on('data', (message: HandleStreamRequest) => {
        const results = answeredOk(message);
        if (headersSent) return answer(results);
        readBeforeHeaders += message.calls.length;
        held.push(...results);
      });
    };
    const client = await plainStreamPlugin(handleStream);
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => client.handle(eventWithId(`b${i}`), { flow: 'f', timeoutMs: 10_000 })));
    expect(answers.every((a) => a.message === 'ok')).toBe(true);
    expect(readBeforeHeaders).toBe(1);
  });

  it('leave together once the headers came, not behind a row of 16 single calls each sent a turn of the event loop after the one before', async () => {
    // A plugin of plain grpc-js that sends its headers as serve() does, at once, and records how many calls each message carries.
    const perMessage: number[] = [];
    const handleStream = (call: ServerDuplexStream<HandleStreamRequest, HandleStreamResponse>): void => {
      call.sendMetadata(streamLimitHeaders({ receiveBytes: 4 * 1024 * 1024 }));
      call.on('data', (message: HandleStreamRequest) => {
        perMessage.push(message.calls.length);
        const results = answeredOk(message);
        call.write({ results });
      });
    };
    const client = await plainStreamPlugin(handleStream);
    // A fresh client: the stream opens with the first call, and its headers come a round trip later.
    const answers = await Promise.all(Array.from({ length: 300 }, (_, i) => client.handle(eventWithId(`h${i}`), { flow: 'f', timeoutMs: 10_000 })));
    expect(answers.every((a) => a.message === 'ok')).toBe(true);
    // One call goes while the headers are on their way; the others leave together once the headers said how much the
    // plugin reads. Before, 16 went alone at once (as many
    // as the stream buffers), and the calls behind them waited until all 16 were sent, a turn each.
    expect(perMessage.reduce((n, calls) => n + calls, 0)).toBe(300);
    expect(perMessage.filter((calls) => calls === 1).length).toBeLessThan(8);
    expect(perMessage.length).toBeLessThan(9);
  });
});

describe("a call's deadline on the stream", () => {
  it('core cancels the call in the plugin when its deadline passes, as a unary deadline does; an answered call gets no cancel', async () => {
    // A plugin of plain grpc-js that records what arrives and answers only 'quick': the
    // client's timer alone must end 'slow' and tell the plugin (whose own timer may run late).
    const seen: StreamCall[] = [];
    const server = new Server();
    const handleStream = (call: ServerDuplexStream<HandleStreamRequest, HandleStreamResponse>): void => {
      call.on('data', (message: HandleStreamRequest) => {
        for (const c of message.calls) {
          seen.push(c);
          if (c.kind?.$case === 'call' && c.kind.value.request?.flow === 'quick') call.write({ results: [{ callId: c.callId, outcome: { $case: 'response', value: { status: HandleStatus.HANDLE_STATUS_OK, message: 'ok', attributes: {} } } }] });
        }
      });
    };
    server.addService(PluginServiceService, { handle: () => {}, handleStream } as unknown as Parameters<Server['addService']>[1]);
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    pairs.defer(() => server.forceShutdown());
    const client = new PluginClient(`127.0.0.1:${port}`, { transport: 'stream' });
    pairs.defer(() => client.close());
    expect((await client.handle(testEvent, { flow: 'quick', timeoutMs: 5_000 })).message).toBe('ok');
    expect((await rejectionOf(client.handle(testEvent, { flow: 'slow', timeoutMs: 300 }), PluginError)).code).toBe(Code.DeadlineExceeded);
    const slowId = seen.find((c) => c.kind?.$case === 'call' && c.kind.value.request?.flow === 'slow')!.callId;
    const quickId = seen.find((c) => c.kind?.$case === 'call' && c.kind.value.request?.flow === 'quick')!.callId;
    const until = Date.now() + 5_000;
    while (!seen.some((c) => c.callId === slowId && c.kind?.$case === 'cancel') && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    expect(seen.filter((c) => c.kind?.$case === 'cancel').map((c) => c.callId)).toEqual([slowId]);
    expect(quickId).not.toBe(slowId);
  });

  it('a deadline further away than a timer holds (2^31 ms, 24.8 days) does not abort the handler at once', async () => {
    // timeout_ms goes up to 2^32-1 ms; setTimeout fires anything past 2^31-1 ms after 1 ms, which aborted the handler's signal at once, as a cancel.
    const { server } = await stream({
      handle: async (_event, { signal, deadline }) => {
        await sleep(100);
        return { message: `aborted ${signal.aborted}, ${Math.round((deadline!.getTime() - Date.now()) / 86_400_000)} days left` };
      },
    });
    const raw = new PluginServiceClient(`127.0.0.1:${server.port}`, credentials.createInsecure());
    pairs.defer(() => raw.close());
    const call = raw.handleStream();
    pairs.defer(() => call.end());
    const answer = new Promise<HandleStreamResponse>((resolve) => call.once('data', resolve));
    call.write({ calls: [{ callId: 7, kind: { $case: 'call', value: { request: { event: eventToProto(testEvent), flow: 'f', attempt: 1, config: {} }, timeoutMs: 2 ** 32 - 1 } } }] });
    expect((await answer).results).toEqual([{ callId: 7, outcome: { $case: 'response', value: { status: HandleStatus.HANDLE_STATUS_OK, message: 'aborted false, 50 days left', attributes: {} } } }]);
  });
});

describe('a plugin written without the SDK that answers a status code gRPC does not define', () => {
  it('fails the call with UNKNOWN naming the code it answered, on the stream and over unary: not as "OK", nor under a code of its own', async () => {
    // A plugin of plain grpc-js that fails each call with the code its flow names, on either transport.
    const codeOf = (request: { flow: string } | undefined): number => Number(request?.flow);
    const handleStream = (call: ServerDuplexStream<HandleStreamRequest, HandleStreamResponse>): void => {
      call.on('data', (message: HandleStreamRequest) => {
        for (const c of message.calls) {
          if (c.kind?.$case === 'call') call.write({ results: [{ callId: c.callId, outcome: { $case: 'status', value: { code: codeOf(c.kind.value.request), message: 'made up', notStarted: false } } }] });
        }
      });
    };
    const handle = (call: { request: { flow: string } }, callback: (err: Partial<StatusObject>) => void): void => callback({ code: codeOf(call.request), details: 'made up' });
    const server = new Server();
    server.addService(PluginServiceService, { handle, handleStream } as unknown as Parameters<Server['addService']>[1]);
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    pairs.defer(() => server.forceShutdown());
    for (const transport of ['stream', 'unary'] as const) {
      const client = new PluginClient(`127.0.0.1:${port}`, { transport });
      pairs.defer(() => client.close());
      const failure = async (code: number): Promise<[Code, string]> => {
        const err = await rejectionOf(client.handle(testEvent, { flow: String(code), timeoutMs: 5_000 }), PluginError);
        return [err.code, err.message];
      };
      expect(await failure(99)).toEqual([Code.Unknown, 'the plugin answered with status code 99 (CODE_99), which is no gRPC failure code (1 to 16): made up']);
      expect(await failure(-3)).toEqual([Code.Unknown, 'the plugin answered with status code -3 (CODE_-3), which is no gRPC failure code (1 to 16): made up']);
      // A code gRPC defines is kept as it is.
      expect(await failure(Code.NotFound)).toEqual([Code.NotFound, 'made up']);
    }
    // OK as a failure only the stream can carry (a unary OK is an answer without a message).
    const overStream = new PluginClient(`127.0.0.1:${port}`, { transport: 'stream' });
    pairs.defer(() => overStream.close());
    const ok = await rejectionOf(overStream.handle(testEvent, { flow: '0', timeoutMs: 5_000 }), PluginError);
    expect([ok.code, ok.message]).toEqual([Code.Unknown, 'the plugin answered with status code 0 (OK), which is no gRPC failure code (1 to 16): made up']);
  });
});

describe('call ids past 2^53 (call_id is a uint64 the client chooses)', () => {
  /** The call ids a HandleStreamResponse answers, each as the first field of its result (as serve() writes them). */
  const answeredIds = (bytes: Buffer): bigint[] => {
    const ids: bigint[] = [];
    const reader = new BinaryReader(bytes);
    while (reader.pos < reader.len) {
      reader.tag();
      const result = new BinaryReader(reader.bytes());
      ids.push(result.tag()[0] === 1 ? BigInt(result.uint64()) : 0n);
    }
    return ids;
  };

  it('are answered under the same id, and do not end the stream with the calls in flight on it', async () => {
    // The generated decoder throws past 2^53: gRPC ended the stream INTERNAL, "Error deserializing request", and the call in flight lost its answer.
    const plugin = holdingLong();
    const { server } = await stream(plugin.handler);
    const raw = new PluginServiceClient(`127.0.0.1:${server.port}`, credentials.createInsecure());
    pairs.defer(() => raw.close());
    const method = PluginServiceService.handleStream;
    const call = raw.makeBidiStreamRequest(method.path, (bytes: Buffer) => bytes, (bytes: Buffer) => bytes, new Metadata());
    pairs.defer(() => call.cancel());
    const answered: bigint[] = [];
    const largest = 2n ** 64n - 1n;
    let arrived!: () => void;
    const bothOrEnd = new Promise<void>((resolve) => (arrived = resolve));
    let ended: StatusObject | undefined;
    call.on('data', (bytes: Buffer) => {
      answered.push(...answeredIds(bytes));
      if (answered.includes(1n)) arrived();
    });
    call.on('error', () => {});
    call.on('status', (end: StatusObject) => ((ended = end), arrived()));
    call.write(callMessage(1n, 'long'));
    await plugin.longRunning;
    call.write(callMessage(largest, 'big'));
    while (!answered.includes(largest) && !ended) await sleep(10);
    plugin.release();
    await bothOrEnd;
    expect({ answered, ended }).toEqual({ answered: [largest, 1n], ended: undefined });
    expect(plugin.started).toEqual(['long', 'big']);
  });
});

/** A raw `HandleStream` to `port` (no SDK client: it does not keep to the plugin's slots), and the results it reads. */
function rawStream(port: number): { write: (message: Buffer) => void; results: () => StreamResultView[] } {
  const raw = new PluginServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
  pairs.defer(() => raw.close());
  const method = PluginServiceService.handleStream;
  const call = raw.makeBidiStreamRequest(method.path, (bytes: Buffer) => bytes, method.responseDeserialize, new Metadata());
  pairs.defer(() => call.cancel());
  const results: StreamResultView[] = [];
  call.on('data', (message: HandleStreamResponse) => results.push(...message.results.map(({ callId, outcome }) => ({ callId: Number(callId), outcome }))));
  call.on('error', () => {});
  return { write: (message) => void call.write(message), results: () => results };
}
type StreamResultView = { callId: number; outcome: HandleStreamResponse['results'][number]['outcome'] };

describe('calls a client writes beyond the stream\'s slots (a client not built with this SDK, which keeps to them)', () => {
  it('wait unread, and one the client cancels meanwhile is never handed to the handler: the cancel, sent after it, is read before its turn comes', async () => {
    const plugin = holdingLong();
    const { server } = await stream(plugin.handler, { maxConcurrentCallsPerStream: 1 });
    const raw = rawStream(server.port);
    raw.write(callMessage(1n, 'long'));
    await plugin.longRunning;
    raw.write(callMessage(2n, 'cancelled'));
    await sleep(100); // the call reaches the plugin, which does not read it while its one slot is taken
    raw.write(cancelMessage(2n));
    await sleep(100); // the cancel reaches the plugin too
    plugin.release();
    while (raw.results().length < 2) await sleep(10);
    const outcomes = raw.results().map((r) => [r.callId, r.outcome?.$case === 'status' ? r.outcome.value.code : 'response']);
    expect(outcomes.sort((a, b) => Number(a[0]) - Number(b[0]))).toEqual([
      [1, 'response'],
      [2, Code.Canceled],
    ]);
    expect(plugin.started).toEqual(['long']);
  });

  it('are refused as not started when the plugin closes, while the call it runs finishes', async () => {
    const plugin = holdingLong();
    const { server } = await stream(plugin.handler, { maxConcurrentCallsPerStream: 1, shutdownTimeoutMs: 10_000 });
    const raw = rawStream(server.port);
    raw.write(callMessage(1n, 'long'));
    await plugin.longRunning;
    raw.write(callMessage(2n, 'queued'));
    await sleep(100);
    const closing = server.close();
    while (raw.results().length < 1) await sleep(10);
    expect(raw.results()[0]).toMatchObject({ callId: 2, outcome: { $case: 'status', value: { code: Code.Unavailable, notStarted: true } } });
    plugin.release();
    await closing;
    expect(raw.results().map((r) => r.callId)).toEqual([2, 1]);
    expect(plugin.started).toEqual(['long']);
  });
});

describe('what a call waiting for its answer keeps', () => {
  it("not its own copy of the event's data as JSON: 50 calls of one 512 KiB event add well under 25 MiB to the heap", async () => {
    // A reclaim wave keeps thousands of calls in flight for the plugin's time each: what every one of them holds is
    // copied by each young-generation collection. Each used to keep the request's message object (with the event's
    // data as JSON) and its encoded bytes until answered: two copies of the event per call, here 50 MiB.
    v8.setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    // The plugin in a process of its own: what it holds of the calls is not counted here.
    const plugin = await stuckPluginProcess(51, pairs.defer);
    const client = new PluginClient(`127.0.0.1:${plugin.port}`, { transport: 'stream' });
    pairs.defer(() => client.close());
    await client.handle(eventWithId('warm-up'), { flow: 'f', timeoutMs: 100 }).catch(() => {});
    const big: CloudEvent = { ...testEvent, data: { blob: 'x'.repeat(512 * 1024) } };
    gc();
    const before = process.memoryUsage();
    const calls = Array.from({ length: 50 }, () => client.handle(big, { flow: 'f', timeoutMs: 120_000 }).catch(() => {}));
    await plugin.allIn;
    gc();
    const after = process.memoryUsage();
    // V8's heap: each call kept its data as JSON there (25 MiB). Buffers outside it are not compared: the last messages'
    // (up to 4 MiB each) are let go only as their writes complete, whenever that is.
    expect((after.heapUsed - before.heapUsed) / 2 ** 20).toBeLessThan(10);
    expect(calls).toHaveLength(50);
  });
});

describe('calls that wait in the client while the stream pushes back', () => {
  it('a call that ends (its deadline) before it could be written leaves nothing of it behind: what waits to be written does not grow', async () => {
    // The plugin holds two calls for ever and reads no more, so 64 KB requests fill HTTP/2's windows.
    const { server } = await stream({ handle: () => new Promise(() => {}) }, { maxConcurrentCallsPerStream: 2, shutdownTimeoutMs: 100 });
    const grpc = new PluginServiceClient(`127.0.0.1:${server.port}`, credentials.createInsecure());
    pairs.defer(() => grpc.close());
    const calls = new ClientStream(grpc, 16 * 1024 * 1024, new ChannelConnections(grpc.getChannel()), () => {});
    const big: CloudEvent = { ...testEvent, data: { labels: { node: 'n1' }, big: 'x'.repeat(64 * 1024) } };
    const request = requestBytes({ event: eventToProto(big), flow: 'f', attempt: 1, config: {} });
    const send = (timeoutMs: number) => calls.send(request, Date.now() + timeoutMs, undefined);
    // Two calls whose deadline comes after the test take both slots (a call frees its slot at its deadline).
    for (let i = 0; i < 2; i++) send(60_000).catch(() => {});
    // Then more such calls, one a turn, until one is left waiting and still is 100 ms later: the windows are full and the
    // stream pushes back for good. A call left waiting for a turn only may be let out by a drain while HTTP/2 sends what
    // grpc-js buffered: the rounds below then wrote some of theirs, whose cancels waited in turn (the test failed so
    // about one run in six). (Left to the rounds, the windows, 16 MiB, filled only when a busy machine let their calls out in time.)
    const pushesBack = async (): Promise<boolean> => {
      if (calls.queued === 0) return false;
      await new Promise((resolve) => setTimeout(resolve, 100));
      return calls.queued > 0;
    };
    while (!(await pushesBack())) {
      send(60_000).catch(() => {});
      await new Promise((resolve) => setImmediate(resolve));
    }
    const rounds = async (n: number): Promise<void> => {
      for (let round = 0; round < n; round++) {
        await Promise.allSettled(Array.from({ length: 20 }, () => send(150)));
      }
    };
    await rounds(10);
    const after10 = calls.queued;
    await rounds(10);
    // They stayed queued until the stream drained, which here it never does: 20 requests (1.3 MB) more each round.
    expect(calls.queued).toBeLessThanOrEqual(after10);
  });
});

describe('a plugin that reads smaller messages than the client batches (maxReceiveMessageBytes)', () => {
  const withBlob = (id: string): CloudEvent => ({ ...testEvent, id, data: { labels: { node: 'n1' }, blob: 'x'.repeat(300_000) } });

  it('gets five calls of 300 KB made in one turn, in messages it reads; the call it was running is not failed by them', async () => {
    // serve() announces its limit as the stream opens; sent as one 1.5 MB message, they made gRPC end the stream, with the call in flight.
    const plugin = holdingLong();
    const { client } = await stream(plugin.handler, { maxReceiveMessageBytes: 1024 * 1024 });
    const long = client.handle(withBlob('long'), { flow: 'f', timeoutMs: 10_000 }).then((r) => r.message, (err: Error) => `failed: ${err.message}`);
    await plugin.longRunning;
    const burst = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => client.handle(withBlob(`b${i}`), { flow: 'f', timeoutMs: 10_000 })));
    plugin.release();
    expect({ long: await long, burst: burst.map((b) => b.status), started: plugin.started }).toEqual({
      long: 'long',
      burst: Array(5).fill('fulfilled'),
      started: ['long', 'b0', 'b1', 'b2', 'b3', 'b4'],
    });
  });

  it('a request larger than it reads fails alone, RESOURCE_EXHAUSTED as over a unary call; the call in flight completes', async () => {
    const plugin = holdingLong();
    const { client } = await stream(plugin.handler, { maxReceiveMessageBytes: 64 * 1024 });
    // Answered, the first call shows the stream's headers, with the plugin's limit, arrived: they come first.
    await client.handle(eventWithId('first'), { flow: 'f' });
    const long = client.handle(eventWithId('long'), { flow: 'f', timeoutMs: 10_000 });
    await plugin.longRunning;
    const refused = await rejectionOf(client.handle(withBlob('big'), { flow: 'f', timeoutMs: 5_000 }), PluginError);
    expect([refused.code, refused.message]).toEqual([Code.ResourceExhausted, expect.stringMatching(/^request of \d+ bytes is larger than the plugin reads \(its maxReceiveMessageBytes, 65536\)$/)]);
    plugin.release();
    expect((await long).message).toBe('long');
    expect(plugin.started).toEqual(['first', 'long']);
  });
});

describe('serve options for the stream', () => {
  it.each([0, -1, 1.5, Number.NaN, Infinity])('maxReceiveMessageBytes %s is refused, naming the option', async (bad) => {
    // 0 made grpc-js refuse every request (RESOURCE_EXHAUSTED, or the whole stream) while health said SERVING; NaN lifted the limit.
    await expect(serve(0, { handle: () => {} }, { maxReceiveMessageBytes: bad })).rejects.toThrow(
      new RangeError(`serve: maxReceiveMessageBytes must be a whole number of bytes of at least 1, got ${bad}`),
    );
  });


  it.each([0, -1, 1.5, Number.NaN])('maxConcurrentCallsPerStream %s is refused, naming the option', async (bad) => {
    await expect(serve(0, { handle: () => {} }, { maxConcurrentCallsPerStream: bad })).rejects.toThrow(
      new RangeError(`serve: maxConcurrentCallsPerStream must be a whole number of at least 1, got ${bad}`),
    );
  });
});

/** A plugin written without the SDK's serve: it implements `Handle` only. */
async function unaryOnlyPlugin(): Promise<UnaryOnlyPlugin> {
  const plugin = await serveUnaryOnly((event, flow) => `unary ${event.id} for ${flow}`);
  pairs.defer(() => plugin.close());
  return plugin;
}

function recordingLogger(): { logger: PluginLogger; warnings: Array<[string, LogFields | undefined]> } {
  const warnings: Array<[string, LogFields | undefined]> = [];
  const ignore = (): void => {};
  return { logger: { debug: ignore, info: ignore, error: ignore, warn: (message, fields) => void warnings.push([message, fields]) }, warnings };
}

function clientOf(port: number, transport: PluginTransport, logger?: PluginLogger): PluginClient {
  const client = new PluginClient(`127.0.0.1:${port}`, { transport, ...(logger ? { logger } : {}) });
  pairs.defer(() => client.close());
  return client;
}

describe('a plugin that serves only the unary Handle', () => {
  it('is called through Handle: every call in flight when the stream is refused goes out again, and the fallback is logged once', async () => {
    const plugin = await unaryOnlyPlugin();
    const { logger, warnings } = recordingLogger();
    const client = clientOf(plugin.port, 'auto', logger);
    const first = await Promise.all(Array.from({ length: 5 }, (_, i) => client.handle(eventWithId(`a${i}`), { flow: 'spot' })));
    expect(first.map((r) => r.message)).toEqual(['unary a0 for spot', 'unary a1 for spot', 'unary a2 for spot', 'unary a3 for spot', 'unary a4 for spot']);
    expect((await client.handle(eventWithId('b'), { flow: 'f' })).message).toBe('unary b for f');
    expect(plugin.calls).toBe(6);
    expect(warnings).toEqual([[`plugin at 127.0.0.1:${plugin.port} does not serve HandleStream: calling it with unary Handle calls from now on`, { address: `127.0.0.1:${plugin.port}` }]]);
  });

  it('transport stream: the call fails with UNIMPLEMENTED and nothing falls back', async () => {
    const plugin = await unaryOnlyPlugin();
    const err = await rejectionOf(clientOf(plugin.port, 'stream').handle(testEvent, { flow: 'f' }), PluginError);
    expect(err.code).toBe(Code.Unimplemented);
    expect(plugin.calls).toBe(0);
  });

  it('transport unary: calls go out as Handle calls from the first one, and nothing is logged', async () => {
    const plugin = await unaryOnlyPlugin();
    const { logger, warnings } = recordingLogger();
    expect((await clientOf(plugin.port, 'unary', logger).handle(eventWithId('u'), { flow: 'f' })).message).toBe('unary u for f');
    expect(warnings).toEqual([]);
  });
});

describe('a plugin process killed with calls in flight on its stream', () => {
  it('fails every one of 500 calls with UNAVAILABLE, none reported done; once it is back on the same port the next calls succeed', async () => {
    const plugin = await stuckPluginProcess(500, pairs.defer);
    const client = clientOf(plugin.port, 'stream');
    // The client waits for a plugin that went away until each call's deadline, then gives up.
    const outcomes = Array.from({ length: 500 }, (_, i) =>
      client.handle(eventWithId(`c${i}`), { flow: 'f', timeoutMs: 4_000 }).then(
        () => 'done',
        (err: unknown) => (err instanceof PluginError ? status[err.code] : String(err)),
      ),
    );
    await plugin.allIn;
    await plugin.kill();
    const results = await Promise.all(outcomes);
    expect(new Set(results)).toEqual(new Set(['UNAVAILABLE']));
    expect(results).toHaveLength(500);

    const back = await serveAgainOn(plugin.port, { handle: (event) => ({ message: `back ${event.id}` }) }, { host: '127.0.0.1' });
    pairs.defer(() => back.close());
    const next = await Promise.all(Array.from({ length: 20 }, (_, i) => client.handle(eventWithId(`n${i}`), { flow: 'f', timeoutMs: 10_000 })));
    expect(next.map((r) => r.message)).toEqual(Array.from({ length: 20 }, (_, i) => `back n${i}`));
  });
});
