import { connect, createServer, type Socket } from 'node:net';

/** A TCP relay on 127.0.0.1 in front of a local port, whose connections a test can slow or cut off. */
export interface TcpRelay {
  readonly port: number;
  /** Connections accepted so far: a client that reconnected shows here. */
  readonly accepted: number;
  /** Holds the next bytes the client sends (and, to keep their order, any behind them) for `ms`. */
  delayNextClientBytes(ms: number): void;
  /**
   * Every connection open now stops passing bytes either way while its sockets stay open: a NAT
   * or load balancer that silently dropped the connection, so neither end hears of it. Connections
   * made later pass bytes as before.
   */
  blackholeOpenConnections(): void;
  /** Connections made from now on go to `port`; those open stay where they are: a Service whose endpoint moved to a new pod. */
  retarget(port: number): void;
  close(): Promise<void>;
}

/** What a {@link startTcpRelay} relay tells as it passes bytes on. */
export interface TcpRelayOptions {
  /** Called as bytes from a client arrive, before they are passed on. */
  onClientBytes?: () => void;
}

/**
 * Starts a relay to `127.0.0.1:targetPort` (until {@link TcpRelay.retarget}): a slow or broken network, as both ends see it,
 * with real sockets on both sides.
 */
export async function startTcpRelay(targetPort: number, options: TcpRelayOptions = {}): Promise<TcpRelay> {
  let target = targetPort;
  let delayMs = 0;
  let accepted = 0;
  const sockets = new Set<Socket>();
  const blackholes = new Set<() => void>();
  const track = (socket: Socket): Socket => {
    sockets.add(socket.on('close', () => sockets.delete(socket)).on('error', () => socket.destroy()));
    return socket;
  };
  const server = createServer((client) => {
    accepted++;
    const upstream = track(connect(target, '127.0.0.1'));
    track(client);
    let dropped = false;
    blackholes.add(() => (dropped = true));
    let sent = Promise.resolve();
    client.on('data', (chunk) => {
      options.onClientBytes?.();
      const holdFor = delayMs;
      delayMs = 0;
      if (holdFor > 0) sent = sent.then(() => new Promise((resolve) => setTimeout(resolve, holdFor)));
      sent = sent.then(() => void (dropped || upstream.write(chunk)));
    });
    upstream.on('data', (chunk) => void (dropped || client.write(chunk)));
    // Nor does an end pass through a dropped connection.
    client.on('close', () => dropped || upstream.destroy());
    upstream.on('close', () => dropped || client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    get accepted() {
      return accepted;
    },
    delayNextClientBytes: (ms) => void (delayMs = ms),
    retarget: (port) => void (target = port),
    blackholeOpenConnections: () => {
      for (const drop of blackholes) drop();
      blackholes.clear();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
