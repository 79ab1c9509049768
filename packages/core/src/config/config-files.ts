import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { TlsFiles, type ClientTlsFiles, type ClientTlsOptions, type TlsFilePaths } from '@hollowtrees/grpcplugin/without-grpc';
import type { KubeConfig } from '@kubernetes/client-node';
import { fileProblem } from '../file-problem.js';
import { ConfigError, type ConfigProblem } from './config-error.js';
import type { LoadedConfig } from './load-config.js';

/** The receiver's credentials with every secret in hand (files read). */
export interface ReceiverCredentials {
  bearerToken?: string;
  basic?: { username: string; password: string };
}

/** What the files a configuration names hold, read and checked. */
export interface ConfigFiles {
  /** `server.tls`, when set: read again every `server.tls.refresh` while the receiver serves it. */
  receiverTls?: TlsFiles;
  /** `server.auth`, when set. */
  credentials?: ReceiverCredentials;
  /** `plugins.<name>.tls` of every plugin that has it: its files read again every `refresh` while its client is open. */
  pluginTls: ReadonlyMap<string, ClientTlsOptions | ClientTlsFiles>;
  /** `state.kubernetes.kubeconfig`, when set, loaded. */
  kubeconfig?: KubeConfig;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]*-----END CERTIFICATE-----/g;

/** Whether `pem` holds at least one certificate and every certificate block in it parses. */
function holdsCertificates(pem: Buffer): boolean {
  const blocks = pem.toString('latin1').match(PEM_CERTIFICATE) ?? [];
  try {
    for (const block of blocks) new X509Certificate(block);
  } catch {
    return false;
  }
  return blocks.length > 0;
}

/** Whether Node's TLS (which gRPC uses too) takes these options. */
function tlsAccepts(options: { cert?: Buffer; key?: Buffer }): boolean {
  try {
    createSecureContext(options);
    return true;
  } catch {
    return false;
  }
}

/**
 * Reads and checks every file the configuration names — receiver certificate and
 * key, auth secrets, plugin CA, certificate and key, the state's kubeconfig — as start-up needs them.
 * `hollowtrees validate`, start-up and reload all call this one function, so a
 * file that would stop start-up fails validation with the same message.
 *
 * Throws {@link ConfigError} listing every problem: the YAML path, the file
 * (never a path that came from the environment) and what is wrong with it.
 */
