import { labelsOf, serve } from '@hollowtrees/grpcplugin';

/** A gRPC plugin that holds its calls until released. */
export interface GatedPlugin {
  /** host:port it serves on. */
  address: string;
  /** Calls per `instance_id`. */
  calls: Map<string, number>;
  /** Calls held now. */
  waiting: () => number;
  /** Answers the calls held, and every later one at once. */
  release: () => void;
  close: () => Promise<void>;
}

/** A plugin that holds every call until `release()`, then answers them all at once. */
export async function gatedPlugin(): Promise<GatedPlugin> {
  const calls = new Map<string, number>();
  let open = false;
  let waiters: Array<() => void> = [];
  const server = await serve(
    0,
    {
      handle: async (event) => {
        const instance = labelsOf(event).instance_id ?? '';
        calls.set(instance, (calls.get(instance) ?? 0) + 1);
        if (!open) await new Promise<void>((resolve) => waiters.push(resolve));
        return { message: 'ok' };
      },
    },
    { host: '127.0.0.1', shutdownTimeoutMs: 500 },
  );
  return {
    address: `127.0.0.1:${server.port}`,
    calls,
    waiting: () => waiters.length,
    release: () => {
      open = true;
      for (const resolve of waiters.splice(0)) resolve();
    },
    close: () => server.close(),
  };
}
