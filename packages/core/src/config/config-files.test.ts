import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTestCertificates } from '@hollowtrees/testkit';
import { describe, expect, it } from 'vitest';
import type { ClientTlsFiles, ClientTlsOptions, TlsMaterial } from '@hollowtrees/grpcplugin';
import { readConfigFiles } from './config-files.js';
import { ConfigError } from './config-error.js';
import { parseConfig } from './load-config.js';

const dir = mkdtempSync(join(tmpdir(), 'hollowtrees-config-files-'));
const certs = makeTestCertificates();
const file = (name: string, text: string): string => {
  writeFileSync(join(dir, name), text);
  return join(dir, name);
};
const serverCert = file('server.pem', certs.server.cert);
const serverKey = file('server-key.pem', certs.server.key);
const clientCert = file('client.pem', certs.client.cert);
const clientKey = file('client-key.pem', certs.client.key);
const ca = file('ca.pem', certs.ca.cert);
const token = file('token', 's3cret-token\n');
const password = file('password', 'hunter2\n');
const missing = join(dir, 'missing.pem');
const notPem = file('not.pem', 'this is not PEM\n');

const FLOW = 'flows:\n  spot: { allowedEvents: [a.b], plugins: [log] }\n';
/** What a plugin's TLS holds now: the files' contents and the server name. */
const held = (tls: ClientTlsOptions | ClientTlsFiles | undefined): (TlsMaterial & { serverName?: string }) | undefined =>
  tls && { ...('files' in tls ? tls.files.current : {}), ...(tls.serverName ? { serverName: tls.serverName } : {}) };
const configWith = (server: string, plugins = '') => `server:\n${server}\n${plugins ? `plugins:\n${plugins}\n` : ''}${FLOW}`;

async function problems(yaml: string, env: NodeJS.ProcessEnv = {}): Promise<string[]> {
  const loaded = parseConfig(yaml, 'config.yaml', env);
  try {
    await readConfigFiles(loaded);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).message.split('\n');
  }
  throw new Error('expected a ConfigError');
}

