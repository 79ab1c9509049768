import { StartFailure } from './bin-main.js';
import { listenFailure } from './listen-failure.js';

/**
 * What a plugin bin says when `serve()` rejects: an address none of this machine's, or a host name that does not
 * resolve, as what `--host` must change, exit 2 (as core and the node watcher say theirs); anything else (a port in
 * use, TLS files that cannot be read) in `serve()`'s words, exit 1.
 * @param host the `--host` the bin was given.
 */
export function serveStartFailure(err: unknown, host: string): StartFailure {
  const { reason, notThisMachine } = listenFailure(err);
  return notThisMachine ? new StartFailure(`--host ${host}: ${reason}`, 2) : new StartFailure(err instanceof Error ? err.message : String(err));
}
