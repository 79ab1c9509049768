import { lookup } from 'node:dns/promises';
import { isIPv6, createServer } from 'node:net';
import { listenFailure, type AddressFailure } from './listen-failure.js';

/** Listens on `address`:`port` with node:net and closes again; rejects with Node's listen error, which has its errno `code`. */
function listenOnce(address: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host: address, port }, () => server.close(() => resolve()));
  });
}

/**
 * The host and port of a host given with a port in it (`0.0.0.0:9000`, `[::1]:9000`), undefined for a host alone (a bare
 * IPv6 address such as `::1` included): node:net would look the whole up as a name, and say only that it does not resolve.
 */
export function hostWithPort(host: string): { host: string; port: string } | undefined {
  if (isIPv6(host)) return undefined;
  const match = /^\[([^\]]+)\]:(\d+)$/.exec(host) ?? /^([^:[\]]+):(\d+)$/.exec(host);
  return match ? { host: match[1]!, port: match[2]! } : undefined;
}

/**
 * Rejects with Node's error (its `code` EADDRNOTAVAIL, EADDRINUSE, EACCES, ENOTFOUND...) when `host`:`port` can be
 * listened on at none of the host's addresses, as grpc-js then fails its bind: grpc-js says why only in text, and
 * logs an error line of its own on stderr besides. Resolves as grpc-js does (every address of the name), and
 * succeeds when one address can listen, as grpc-js's bind does. A name with several addresses rejects with each
 * one's error (`failures`, for {@link listenFailure}), its `code` that of a port in use or refused if any: the first
 * address's alone could say the name is none of this machine's where the port is busy at another.
 */
export async function checkListenable(host: string, port: number): Promise<void> {
  const addresses = await lookup(host, { all: true });
  const failures: AddressFailure[] = [];
  for (const { address } of addresses) {
    try {
      return await listenOnce(address, port);
    } catch (error) {
      failures.push({ address, error });
    }
  }
  if (failures.length === 1) throw failures[0]!.error;
  const telling = failures.find((f) => !listenFailure(f.error).notThisMachine) ?? failures[0]!;
  throw Object.assign(new Error(`${host}: ${listenFailure({ failures }).reason}`), { code: (telling.error as NodeJS.ErrnoException).code, failures });
}