export async function readConfigFiles(loaded: LoadedConfig): Promise<ConfigFiles> {
  const { config, display } = loaded;
  const problems: ConfigProblem[] = [];
  const problem = (path: string, file: string, what: string): undefined => {
    problems.push({ path, message: `${display.quoted(path, file)} ${what}` });
    return undefined;
  };
  const read = (path: string, file: string): Buffer | undefined => {
    try {
      return readFileSync(resolve(loaded.baseDir, file));
    } catch (err) {
      problems.push({ path, message: `cannot read ${display.quoted(path, file)}: ${fileProblem(err) ?? (err as Error).name}` });
      return undefined;
    }
  };
  /** A secret file's text; the trailing newline an editor or `echo` leaves is not part of it. */
  const readSecret = (path: string, file: string): string | undefined => {
    const text = read(path, file)?.toString('utf8').trim();
    return text === '' ? problem(path, file, 'is empty') : text;
  };
  const readCertificate = (path: string, file: string): Buffer | undefined => {
    const pem = read(path, file);
    return pem && !tlsAccepts({ cert: pem }) ? problem(path, file, 'is not a PEM certificate') : pem;
  };
  const readKey = (path: string, file: string): Buffer | undefined => {
    const pem = read(path, file);
    return pem && !tlsAccepts({ key: pem }) ? problem(path, file, 'is not a PEM private key (without passphrase)') : pem;
  };
  /** Certificate and key under `prefix` (e.g. `server.tls`), which must belong together. */
  const readPair = (prefix: string, files: { cert: string; key: string }): { cert: Buffer; key: Buffer } | undefined => {
    const cert = readCertificate(`${prefix}.cert`, files.cert);
    const key = readKey(`${prefix}.key`, files.key);
    if (!cert || !key) return undefined;
    return tlsAccepts({ cert, key }) ? { cert, key } : problem(`${prefix}.key`, files.key, `is not the key of the certificate in ${prefix}.cert`);
  };
  /**
   * The files under `prefix`, checked above, as the runtime reads them again every `refreshMs`. Its
   * later errors name each file by its YAML path and as written, never a path from the environment.
   */
  const watched = (prefix: string, files: TlsFilePaths, refreshMs: number): TlsFiles | undefined => {
    const entries = Object.entries(files).filter((e): e is [keyof TlsFilePaths, string] => e[1] !== undefined);
    const paths = Object.fromEntries(entries.map(([field, file]) => [field, resolve(loaded.baseDir, file)]));
    const labels = Object.fromEntries(entries.map(([field, file]) => [field, `${prefix}.${field} ${display.quoted(`${prefix}.${field}`, file)}`]));
    try {
      return new TlsFiles(paths, { refreshMs, labels });
    } catch (err) {
      // Changed since the checks above read it (a renewal under way): said as the runtime would say it.
      problems.push({ path: prefix, message: (err as Error).message });
      return undefined;
    }
  };

  const serverTls = config.server.tls;
  const receiverTls = serverTls && readPair('server.tls', serverTls) && watched('server.tls', { cert: serverTls.cert, key: serverTls.key }, serverTls.refresh);

  const auth = config.server.auth;
  let credentials: ReceiverCredentials | undefined;
  if (auth) {
    const bearerToken = auth.bearerToken ?? (auth.bearerTokenFile === undefined ? undefined : readSecret('server.auth.bearerTokenFile', auth.bearerTokenFile));
    const basic = auth.basic;
    const password = basic && (basic.password ?? readSecret('server.auth.basic.passwordFile', basic.passwordFile!));
    credentials = { ...(bearerToken === undefined ? {} : { bearerToken }), ...(basic && password !== undefined ? { basic: { username: basic.username, password } } : {}) };
  }

  const pluginTls = new Map<string, ClientTlsOptions>();
  for (const [name, plugin] of Object.entries(config.plugins)) {
    if (plugin.type !== 'grpc' || !plugin.tls) continue;
    const { ca: caFile, cert, key, serverName } = plugin.tls;
    const prefix = `plugins.${name}.tls`;
    const caPem = caFile === undefined ? undefined : read(`${prefix}.ca`, caFile);
    // Node's TLS skips what it cannot parse in a CA bundle; every plugin call would then fail verification.
    const ca = caPem && !holdsCertificates(caPem) ? problem(`${prefix}.ca`, caFile!, 'is not a PEM certificate bundle') : caPem;
    const pair = cert !== undefined && key !== undefined ? readPair(prefix, { cert, key }) : undefined;
    if ((caFile !== undefined && !ca) || (cert !== undefined && !pair)) continue;
    // Without files (the system's roots, no client certificate) there is nothing to read again.
    const files = caFile === undefined && cert === undefined ? undefined : watched(prefix, { ca: caFile, cert, key }, plugin.tls.refresh);
    pluginTls.set(name, { ...(files ? { files } : {}), ...(serverName ? { serverName } : {}) });
  }

  /** A kubeconfig the Lease client can use; never the parser's message, which may quote the file's secrets. */
  const readKubeConfig = async (path: string, file: string): Promise<KubeConfig | undefined> => {
    const text = read(path, file)?.toString('utf8');
    if (text === undefined) return undefined;
    // Loaded only here: @kubernetes/client-node takes 70 MiB, which only the kubernetes backend needs.
    const { loadStoreKubeConfig } = await import('../state/lease-api.js');
    try {
      return loadStoreKubeConfig(text);
    } catch {
      return problem(path, file, 'is not a kubeconfig with a current cluster');
    }
  };

  const kubeconfigFile = config.state.kubernetes?.kubeconfig;
  const kubeconfig = kubeconfigFile === undefined ? undefined : await readKubeConfig('state.kubernetes.kubeconfig', kubeconfigFile);

  if (problems.length > 0) throw new ConfigError(loaded.file, problems);
  return { ...(receiverTls ? { receiverTls } : {}), ...(credentials ? { credentials } : {}), pluginTls, ...(kubeconfig === undefined ? {} : { kubeconfig }) };
}