describe('readConfigFiles', () => {
  it('reads every file the configuration names: receiver TLS, auth secrets (trimmed), plugin TLS', async () => {
    const loaded = parseConfig(
      configWith(
        `  tls: { cert: "${serverCert}", key: "${serverKey}" }\n  auth: { bearerTokenFile: "${token}", basic: { username: prometheus, passwordFile: "${password}" } }`,
        `  mtls: { type: grpc, address: "localhost:1", tls: { ca: "${ca}", cert: "${clientCert}", key: "${clientKey}", serverName: plugin.local } }\n  plain: { type: grpc, address: "localhost:2" }`,
      ),
      'config.yaml',
      {},
    );
    const files = await readConfigFiles(loaded);
    expect(files.receiverTls?.current).toEqual({ cert: Buffer.from(certs.server.cert), key: Buffer.from(certs.server.key) });
    expect(files.credentials).toEqual({ bearerToken: 's3cret-token', basic: { username: 'prometheus', password: 'hunter2' } });
    expect([...files.pluginTls.keys()]).toEqual(['mtls']);
    expect(held(files.pluginTls.get('mtls'))).toEqual({ ca: Buffer.from(certs.ca.cert), cert: Buffer.from(certs.client.cert), key: Buffer.from(certs.client.key), serverName: 'plugin.local' });
  });

  it("reads relative paths from the config file's directory, whatever the working directory", async () => {
    // The file's own directory (`dir`) is not the working directory of the test process.
    expect(process.cwd()).not.toBe(dir);
    const loaded = parseConfig(
      configWith('  tls: { cert: server.pem, key: ./server-key.pem }\n  auth: { bearerTokenFile: token }', '  mtls: { type: grpc, address: "localhost:1", tls: { ca: ../' + dir.split('/').pop() + '/ca.pem } }'),
      join(dir, 'hollowtrees.yaml'),
      {},
    );
    const files = await readConfigFiles(loaded);
    expect(files.receiverTls?.current).toEqual({ cert: Buffer.from(certs.server.cert), key: Buffer.from(certs.server.key) });
    expect(files.credentials).toEqual({ bearerToken: 's3cret-token' });
    expect(held(files.pluginTls.get('mtls'))).toEqual({ ca: Buffer.from(certs.ca.cert) });
    // A relative --config path: its directory, taken from the working directory when it was read.
    expect(parseConfig(FLOW, 'conf/hollowtrees.yaml', {}).baseDir).toBe(join(process.cwd(), 'conf'));
  });

  it('inline secrets need no file; no TLS and no auth read nothing', async () => {
    const loaded = parseConfig(configWith('  auth: { bearerToken: t0ken, basic: { username: u, password: p } }'), 'config.yaml', {});
    expect(await readConfigFiles(loaded)).toEqual({ credentials: { bearerToken: 't0ken', basic: { username: 'u', password: 'p' } }, pluginTls: new Map() });
    expect(await readConfigFiles(parseConfig(FLOW, 'config.yaml', {}))).toEqual({ pluginTls: new Map() });
  });

  it('names every missing file with its YAML path, not only the first', async () => {
    expect(
      await problems(
        configWith(
          `  tls: { cert: "${missing}", key: "${missing}" }\n  auth: { bearerTokenFile: "${missing}", basic: { username: u, passwordFile: "${missing}" } }`,
          `  p: { type: grpc, address: "localhost:1", tls: { ca: "${missing}", cert: "${missing}", key: "${missing}" } }`,
        ),
      ),
    ).toEqual(
      ['server.tls.cert', 'server.tls.key', 'server.auth.bearerTokenFile', 'server.auth.basic.passwordFile', 'plugins.p.tls.ca', 'plugins.p.tls.cert', 'plugins.p.tls.key'].map(
        (path) => `config.yaml: ${path}: cannot read ${JSON.stringify(missing)}: no such file or directory (ENOENT)`,
      ),
    );
  });

  it.each([
    ['a receiver certificate that is not PEM', configWith(`  tls: { cert: "${notPem}", key: "${serverKey}" }`), `server.tls.cert: "${notPem}" is not a PEM certificate`],
    ['a receiver key that is not PEM', configWith(`  tls: { cert: "${serverCert}", key: "${notPem}" }`), `server.tls.key: "${notPem}" is not a PEM private key (without passphrase)`],
    ['a certificate given as the key', configWith(`  tls: { cert: "${serverCert}", key: "${serverCert}" }`), `server.tls.key: "${serverCert}" is not a PEM private key (without passphrase)`],
    ['a key that belongs to another certificate', configWith(`  tls: { cert: "${serverCert}", key: "${clientKey}" }`), `server.tls.key: "${clientKey}" is not the key of the certificate in server.tls.cert`],
    ['a plugin CA that is not PEM', configWith('  listen: 127.0.0.1:0', `  p: { type: grpc, address: "a:1", tls: { ca: "${notPem}" } }`), `plugins.p.tls.ca: "${notPem}" is not a PEM certificate bundle`],
    ['a plugin CA that is a key', configWith('  listen: 127.0.0.1:0', `  p: { type: grpc, address: "a:1", tls: { ca: "${serverKey}" } }`), `plugins.p.tls.ca: "${serverKey}" is not a PEM certificate bundle`],
    ['a plugin client key of another certificate', configWith('  listen: 127.0.0.1:0', `  p: { type: grpc, address: "a:1", tls: { cert: "${clientCert}", key: "${serverKey}" } }`), `plugins.p.tls.key: "${serverKey}" is not the key of the certificate in plugins.p.tls.cert`],
    ['an empty token file (an empty secret)', configWith(`  auth: { bearerTokenFile: "${file('empty', '\n')}" }`), `server.auth.bearerTokenFile: "${join(dir, 'empty')}" is empty`],
  ])('rejects %s', async (_name, yaml, expected) => {
    expect(await problems(yaml)).toEqual([`config.yaml: ${expected}`]);
  });

  it('a CA bundle with several certificates is taken', async () => {
    const bundle = file('bundle.pem', `${certs.ca.cert}\n${certs.server.cert}`);
    const loaded = parseConfig(configWith('  listen: 127.0.0.1:0', `  p: { type: grpc, address: "a:1", tls: { ca: "${bundle}" } }`), 'config.yaml', {});
    expect(held((await readConfigFiles(loaded)).pluginTls.get('p'))).toEqual({ ca: Buffer.from(`${certs.ca.cert}\n${certs.server.cert}`) });
  });

  it('a path that came from the environment is shown as written, never as its value', async () => {
    const lines = await problems(configWith('  tls: { cert: "${CERT_DIR}/cert.pem", key: "${KEY}" }'), { CERT_DIR: join(dir, 'secret-dir'), KEY: notPem });
    expect(lines).toEqual([
      'config.yaml: server.tls.cert: cannot read "${CERT_DIR}/cert.pem" (from the environment, not shown): no such file or directory (ENOENT)',
      'config.yaml: server.tls.key: "${KEY}" (from the environment, not shown) is not a PEM private key (without passphrase)',
    ]);
    expect(lines.join('\n')).not.toContain(dir);
  });

  it('names the files by YAML path when a renewal cannot be taken, a path from the environment as written', async () => {
    const renewing = join(dir, 'renewing');
    mkdirSync(renewing, { recursive: true });
    writeFileSync(join(renewing, 'tls.crt'), certs.server.cert);
    writeFileSync(join(renewing, 'tls.key'), certs.server.key);
    const loaded = parseConfig(configWith('  tls: { cert: "${TLS_DIR}/tls.crt", key: "${TLS_DIR}/tls.key", refresh: 5s }'), 'config.yaml', { TLS_DIR: renewing });
    const tls = (await readConfigFiles(loaded)).receiverTls!;
    const errors: string[] = [];
    tls.observe({ onError: (err) => errors.push(err.message) })();
    tls.observe({ onError: (err) => errors.push(err.message) });
    writeFileSync(join(renewing, 'tls.crt'), certs.client.cert);
    expect(await tls.refresh()).toBe(false);
    expect(errors).toEqual([expect.stringMatching(/^TLS files server\.tls\.cert "\$\{TLS_DIR\}\/tls\.crt" \(from the environment, not shown\), server\.tls\.key "\$\{TLS_DIR\}\/tls\.key" \(from the environment, not shown\): .*key values mismatch/)]);
    expect(errors.join('\n')).not.toContain(dir);
  });
});
