import { lookup } from 'node:dns/promises';
import { createServer } from 'node:net';

/** Listens on `address`:`port` with node:net and closes again; rejects with Node's listen error, which has its errno `code`. */
function listenOnce(address: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host: address, port }, () => server.close(() => resolve()));
  });
}

/**
 * Rejects with Node's error (its `code` EADDRNOTAVAIL, EADDRINUSE, EACCES, ENOTFOUND...) when `host`:`port` can be
 * listened on at none of the host's addresses, as grpc-js then fails its bind: grpc-js says why only in text, and
 * logs an error line of its own on stderr besides. Resolves as grpc-js does (every address of the name), and
 * succeeds when one address can listen, as grpc-js's bind does.
 */
export async function checkListenable(host: string, port: number): Promise<void> {
  const addresses = await lookup(host, { all: true });
  let first: unknown;
  for (const { address } of addresses) {
    try {
      return await listenOnce(address, port);
    } catch (err) {
      first ??= err;
    }
  }
  throw first;
}
