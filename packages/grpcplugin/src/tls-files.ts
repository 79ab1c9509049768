import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import type { experimental } from '@grpc/grpc-js';

type CertificateProvider = experimental.CertificateProvider;
type CaListener = experimental.CaCertificateUpdateListener;
type IdentityListener = experimental.IdentityCertificateUpdateListener;

/** Paths of PEM files: `cert` and `key` together (a server, or a client presenting a certificate), `ca` to verify the peer. */
export interface TlsFilePaths {
  /** Certificate chain, PEM. */
  cert?: string;
  /** Private key of `cert`, PEM, without passphrase. */
  key?: string;
  /** CA bundle the peer's certificate must chain to, PEM. */
  ca?: string;
}

/** How {@link TlsFiles} reads its files, and names them in its errors. */
export interface TlsFilesOptions {
  /** How often the files are read again, in ms. Default 60,000: cert-manager renews weeks ahead of expiry. */
  refreshMs?: number;
  /** How errors name each file, e.g. `--tls-cert "/etc/tls/tls.crt"`. Default: `cert "<path>"`, and so on. */
  labels?: Partial<Record<keyof TlsFilePaths, string>>;
}

/** Told what each read of the files found; see {@link TlsFiles.observe}. */
export interface TlsFilesObserver {
  /** The files changed and fit together: new connections use them from now on. */
  onChange?(material: Readonly<TlsMaterial>): void;
  /** A read failed, or found a certificate and key that do not belong together: what was read last stays in use. */
  onError?(err: Error): void;
}

/** The PEM contents last read. */
export interface TlsMaterial {
  cert?: Buffer;
  key?: Buffer;
  ca?: Buffer;
}

const DEFAULT_REFRESH_MS = 60_000;
const FIELDS = ['cert', 'key', 'ca'] as const;

type Label = (field: keyof TlsFilePaths) => string;

/** Reads one file, naming it if it cannot. */
function readOne<T>(field: keyof TlsFilePaths, label: Label, read: () => T): T {
  try {
    return read();
  } catch (err) {
    // The code only: the system's message repeats the path, which the label may hide.
    throw new Error(`TLS file ${label(field)}: cannot read it: ${(err as NodeJS.ErrnoException).code ?? (err as Error).name}`, { cause: err });
  }
}

/** Throws, naming the files, unless Node's TLS (which gRPC uses) takes this material; a CA bundle must hold a certificate. */
function check(material: TlsMaterial, label: Label): void {
  try {
    createSecureContext({ ...material });
  } catch (err) {
    throw new Error(`TLS files ${FIELDS.filter((f) => material[f]).map(label).join(', ')}: ${(err as Error).message}`, { cause: err });
  }
  if (material.ca && !material.ca.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`TLS file ${label('ca')}: no PEM certificate in it`);
}

/**
 * Calls `tell`; what it throws becomes a process warning. A listener or observer that throws must neither keep
 * the others from hearing of a read nor make the timer's read an unhandled rejection, which ends the process.
 */
