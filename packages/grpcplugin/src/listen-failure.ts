/** Listen errors that mean the address is none of this machine's: the flag or configuration must change. */
const NOT_THIS_MACHINE: Readonly<Record<string, string>> = {
  EADDRNOTAVAIL: 'no interface of this machine has that address',
  ENOTFOUND: 'the host name does not resolve',
  EAI_AGAIN: 'the host name does not resolve',
};

/** Other listen errors an operator fixes outside the flag (Node's `listen EADDRINUSE: ...` says neither). */
const ELSEWHERE: Readonly<Record<string, string>> = {
  EADDRINUSE: 'the port is already in use',
  EACCES: 'permission denied (a port below 1024 needs privileges)',
};

/**
 * Why a server could not listen, in an operator's words, and whether the address itself is wrong
 * (none of this machine's: a usage or configuration error, exit 2) rather than busy or refused.
 */
export function listenFailure(err: unknown): { reason: string; notThisMachine: boolean } {
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? '';
  const notHere = NOT_THIS_MACHINE[code];
  if (notHere) return { reason: notHere, notThisMachine: true };
  return { reason: ELSEWHERE[code] ?? (code || (err instanceof Error ? err.message : String(err))), notThisMachine: false };
}
