import { serve, type CloudEvent, type EventHandler, type HandleContext, type HandleResult, type PluginServer, type ServeOptions } from '@hollowtrees/grpcplugin';

/** One call a recording plugin received. */
export interface RecordedCall {
  event: CloudEvent;
  flow: string;
  attempt: number;
  /** The flow's settings for the plugin. */
  config: Readonly<Record<string, string>>;
  at: number;
}

/** A real gRPC plugin on an ephemeral port that records every call and answers through `behaviour`. */
export interface RecordingPlugin {
  server: PluginServer;
  address: string;
  calls: RecordedCall[];
  /** Resolves once `count` calls have arrived. */
  waitForCalls(count: number, timeoutMs?: number): Promise<RecordedCall[]>;
  close(): Promise<void>;
}

export async function startRecordingPlugin(
  behaviour: (event: CloudEvent, context: HandleContext, callIndex: number) => HandleResult | void | Promise<HandleResult | void> = () => {},
  options: ServeOptions & { port?: number } = {},
): Promise<RecordingPlugin> {
  const calls: RecordedCall[] = [];
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  const handler: EventHandler = {
    handle: (event, context) => {
      calls.push({ event, flow: context.flow, attempt: context.attempt, config: context.config, at: Date.now() });
      for (const w of waiters.filter((w) => calls.length >= w.count)) w.resolve();
      return behaviour(event, context, calls.length - 1);
    },
  };
  const { port = 0, ...serveOptions } = options;
  const server = await serve(port, handler, { host: '127.0.0.1', shutdownTimeoutMs: 2_000, ...serveOptions });
  return {
    server,
    address: `127.0.0.1:${server.port}`,
    calls,
    waitForCalls(count, timeoutMs = 10_000) {
      if (calls.length >= count) return Promise.resolve(calls);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`waited ${timeoutMs} ms for ${count} calls, got ${calls.length}`)), timeoutMs);
        waiters.push({
          count,
          resolve: () => {
            clearTimeout(timer);
            resolve(calls);
          },
        });
      });
    },
    close: () => server.close(),
  };
}
