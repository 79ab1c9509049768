import { spawnSync } from 'node:child_process';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PluginClient } from '@hollowtrees/grpcplugin';
import { busyPort, makeTestCertificates, spawnCaptured, startAwsStandIn, startTcpRelay, tempDir, waitForOutput, runRefusing, usageRefusal, type Spawned } from '@hollowtrees/testkit';
import { afterEach, describe, expect, it, vi } from 'vitest';

// The built bin, as `npx hollowtrees-aws-spot` runs it (`pnpm test` builds first).
const CLI = new URL('../dist/cli.js', import.meta.url).pathname;
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** An HTTP server that answers 404 and counts what reaches it: the instance metadata service, as far as the SDK can tell. */
async function countingServer(): Promise<{ url: string; requests: string[] }> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((r) => server.close(r)));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, requests };
}

/** Runs the bin with `args` in a home without AWS files, no region in the environment, and `imds` as the metadata service. */
async function run(args: string[], imds: string, home?: string): Promise<Spawned> {
  const dir = await tempDir('aws-spot-cli');
  cleanups.push(dir.remove);
  const proc = spawnCaptured('hollowtrees-aws-spot', process.execPath, ['--no-warnings', CLI, '--port', '0', ...args], {
    HOME: home ?? dir.path,
    AWS_REGION: undefined,
    AWS_DEFAULT_REGION: undefined,
    AWS_PROFILE: undefined,
    AWS_CONFIG_FILE: join(home ?? dir.path, '.aws', 'config'),
    AWS_SHARED_CREDENTIALS_FILE: join(home ?? dir.path, '.aws', 'credentials'),
    AWS_EC2_METADATA_SERVICE_ENDPOINT: imds,
  });
  cleanups.push(() => proc.kill());
  return proc;
}

