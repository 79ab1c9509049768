import { isIP } from 'node:net';

/** A receiver address, split into what `server.listen()` takes. */
export interface ListenAddress {
  /**
   * Absent when the address was written without a host (`:9092`): every interface, as Go's `:PORT`
   * (IPv6 and IPv4 where the machine has IPv6, so a single-stack IPv6 cluster reaches it; IPv4 only otherwise).
   */
  host?: string;
  port: number;
}

/** What a listen address must look like, for error messages. */
export const LISTEN_FORMAT = 'expected HOST:PORT with a port from 0 to 65535, e.g. 127.0.0.1:9092 (this machine only) or :9092 (every interface)';

// An IPv6 address may carry its interface after a % (`[fe80::1%eth0]`): a link-local one listens only so.
const SHAPE = /^(\[[0-9a-fA-F:.]+(?:%[^\]\s%]+)?\]|[^:\s[\]]*):(\d{1,5})$/;

/**
 * Parses `HOST:PORT`, `[IPv6]:PORT` (`[IPv6%interface]:PORT` too) or `:PORT` (every interface, IPv6 too, as in Go
 * and Prometheus). A bare port is refused rather than guessed: `9092` alone
 * could mean "loopback" or "everywhere", and the difference is who can send
 * alerts. Returns undefined for anything else.
 */
export function parseListenAddress(text: string): ListenAddress | undefined {
  const match = SHAPE.exec(text);
  if (!match) return undefined;
  const port = Number(match[2]);
  if (port > 65_535) return undefined;
  const host = match[1]!.replace(/^\[(.*)\]$/, '$1');
  return host === '' ? { port } : { host, port };
}

/** What a plugin address must look like, for error messages. */
const PLUGIN_ADDRESS_FORMAT = 'expected HOST:PORT of the plugin, e.g. 127.0.0.1:9000, or a gRPC target such as unix:/run/plugin.sock';

/** A gRPC target URI as grpc-js parses one (its uri-parser): `scheme:[//authority/]path`. */
const GRPC_TARGET = /^(dns|unix|ipv4|ipv6):(?:\/\/([^/]*)\/)?(.+)$/;

/** `HOST:PORT` with a host and a port from 1 (grpc-js dials 443 where the port is left out). */
function hostAndPort(text: string): ListenAddress | undefined {
  const address = parseListenAddress(text);
  return address?.host !== undefined && address.port > 0 ? address : undefined;
}

/**
 * What is wrong with a plugin address, or undefined when it is one grpc-js can dial:
 * `HOST:PORT` with a host and a port from 1, or a target of a scheme grpc-js resolves
 * (`unix:`, `dns:`, `ipv4:`, `ipv6:`). grpc-js would take a name without a port too and
 * quietly dial port 443; that is refused, as it is always a mistake here.
 */
export function pluginAddressProblem(text: string): string | undefined {
  const [, scheme, authority, path = ''] = GRPC_TARGET.exec(text) ?? [];
  switch (scheme) {
    case undefined:
      return hostAndPort(text) ? undefined : PLUGIN_ADDRESS_FORMAT;
    case 'unix':
      return undefined;
    case 'dns': {
      // grpc-js hands the authority to Node's resolver as the DNS server to ask, which takes an IP address only (and throws at start otherwise).
      const server = authority === undefined || authority === '' || isIP(authority) !== 0 || isIP(parseListenAddress(authority)?.host ?? '') !== 0;
      if (!server) return 'expected the DNS server of a dns://SERVER/HOST:PORT target as an IP address (grpc-js cannot use a name there), or dns:///HOST:PORT for the system\'s';
      return hostAndPort(path) ? undefined : 'expected dns:///HOST:PORT, with the port of the plugin (without one grpc-js dials port 443)';
    }
    default: {
      const family = scheme === 'ipv4' ? 4 : 6;
      const each = path.split(',').every((entry) => isIP(hostAndPort(entry)?.host ?? '') === family);
      return each ? undefined : `expected ${scheme}:ADDRESS:PORT, or a list of them separated by commas, each an IPv${family} address${family === 6 ? ' in brackets' : ''} with the port of the plugin`;
    }
  }
}