function told(tell: () => void): void {
  try {
    tell();
  } catch (err) {
    process.emitWarning(`TLS files: a listener or observer of their reads threw: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function sameMaterial(a: TlsMaterial, b: TlsMaterial): boolean {
  return FIELDS.every((f) => (a[f] === undefined ? b[f] === undefined : b[f] !== undefined && a[f].equals(b[f])));
}

/**
 * TLS certificate, key and CA read from files, and read again every `refreshMs`: a certificate renewed
 * in place (cert-manager writing a mounted Secret, certbot) reaches new connections without a restart,
 * where PEM contents given once would be served until they expire. Give it as `tls: { files }` to
 * `serve` or `PluginClient`. The files are read once when it is made (throwing, with the file named,
 * if they cannot be read or do not fit together); later a read that fails, or catches a certificate
 * and key half-written, keeps what was read last and tells the observers. Connections already open
 * keep the certificate they were made with.
 *
 * It implements grpc-js' `CertificateProvider`; files are read again only while a server, a channel
 * or an observer uses it, on a timer that does not keep the process alive.
 */
export class TlsFiles implements CertificateProvider {
  private material: TlsMaterial;
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();
  private readonly observers = new Set<TlsFilesObserver>();
  private readonly label: Label;
  private timer: NodeJS.Timeout | undefined;
  private reading: Promise<boolean> | undefined;
  private readonly refreshMs: number;

  constructor(
    /** The files; `cert` and `key` together. */
    readonly paths: TlsFilePaths,
    options: TlsFilesOptions = {},
  ) {
    if ((paths.cert === undefined) !== (paths.key === undefined)) throw new TypeError('TLS files: cert and key must be given together');
    if (paths.cert === undefined && paths.ca === undefined) throw new TypeError('TLS files: give cert and key, or ca, or all three');
    const refreshMs = options.refreshMs ?? DEFAULT_REFRESH_MS;
    if (!Number.isInteger(refreshMs) || refreshMs < 1 || refreshMs > 2 ** 31 - 1) throw new RangeError(`TLS files: refreshMs must be a whole number of ms from 1 to ${2 ** 31 - 1}, got ${refreshMs}`);
    this.refreshMs = refreshMs;
    this.label = (field) => options.labels?.[field] ?? `${field} ${JSON.stringify(paths[field])}`;
    const material: TlsMaterial = {};
    for (const field of FIELDS) {
      const path = paths[field];
      if (path !== undefined) material[field] = readOne(field, this.label, () => readFileSync(path));
    }
    check(material, this.label);
    this.material = material;
  }

  /** The PEM contents in use: those last read that fit together. */
  get current(): Readonly<TlsMaterial> {
    return this.material;
  }

  /**
   * Reads the files now. Resolves true when they changed (and were taken), false when they are as
   * before or could not be taken (told to the observers); never rejects, also when a listener or observer
   * throws (a process warning then). Reads at the same time share one.
   */
  refresh(): Promise<boolean> {
    return (this.reading ??= this.readAgain().finally(() => (this.reading = undefined)));
  }

  private async readAgain(): Promise<boolean> {
    let next: TlsMaterial;
    try {
      const read = await Promise.all(
        FIELDS.map(async (field) => {
          const path = this.paths[field];
          return [field, path === undefined ? undefined : await readOne(field, this.label, () => readFile(path))] as const;
        }),
      );
      next = Object.fromEntries(read.filter(([, pem]) => pem !== undefined)) as TlsMaterial;
      if (sameMaterial(next, this.material)) return false;
      check(next, this.label);
    } catch (err) {
      for (const observer of this.observers) told(() => observer.onError?.(err as Error));
      return false;
    }
    this.material = next;
    for (const listener of this.identityListeners) told(() => listener(this.identity()));
    for (const listener of this.caListeners) told(() => listener(this.caUpdate()));
    for (const observer of this.observers) told(() => observer.onChange?.(next));
    return true;
  }

  /** Tells `observer` what each later read finds, until the returned function is called; the files are read again meanwhile. */
  observe(observer: TlsFilesObserver): () => void {
    this.observers.add(observer);
    this.watch();
    return () => {
      this.observers.delete(observer);
      this.unwatchIfUnused();
    };
  }

  private identity(): experimental.IdentityCertificateUpdate | null {
    const { cert, key } = this.material;
    return cert && key ? { certificate: cert, privateKey: key } : null;
  }

  // Without a CA file, the peer is checked against Node's default CAs (NODE_EXTRA_CA_CERTS among them), as credentials made
  // without a CA check it: grpc-js hands caCertificate to createSecureContext, which takes undefined so, though its typings want a Buffer.
  private caUpdate(): experimental.CaCertificateUpdate {
    return { caCertificate: this.material.ca as Buffer };
  }

  /** grpc-js' `CertificateProvider`: calls `listener` with the CA now and whenever it changes; files are read again while a listener is added. */
  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    this.watch();
    process.nextTick(listener, this.caUpdate());
  }

  /** grpc-js' `CertificateProvider`: the listener is called no more. */
  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
    this.unwatchIfUnused();
  }

  /** grpc-js' `CertificateProvider`: calls `listener` with the certificate and key now and whenever they change (null without them); files are read again while a listener is added. */
  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    this.watch();
    process.nextTick(listener, this.identity());
  }

  /** grpc-js' `CertificateProvider`: the listener is called no more. */
  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
    this.unwatchIfUnused();
  }

  private watch(): void {
    this.timer ??= setInterval(() => void this.refresh(), this.refreshMs).unref();
  }

  private unwatchIfUnused(): void {
    if (this.caListeners.size + this.identityListeners.size + this.observers.size > 0 || this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