describe('hollowtrees-aws-spot', () => {
  it('--version, --help and a usage error load neither gRPC nor the AWS SDK: they answer at once', () => {
    const refusing = (...args: string[]) => runRefusing(['@grpc/grpc-js', '@aws-sdk/client-ec2', '@aws-sdk/client-auto-scaling'], CLI, args);
    expect(refusing('--version')).toMatchObject({ status: 0, stdout: '0.1.0\n', stderr: '' });
    expect(refusing('--help')).toMatchObject({ status: 0, stderr: '' });
    expect(refusing('--nope')).toMatchObject({ status: 2, stderr: expect.stringMatching(/^hollowtrees-aws-spot: Unknown option '--nope'/) });
    // The hook does refuse them where they are needed.
    expect(refusing('--port', '0').stderr).toContain(' was loaded');
  });

  it('a usage error names the argument and how to get help, on two lines of stderr, and exits 2, as every Hollowtrees bin answers one', () => {
    for (const [args, said] of [
      [['--nope'], "Unknown option '--nope'"],
      [['--pool-wait-timeout', '0s'], '--pool-wait-timeout must be a duration from 1s to 24h (e.g. 90s, 5m), got "0s"'],
      [['extra'], "Unexpected argument 'extra'. This command does not take positional arguments"],
    ] as const) {
      expect(spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 10_000 })).toMatchObject(usageRefusal('hollowtrees-aws-spot', said));
    }
  });

  it('exits 2 at start, saying so, when no region resolves, without asking the network', async () => {
    const imds = await countingServer();
    const proc = await run([], imds.url);
    expect(await proc.exited).toBe('code 2');
    expect(proc.output()).toBe('hollowtrees-aws-spot: no AWS region: pass --region, set AWS_REGION, or set region in the profile (~/.aws/config, AWS_PROFILE)');
    expect(imds.requests).toEqual([]);
  });

  it('a --region that is no region name is a usage error, answered before the AWS SDK loads', () => {
    for (const region of ['eu west 1', 'EU-WEST-1', 'us-east-1x!']) {
      const said = `--region must be an AWS region name (lowercase, e.g. eu-west-1 or us-gov-west-1; a zone such as eu-west-1a is no region), got "${region}"`;
      expect(runRefusing(['@aws-sdk/client-ec2', '@aws-sdk/client-auto-scaling', '@smithy/core/config'], CLI, ['--region', region])).toMatchObject(usageRefusal('hollowtrees-aws-spot', said));
    }
  });

  it('exits 2 at start, naming AWS_REGION, when it is no region name: the SDK took EU-WEST-1, signing every call for a region AWS does not know', async () => {
    const imds = await countingServer();
    const dir = await tempDir('aws-spot-env');
    cleanups.push(dir.remove);
    const proc = spawnCaptured('hollowtrees-aws-spot', process.execPath, ['--no-warnings', CLI, '--port', '0'], {
      HOME: dir.path,
      AWS_REGION: 'EU-WEST-1',
      AWS_PROFILE: undefined,
      AWS_CONFIG_FILE: join(dir.path, 'config'),
      AWS_SHARED_CREDENTIALS_FILE: join(dir.path, 'credentials'),
      AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url,
    });
    cleanups.push(() => proc.kill());
    expect(await proc.exited).toBe('code 2');
    expect(proc.output()).toBe(
      'hollowtrees-aws-spot: the region "EU-WEST-1" of AWS_REGION or the profile (~/.aws/config, AWS_PROFILE) is not an AWS region name (lowercase, e.g. eu-west-1 or us-gov-west-1; a zone such as eu-west-1a is no region): pass --region or correct it',
    );
  });

  it("exits 2 at start, naming where it came from, when the profile's region is no region name", async () => {
    const imds = await countingServer();
    const dir = await tempDir('aws-spot-home');
    cleanups.push(dir.remove);
    await mkdir(join(dir.path, '.aws'));
    await writeFile(join(dir.path, '.aws', 'config'), '[default]\nregion = eu west 1\n');
    const proc = await run([], imds.url, dir.path);
    expect(await proc.exited).toBe('code 2');
    expect(proc.output()).toBe(
      'hollowtrees-aws-spot: the region "eu west 1" of AWS_REGION or the profile (~/.aws/config, AWS_PROFILE) is not an AWS region name (lowercase, e.g. eu-west-1 or us-gov-west-1; a zone such as eu-west-1a is no region): pass --region or correct it',
    );
    expect(imds.requests).toEqual([]);
  });

  it("takes the profile's region, serves on 127.0.0.1 and logs in core's format on stdout", async () => {
    const imds = await countingServer();
    const dir = await tempDir('aws-spot-home');
    cleanups.push(dir.remove);
    const home = dir.path;
    await mkdir(join(home, '.aws'));
    await writeFile(join(home, '.aws', 'config'), '[default]\nregion = ap-south-1\n');
    const proc = await run([], imds.url, home);
    const serving = JSON.parse(await waitForOutput(proc, /hollowtrees-aws-spot serving/)) as Record<string, unknown>;
    expect(Object.keys(serving).slice(0, 3)).toEqual(['level', 'time', 'service']);
    expect(serving).toMatchObject({ level: 'info', service: 'hollowtrees-aws-spot', host: '127.0.0.1', region: 'ap-south-1', msg: 'hollowtrees-aws-spot serving' });
    expect(proc.output()).not.toMatch(/anyone who can reach the port/);
  });

  it('a --host this machine does not have, or that does not resolve, exits 2 naming it, as core does; a port in use exits 1; grpc-js logs nothing of its own', async () => {
    const imds = await countingServer();
    const busy = await busyPort();
    cleanups.push(() => busy.close());
    const { port } = busy;
    // Three starts side by side, each seconds on a loaded machine: hence the minute.
    const [notHere, unresolved, inUse] = await Promise.all([
      run(['--region', 'eu-west-1', '--host', '192.0.2.1'], imds.url),
      run(['--region', 'eu-west-1', '--host', 'no-such-host.invalid'], imds.url),
      run(['--region', 'eu-west-1', '--port', String(port)], imds.url),
    ]);
    expect([await notHere.exited, await unresolved.exited, await inUse.exited]).toEqual(['code 2', 'code 2', 'code 1']);
    expect(notHere.output()).toBe('hollowtrees-aws-spot: --host 192.0.2.1: no interface of this machine has that address');
    expect(unresolved.output()).toBe('hollowtrees-aws-spot: --host no-such-host.invalid: the host name does not resolve');
    expect(inUse.output()).toBe(`hollowtrees-aws-spot: cannot serve on 127.0.0.1:${port}: the port is already in use`);
  }, 60_000);

  it('a --host with a port in it, or a link-local IPv6 address without its interface, exits 2 saying what to pass instead', async () => {
    const imds = await countingServer();
    const [withPort, linkLocal] = await Promise.all([run(['--region', 'eu-west-1', '--host', '0.0.0.0:9001'], imds.url), run(['--region', 'eu-west-1', '--host', 'fe80::1234'], imds.url)]);
    expect([await withPort.exited, await linkLocal.exited]).toEqual(['code 2', 'code 2']);
    expect(withPort.output()).toBe('hollowtrees-aws-spot: --host 0.0.0.0:9001: a host has no port in it: pass --host 0.0.0.0 --port 9001');
    expect(linkLocal.output()).toBe('hollowtrees-aws-spot: --host fe80::1234: a link-local IPv6 address needs the interface it is on after a % (fe80::1234%<interface>), and no interface of this machine has it');
  }, 60_000);

  it('warns when told to serve every interface without mTLS', async () => {
    const proc = await run(['--region', 'eu-west-1', '--host', '0.0.0.0'], (await countingServer()).url);
    const warning = JSON.parse(await waitForOutput(proc, /anyone who can reach the port/)) as Record<string, unknown>;
    expect(warning).toMatchObject({ level: 'warn', service: 'hollowtrees-aws-spot', host: '0.0.0.0', msg: expect.stringMatching(/^serving on 0\.0\.0\.0:\d+ without TLS: anyone who can reach the port can make this plugin act/) });
  });

  it('a rolling update: a SIGTERM lets the replacement in flight finish while the next goes to the new process; each instance is replaced once', async () => {
    const aws = await startAwsStandIn();
    cleanups.push(() => aws.close());
    const [first, second] = [aws.ec2.addInstance({ launchTemplate: { id: 'lt-1', version: '1' } }), aws.ec2.addInstance({ launchTemplate: { id: 'lt-1', version: '1' } })];
    // The old process reaches AWS through a gate that holds its calls until the test opens it: its replacement stays in flight.
    let open!: () => void;
    const opened = new Promise<void>((resolve) => (open = resolve));
    let held = 0;
    const gate = createServer((req, res) => {
      held++;
      void opened.then(() => req.pipe(request(`${aws.url}${req.url}`, { method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode!, answer.headers);
        answer.pipe(res);
      })));
    });
    await new Promise<void>((resolve) => gate.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => gate.close(resolve)));
    const imds = (await countingServer()).url;
    const home = await tempDir('aws-spot-home');
    cleanups.push(home.remove);
    await mkdir(join(home.path, '.aws'));
    await writeFile(join(home.path, '.aws', 'credentials'), '[default]\naws_access_key_id = test\naws_secret_access_key = test\n');
    const [old, next] = await Promise.all([`http://127.0.0.1:${(gate.address() as AddressInfo).port}`, aws.url].map(async (endpoint) => {
      const proc = await run(['--region', 'us-east-1', '--endpoint', endpoint], imds, home.path);
      return { proc, port: (JSON.parse(await waitForOutput(proc, /hollowtrees-aws-spot serving/, 15_000)) as { port: number }).port };
    }));
    // The Service in front of the plugin's pods.
    const service = await startTcpRelay(old!.port);
    const client = new PluginClient(`127.0.0.1:${service.port}`);
    cleanups.push(() => service.close(), async () => client.close());
    const replace = (instanceId: string) => client.handle({ id: instanceId, source: 'test', specversion: '1.0', type: 't', data: { labels: { instance_id: instanceId } } }, { flow: 'spot', timeoutMs: 30_000 });

    const inFlight = replace(first.instanceId);
    await vi.waitFor(() => expect(held).toBeGreaterThan(0), { timeout: 15_000, interval: 20 });
    service.retarget(next!.port);
    old!.proc.child.kill('SIGTERM');
    expect(JSON.parse(await waitForOutput(old!.proc, /"msg":"stopping/))).toMatchObject({ shutdown_timeout_ms: 310_000 });
    expect((await replace(second.instanceId)).message).toMatch(new RegExp(`to replace ${second.instanceId}$`));
    open();
    expect((await inFlight).message).toMatch(new RegExp(`to replace ${first.instanceId}$`));
    expect(await old!.proc.exited).toBe('code 0');
    expect(old!.proc.output()).toMatch(/"msg":"stopped"/);
    expect(aws.callsTo('CreateFleet')).toHaveLength(2);
  }, 60_000);

  it('serves a certificate renewed in place from then on, read again every --tls-refresh, without a restart', async () => {
    const [first, renewed] = [makeTestCertificates(), makeTestCertificates()];
    const dir = await tempDir('aws-spot-tls');
    cleanups.push(dir.remove);
    const [cert, key] = [join(dir.path, 'tls.crt'), join(dir.path, 'tls.key')];
    await writeFile(cert, first.server.cert);
    await writeFile(key, first.server.key);
    const proc = await run(['--region', 'eu-west-1', '--tls-cert', cert, '--tls-key', key, '--tls-refresh', '1s'], (await countingServer()).url);
    const { port } = JSON.parse(await waitForOutput(proc, /hollowtrees-aws-spot serving/)) as { port: number };
    const healthTrusting = async (ca: string): Promise<string> => {
      const client = new PluginClient(`localhost:${port}`, { tls: { ca } });
      try {
        return await client.checkHealth({ timeoutMs: 2_000 });
      } finally {
        client.close();
      }
    };
    expect(await healthTrusting(first.ca.cert)).toBe('SERVING');

    await writeFile(cert, renewed.server.cert);
    await writeFile(key, renewed.server.key);
    expect(JSON.parse(await waitForOutput(proc, /TLS files read again/))).toMatchObject({ level: 'info', msg: 'TLS files read again: new connections get the renewed certificate' });
    expect(await healthTrusting(renewed.ca.cert)).toBe('SERVING');
    await expect(healthTrusting(first.ca.cert)).rejects.toThrow();
  });
});
