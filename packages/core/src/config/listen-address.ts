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

const SHAPE = /^(\[[0-9a-fA-F:.]+\]|[^:\s[\]]*):(\d{1,5})$/;

/**
 * Parses `HOST:PORT`, `[IPv6]:PORT` or `:PORT` (every interface, IPv6 too, as in Go
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
export const PLUGIN_ADDRESS_FORMAT = 'expected HOST:PORT of the plugin, e.g. 127.0.0.1:9000, or a gRPC target such as unix:/run/plugin.sock';

/** gRPC name-resolver schemes grpc-js takes in a target. */
const GRPC_TARGET = /^(dns|unix|unix-abstract|ipv4|ipv6|vsock):./;

/**
 * Whether `text` is where a plugin can be reached: `HOST:PORT` with a host and
 * a port from 1, or a gRPC target URI. grpc-js would take a bare name too and
 * quietly dial port 443; that is refused, as it is always a mistake here.
 */
export function isPluginAddress(text: string): boolean {
  if (GRPC_TARGET.test(text)) return true;
  const address = parseListenAddress(text);
  return address !== undefined && !text.startsWith(':') && address.port > 0;
}
