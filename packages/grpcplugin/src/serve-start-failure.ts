import { StartFailure } from './bin-main.js';
import { hostWithPort } from './listen-check.js';
import { listenFailure } from './listen-failure.js';

/**
 * What a plugin bin says when `serve()` rejects: an address none of this machine's, a host name that does not
 * resolve, a host with a port in it or a link-local IPv6 address without its interface (or with one this machine lacks), as what `--host` must
 * change, exit 2 (as core and the node watcher say theirs); anything else (a port in use, at every address of a
 * name too; TLS files that cannot be read) in `serve()`'s words, exit 1.
 * @param host the `--host` the bin was given.
 */
export function serveStartFailure(err: unknown, host: string): StartFailure {
  // serve() refuses it before any listen; in a bin's words, the port has a flag of its own.
  const split = hostWithPort(host);
  if (split) return new StartFailure(`--host ${host}: a host has no port in it: pass --host ${split.host} --port ${split.port}`, 2);
  const { reason, notThisMachine } = listenFailure(err);
  return notThisMachine ? new StartFailure(`--host ${host}: ${reason}`, 2) : new StartFailure(err instanceof Error ? err.message : String(err));
}
