import { connect, createServer, type Socket } from 'node:net';

/** A TCP relay on 127.0.0.1 that forwards to a local port and can hold back the client's bytes. */
export interface DelayingRelay {
  readonly port: number;
  /** Holds the next bytes the client sends (and, to keep their order, any behind them) for `ms`. */
  delayNextClientBytes(ms: number): void;
  close(): Promise<void>;
}

/**
 * Starts a relay to `127.0.0.1:targetPort`: a slow network or a busy plugin,
 * as the plugin sees them, with real sockets on both sides.
 */
export async function startDelayingRelay(targetPort: number): Promise<DelayingRelay> {
  let delayMs = 0;
  const sockets = new Set<Socket>();
  const track = (socket: Socket): Socket => {
    sockets.add(socket.on('close', () => sockets.delete(socket)).on('error', () => socket.destroy()));
    return socket;
  };
  const server = createServer((client) => {
    const upstream = track(connect(targetPort, '127.0.0.1'));
    track(client);
    let sent = Promise.resolve();
    client.on('data', (chunk) => {
      const holdFor = delayMs;
      delayMs = 0;
      if (holdFor > 0) sent = sent.then(() => new Promise((resolve) => setTimeout(resolve, holdFor)));
      sent = sent.then(() => void upstream.write(chunk));
    });
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    delayNextClientBytes: (ms) => void (delayMs = ms),
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
