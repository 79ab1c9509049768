import type { Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';

/**
 * Pending connections the kernel keeps for a stand-in (Linux caps it at
 * `net.core.somaxconn`, 4096 on current kernels). Node's default of 511 drops
 * SYNs when a wave of clients connects at once, and the stand-in, not the code
 * under test, becomes what the drill measures.
 */
export const LISTEN_BACKLOG = 4096;

/** Listens on `host` and an ephemeral port with {@link LISTEN_BACKLOG}; resolves with the port. */
export function listenOnEphemeralPort(server: Server, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: 0, host, backlog: LISTEN_BACKLOG }, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/**
 * Milliseconds since the epoch with sub-millisecond precision, comparable
 * across the processes of one machine: what the stand-ins stamp on every call
 * and a drill measures against.
 */
export function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Closes a stand-in's server, cutting open connections (long polls, keep-alive sockets) instead of waiting for them. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

/** Whether this machine has an IPv6 loopback (`::1`) to listen on: some containers have none. */
export function hasIpv6Loopback(): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createTcpServer().once('error', () => resolve(false));
    probe.listen(0, '::1', () => probe.close(() => resolve(true)));
  });
}
