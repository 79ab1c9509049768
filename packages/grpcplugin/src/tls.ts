import { ChannelCredentials, ServerCredentials, experimental } from '@grpc/grpc-js';
import type { TlsFiles } from './tls-files.js';

/** PEM contents (not paths): read files yourself, so secrets stay under your control. */
export type Pem = string | Buffer;

/** TLS for a plugin server. Set `ca` and `requireClientCert` for mTLS. */
export interface ServerTlsOptions {
  /** Server certificate chain, PEM. */
  cert: Pem;
  /** Server private key, PEM. */
  key: Pem;
  /** CA bundle that client certificates must chain to, PEM. */
  ca?: Pem;
  /** Refuse clients without a certificate signed by `ca`. Default: true when `ca` is set; true without `ca` is an error. */
  requireClientCert?: boolean;
}

/**
 * TLS for a plugin server from files read again as they are renewed (see {@link TlsFiles}):
 * `files` with `cert` and `key`, and `ca` for mTLS.
 */
export interface ServerTlsFiles {
  /** The server's certificate and key, and the CA client certificates must chain to. */
  files: TlsFiles;
  /** Refuse clients without a certificate signed by the CA. Default: true when `files` has `ca`; true without it is an error. */
  requireClientCert?: boolean;
}

/** TLS towards a plugin. Set `cert` and `key` to present a client certificate (mTLS). */
export interface ClientTlsOptions {
  /** CA bundle the server certificate must chain to, PEM. Default: the system roots. */
  ca?: Pem;
  /** Client certificate chain, PEM, for mTLS. */
  cert?: Pem;
  /** Client private key, PEM, for mTLS. */
  key?: Pem;
  /** Name to check the server certificate against, when it differs from the address' host. */
  serverName?: string;
}

/**
 * TLS towards a plugin from files read again as they are renewed (see {@link TlsFiles}): `files` with
 * `ca` (without it, Node's default CAs, `NODE_EXTRA_CA_CERTS` among them) and, for mTLS, `cert` and `key`.
 */
export interface ClientTlsFiles {
  /** The CA the plugin's certificate must chain to, and the client certificate and key. */
  files: TlsFiles;
  /** Name to check the server certificate against, when it differs from the address' host. */
  serverName?: string;
}

const toBuffer = (pem: Pem): Buffer => (typeof pem === 'string' ? Buffer.from(pem) : pem);

const hasCa = (tls: ServerTlsOptions | ServerTlsFiles): boolean => ('files' in tls ? tls.files.paths.ca !== undefined : tls.ca !== undefined);

/** True when a server with these options accepts only clients presenting a certificate (mTLS). */
export function requiresClientCertificates(tls: ServerTlsOptions | ServerTlsFiles | undefined): boolean {
  return tls !== undefined && (tls.requireClientCert ?? hasCa(tls));
}

/** Server credentials for the given TLS options; insecure without them. */
export function serverCredentials(tls: ServerTlsOptions | ServerTlsFiles | undefined): ServerCredentials {
  if (!tls) return ServerCredentials.createInsecure();
  // grpc-js would check client certificates against the system roots: any publicly signed one would do.
  if (tls.requireClientCert === true && !hasCa(tls)) {
    throw new TypeError('server TLS: requireClientCert needs ca, the CA bundle client certificates must chain to (without it, any certificate a public CA signed would be accepted)');
  }
  if ('files' in tls) {
    if (tls.files.paths.cert === undefined) throw new TypeError('server TLS: files need cert and key');
    const mtls = requiresClientCertificates(tls);
    // grpc-js takes the identity provider first and the CA provider second, whatever its typings name them.
    return experimental.createCertificateProviderServerCredentials(tls.files, mtls ? tls.files : null, mtls);
  }
  return ServerCredentials.createSsl(
    tls.ca === undefined ? null : toBuffer(tls.ca),
    [{ cert_chain: toBuffer(tls.cert), private_key: toBuffer(tls.key) }],
    requiresClientCertificates(tls),
  );
}

/** Channel credentials for the given TLS options; insecure without them. */
export function channelCredentials(tls: ClientTlsOptions | ClientTlsFiles | undefined): ChannelCredentials {
  if (!tls) return ChannelCredentials.createInsecure();
  if ('files' in tls) return experimental.createCertificateProviderChannelCredentials(tls.files, tls.files.paths.cert === undefined ? null : tls.files);
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new TypeError('client TLS: cert and key must be given together');
  }
  return ChannelCredentials.createSsl(
    tls.ca === undefined ? null : toBuffer(tls.ca),
    tls.key === undefined ? null : toBuffer(tls.key),
    tls.cert === undefined ? null : toBuffer(tls.cert),
  );
}
