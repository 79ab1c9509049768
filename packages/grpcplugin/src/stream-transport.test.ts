/**
 * What only the stream transport has to get right: calls that share one stream must not
 * share a fate (one stuck call, a slow plugin, a killed plugin), and a plugin without the
 * stream is still served. Real gRPC on loopback; the killed plugin is a process of its own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Server, ServerCredentials, status, type ServerDuplexStream } from '@grpc/grpc-js';
import { rejectionOf } from '@hollowtrees/testkit';
import { describe, expect, it } from 'vitest';
import { PluginClient, type PluginTransport } from './client.js';
import { Code, PluginError } from './errors.js';
import type { HandleContext } from './handler.js';
import type { LogFields, PluginLogger } from './plugin-logger.js';
import { HandleStatus, PluginServiceService, type HandleStreamRequest, type HandleStreamResponse, type StreamCall } from './gen/hollowtrees/plugin/v1/plugin.js';
import { serve } from './serve.js';
import { pluginPairs, testEvent } from './test-support/plugin-pair.js';
import { serveUnaryOnly, type UnaryOnlyPlugin } from './unary-only-plugin.js';

const pairs = pluginPairs();
const stream = pairs.over('stream');
const eventWithId = (id: string) => ({ ...testEvent, id });

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
});

describe('serve options for the stream', () => {
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

/** Starts a plugin process whose handler never answers, and tells when `inFlight` calls reached it. */
async function stuckPluginProcess(inFlight: number): Promise<{ child: ChildProcess; port: number; allIn: Promise<void> }> {
  const script = `
    import { serve } from ${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)};
    let calls = 0;
    const server = await serve(0, { handle: () => { if (++calls === ${inFlight}) console.log('all in'); return new Promise(() => {}); } });
    console.log('port ' + server.port);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  pairs.defer(() => child.kill('SIGKILL'));
  const lines = createInterface({ input: child.stdout! });
  let allIn!: () => void;
  const allInPromise = new Promise<void>((resolve) => (allIn = resolve));
  const port = await new Promise<number>((resolve) =>
    lines.on('line', (line) => {
      if (line.startsWith('port ')) resolve(Number(line.slice(5)));
      if (line === 'all in') allIn();
    }),
  );
  return { child, port, allIn: allInPromise };
}

describe('a plugin process killed with calls in flight on its stream', () => {
  it('fails every one of 500 calls with UNAVAILABLE, none reported done; once it is back on the same port the next calls succeed', async () => {
    const plugin = await stuckPluginProcess(500);
    const client = clientOf(plugin.port, 'stream');
    // The client waits for a plugin that went away until each call's deadline, then gives up.
    const outcomes = Array.from({ length: 500 }, (_, i) =>
      client.handle(eventWithId(`c${i}`), { flow: 'f', timeoutMs: 4_000 }).then(
        () => 'done',
        (err: unknown) => (err instanceof PluginError ? status[err.code] : String(err)),
      ),
    );
    await plugin.allIn;
    const died = new Promise((resolve) => plugin.child.once('exit', resolve));
    plugin.child.kill('SIGKILL');
    await died;
    const results = await Promise.all(outcomes);
    expect(new Set(results)).toEqual(new Set(['UNAVAILABLE']));
    expect(results).toHaveLength(500);

    const back = await serve(plugin.port, { handle: (event) => ({ message: `back ${event.id}` }) }, { host: '127.0.0.1' });
    pairs.defer(() => back.close());
    const next = await Promise.all(Array.from({ length: 20 }, (_, i) => client.handle(eventWithId(`n${i}`), { flow: 'f', timeoutMs: 10_000 })));
    expect(next.map((r) => r.message)).toEqual(Array.from({ length: 20 }, (_, i) => `back n${i}`));
  });
});
