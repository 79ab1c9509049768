import { ChannelCredentials, ServerCredentials } from '@grpc/grpc-js';

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

const toBuffer = (pem: Pem): Buffer => (typeof pem === 'string' ? Buffer.from(pem) : pem);

/** True when a server with these options accepts only clients presenting a certificate (mTLS). */
export function requiresClientCertificates(tls: ServerTlsOptions | undefined): boolean {
  return tls !== undefined && (tls.requireClientCert ?? tls.ca !== undefined);
}

/** Server credentials for the given TLS options; insecure without them. */
export function serverCredentials(tls: ServerTlsOptions | undefined): ServerCredentials {
  if (!tls) return ServerCredentials.createInsecure();
  // grpc-js would check client certificates against the system roots: any publicly signed one would do.
  if (tls.requireClientCert === true && tls.ca === undefined) {
    throw new TypeError('server TLS: requireClientCert needs ca, the CA bundle client certificates must chain to (without it, any certificate a public CA signed would be accepted)');
  }
  return ServerCredentials.createSsl(
    tls.ca === undefined ? null : toBuffer(tls.ca),
    [{ cert_chain: toBuffer(tls.cert), private_key: toBuffer(tls.key) }],
    requiresClientCertificates(tls),
  );
}

/** Channel credentials for the given TLS options; insecure without them. */
export function channelCredentials(tls: ClientTlsOptions | undefined): ChannelCredentials {
  if (!tls) return ChannelCredentials.createInsecure();
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new TypeError('client TLS: cert and key must be given together');
  }
  return ChannelCredentials.createSsl(
    tls.ca === undefined ? null : toBuffer(tls.ca),
    tls.key === undefined ? null : toBuffer(tls.key),
    tls.cert === undefined ? null : toBuffer(tls.cert),
  );
}
