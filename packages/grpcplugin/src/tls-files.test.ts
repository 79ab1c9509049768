import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTestCertificates, rejectionOf } from '@hollowtrees/testkit';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { PluginClient } from './client.js';
import { Code, PluginError } from './errors.js';
import { pluginPairs, TRANSPORTS, testEvent as event } from './test-support/plugin-pair.js';
import { TlsFiles } from './tls-files.js';

const pairs = pluginPairs();
const dir = mkdtempSync(join(tmpdir(), 'tls-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Two unrelated CAs, each with its own server and client certificate: "renewing" swaps one for the other.
const first = makeTestCertificates();
const second = makeTestCertificates();
let written = 0;
/** Writes `pems` into fresh files and returns their paths. */
function files(pems: { cert?: string; key?: string; ca?: string }): { cert?: string; key?: string; ca?: string } {
  const at = join(dir, String(written++));
  return Object.fromEntries(Object.entries(pems).map(([field, pem]) => {
    writeFileSync(`${at}.${field}.pem`, pem);
    return [field, `${at}.${field}.pem`];
  }));
}
const overwrite = (path: string | undefined, pem: string): void => writeFileSync(path!, pem);
const rejection = (p: Promise<unknown>): Promise<PluginError> => rejectionOf(p, PluginError);
const SHORT_MS = 500;

describe.each(TRANSPORTS)('certificates renewed in place, over %s', (transport) => {
  const start = pairs.over(transport);

  it("a server serves its renewed certificate to new clients, and keeps the old one while a renewal cannot be read", async () => {
    const paths = files({ cert: first.server.cert, key: first.server.key });
    const errors: Error[] = [];
    const served = new TlsFiles(paths);
    pairs.defer(served.observe({ onError: (err) => errors.push(err) }));
    const { server } = await start({ handle: () => ({ attributes: { served: 'yes' } }) }, { tls: { files: served } });
    const clientTrusting = (ca: string): PluginClient => {
      const client = new PluginClient(`localhost:${server.port}`, { transport, tls: { ca } });
      pairs.defer(() => client.close());
      return client;
    };
    expect((await clientTrusting(first.ca.cert).handle(event, { flow: 'f' })).attributes).toEqual({ served: 'yes' });

    // A renewal caught half-written: the new certificate beside the old key.
    overwrite(paths.cert, second.server.cert);
    expect(await served.refresh()).toBe(false);
    expect(errors.map((e) => e.message)).toEqual([expect.stringMatching(/^TLS files cert ".*\.cert\.pem", key ".*\.key\.pem": .*key values mismatch/)]);
    expect((await clientTrusting(first.ca.cert).handle(event, { flow: 'f' })).attributes).toEqual({ served: 'yes' });

    overwrite(paths.key, second.server.key);
    expect(await served.refresh()).toBe(true);
    expect((await clientTrusting(second.ca.cert).handle(event, { flow: 'f' })).attributes).toEqual({ served: 'yes' });
    expect((await rejection(clientTrusting(first.ca.cert).handle(event, { flow: 'f', timeoutMs: SHORT_MS }))).code).toBe(Code.Unavailable);
  });

  it('a client presents its renewed certificate when it connects again, without being made anew', async () => {
    const { server } = await start({ handle: () => ({ attributes: { served: 'yes' } }) }, { tls: { files: new TlsFiles(files({ cert: second.server.cert, key: second.server.key, ca: second.ca.cert })) } });
    // The client's certificate is from a CA the server does not trust, until it is renewed.
    const paths = files({ ca: second.ca.cert, cert: first.client.cert, key: first.client.key });
    const presented = new TlsFiles(paths);
    const client = new PluginClient(`localhost:${server.port}`, { transport, tls: { files: presented }, reconnectBackoff: { initialMs: 20, maxMs: 50 } });
    pairs.defer(() => client.close());
    expect((await rejection(client.handle(event, { flow: 'f', timeoutMs: SHORT_MS }))).code).toBe(Code.Unavailable);

    overwrite(paths.cert, second.client.cert);
    overwrite(paths.key, second.client.key);
    expect(await presented.refresh()).toBe(true);
    await vi.waitFor(async () => expect((await client.handle(event, { flow: 'f', timeoutMs: SHORT_MS })).attributes).toEqual({ served: 'yes' }), { timeout: 10_000, interval: 50 });
  });
});

describe('TlsFiles', () => {
  it("without a CA file, a client trusts what a client without a CA trusts: Node's default CAs, NODE_EXTRA_CA_CERTS among them", async () => {
    // A private CA trusted through NODE_EXTRA_CA_CERTS, as containers often are; the plugin requires a client certificate of it.
    const { server } = await pairs.start({ handle: () => ({}) }, { tls: { cert: first.server.cert, key: first.server.key, ca: first.ca.cert } });
    const { ca, ...client } = files({ ca: first.ca.cert, cert: first.client.cert, key: first.client.key });
    // A process of its own: Node reads NODE_EXTRA_CA_CERTS when it starts. Prints how a call with PEM contents and one with files end.
    const script = `
      import { PluginClient, TlsFiles } from ${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)};
      const call = (tls) => new PluginClient('localhost:${server.port}', { tls }).handle({ id: '1', source: 's', specversion: '1.0', type: 't' }, { flow: 'f', timeoutMs: 5000 }).then(() => 'ok', (err) => err.message);
      const pem = await call({ cert: ${JSON.stringify(first.client.cert)}, key: ${JSON.stringify(first.client.key)} });
      const files = await call({ files: new TlsFiles(${JSON.stringify(client)}) });
      process.stdout.write(JSON.stringify({ pem, files }));
      process.exit(0);`;
    // Without grpc-js' own roots file, which would replace Node's CAs for a client made without a CA.
    const { GRPC_DEFAULT_SSL_ROOTS_FILE_PATH: _grpcRoots, ...env } = process.env;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env: { ...env, NODE_EXTRA_CA_CERTS: ca }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    await new Promise((resolve) => child.once('exit', resolve));
    expect(JSON.parse(out)).toEqual({ pem: 'ok', files: 'ok' });
  });

  it('reads the files again every refreshMs while a server or an observer uses them, and not once neither does', async () => {
    const paths = files({ cert: first.server.cert, key: first.server.key });
    const served = new TlsFiles(paths, { refreshMs: 20 });
    const { server } = await pairs.start({ handle: () => ({}) }, { tls: { files: served } });
    overwrite(paths.cert, second.server.cert);
    overwrite(paths.key, second.server.key);
    await vi.waitFor(() => expect(served.current.cert?.toString()).toBe(second.server.cert), { timeout: 5_000, interval: 20 });

    const changes = vi.fn();
    const stopObserving = served.observe({ onChange: changes });
    await server.close();
    overwrite(paths.cert, first.server.cert);
    overwrite(paths.key, first.server.key);
    await vi.waitFor(() => expect(changes).toHaveBeenCalledWith(expect.objectContaining({ cert: Buffer.from(first.server.cert) })), { timeout: 5_000, interval: 20 });

    stopObserving();
    // A read the timer began just before is let finish (it shares this one), so that it cannot see the files below.
    expect(await served.refresh()).toBe(false);
    overwrite(paths.cert, second.server.cert);
    overwrite(paths.key, second.server.key);
    await new Promise((r) => setTimeout(r, 200));
    expect(served.current.cert?.toString()).toBe(first.server.cert);
    expect(await served.refresh()).toBe(true);
    expect(served.current.cert?.toString()).toBe(second.server.cert);
  });

  it('a refresh never rejects, and tells every observer, though one of them throws', async () => {
    const paths = files({ cert: first.server.cert, key: first.server.key });
    const tls = new TlsFiles(paths);
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => void warnings.push(warning);
    process.on('warning', onWarning);
    const stops = [
      tls.observe({ onChange: () => { throw new Error('observer broken'); } }),
      tls.observe({ onError: () => { throw new Error('observer broken too'); } }),
    ];
    const later = vi.fn();
    stops.push(tls.observe({ onChange: later, onError: later }));
    try {
      overwrite(paths.cert, second.server.cert);
      // Rejected, the read every refreshMs (`void this.refresh()`) would be an unhandled rejection: the process would exit.
      expect(await tls.refresh()).toBe(false);
      overwrite(paths.key, second.server.key);
      expect(await tls.refresh()).toBe(true);
      expect(later).toHaveBeenCalledTimes(2);
      await vi.waitFor(() => expect(warnings.map((w) => w.message)).toEqual([expect.stringContaining('observer broken too'), expect.stringContaining('observer broken')]));
    } finally {
      process.off('warning', onWarning);
      for (const stop of stops) stop();
    }
  });

  it('names the files as it is told to', () => {
    const paths = files({ cert: first.server.cert, key: second.server.key });
    expect(() => new TlsFiles(paths, { labels: { cert: '--tls-cert', key: '--tls-key' } })).toThrow(/^TLS files --tls-cert, --tls-key: .*key values mismatch/);
    expect(() => new TlsFiles({ ca: join(dir, 'missing.pem') }, { labels: { ca: 'plugins.drain.tls.ca' } })).toThrow(/^TLS file plugins\.drain\.tls\.ca: cannot read it: ENOENT$/);
  });

  it('refuses, naming the file, what it cannot read or use when it is made', () => {
    const paths = files({ cert: first.server.cert, key: first.server.key, ca: 'not a certificate' });
    expect(() => new TlsFiles({ ...paths, cert: join(dir, 'missing.pem') })).toThrow(/^TLS file cert ".*missing\.pem": cannot read it: ENOENT$/);
    expect(() => new TlsFiles({ cert: paths.cert!, key: files({ key: second.server.key }).key! })).toThrow(/key values mismatch/);
    expect(() => new TlsFiles({ ca: paths.ca! })).toThrow(/^TLS file ca ".*\.ca\.pem": no PEM certificate in it$/);
    expect(() => new TlsFiles({ cert: paths.cert! })).toThrow('TLS files: cert and key must be given together');
    expect(() => new TlsFiles({})).toThrow('TLS files: give cert and key, or ca, or all three');
    expect(() => new TlsFiles({ ca: files({ ca: first.ca.cert }).ca! }, { refreshMs: 0 })).toThrow(/refreshMs must be a whole number of ms from 1/);
  });
});
