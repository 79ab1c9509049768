import { isIPv6 } from 'node:net';
import { networkInterfaces } from 'node:os';

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

/** One address of a host name that could not be listened on, with Node's listen error. */
export interface AddressFailure {
  readonly address: string;
  readonly error: unknown;
}

/** What {@link listenFailure} reads of an error: Node's `code` and `address`, or each address's failure of a name with several. */
interface ListenErrorParts {
  code?: string;
  address?: string;
  failures?: readonly AddressFailure[];
}

/** An IPv6 address in one spelling (`FE80:0:0:0:0:0:0:1` as `fe80::1`), so two forms of one address compare equal. */
function canonicalIPv6(address: string): string {
  try {
    return new URL(`http://[${address}]`).hostname.slice(1, -1);
  } catch {
    return address.toLowerCase();
  }
}

/** The interface a link-local IPv6 address is on here, if any: what goes after its `%`. */
function interfaceOf(address: string): string | undefined {
  const wanted = canonicalIPv6(address);
  return Object.entries(networkInterfaces()).find(([, infos]) => infos?.some((i) => i.family === 'IPv6' && canonicalIPv6(i.address) === wanted))?.[0];
}

/**
 * Node's EINVAL for a link-local IPv6 address, in words: given without its interface (`fe80::1`, not `fe80::1%eth0`),
 * or with one after its `%` this machine has not (a typo, another host's name).
 */
function linkLocalProblem(address: string): string {
  const [bare = address, zone] = address.split('%');
  const name = interfaceOf(bare);
  if (zone !== undefined) {
    const not = `no interface of this machine is named ${zone} (after the %)`;
    return name ? `${not}: ${bare} is on ${name}, so ${bare}%${name}` : `${not}, and none has ${bare}`;
  }
  const hint = 'a link-local IPv6 address needs the interface it is on after a %';
  return name ? `${hint}: ${address}%${name}` : `${hint} (${address}%<interface>), and no interface of this machine has it`;
}

/**
 * Why a server could not listen, in an operator's words, and whether the address itself is wrong
 * (none of this machine's, or unusable as given: a usage or configuration error, exit 2) rather than busy or refused.
 * A name none of whose several addresses could listen says each one's reason, and is wrong itself only when each is.
 */
export function listenFailure(err: unknown): { reason: string; notThisMachine: boolean } {
  const { code = '', address, failures } = (typeof err === 'object' && err !== null ? err : {}) as ListenErrorParts;
  if (failures && failures.length > 0) {
    const each = failures.map((f) => ({ address: f.address, ...listenFailure(f.error) }));
    return { reason: `none of its addresses can be listened on: ${each.map((e) => `${e.address}: ${e.reason}`).join('; ')}`, notThisMachine: each.every((e) => e.notThisMachine) };
  }
  const notHere = NOT_THIS_MACHINE[code];
  if (notHere) return { reason: notHere, notThisMachine: true };
  if (code === 'EINVAL' && address && isIPv6(address) && /^fe[89ab]/i.test(address)) return { reason: linkLocalProblem(address), notThisMachine: true };
  return { reason: ELSEWHERE[code] ?? (code || (err instanceof Error ? err.message : String(err))), notThisMachine: false };
}
