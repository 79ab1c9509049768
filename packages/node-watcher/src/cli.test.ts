import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { busyPort, resolveHook, spawnCaptured, startImdsStandIn, waitForOutput, runRefusing, usageRefusal, type Spawned } from '@hollowtrees/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanups, startCore, startRecordingPlugin, until } from './test-support/watch-harness.js';

// The built bin, as `npx hollowtrees-node-watcher` runs it (`pnpm test` builds first).
const CLI = new URL('../dist/cli.js', import.meta.url).pathname;
const cleanups = new Cleanups();
afterEach(() => cleanups.run());

function run(args: string[], env: Record<string, string | undefined> = {}): Spawned {
  return cleanups.add(spawnCaptured('hollowtrees-node-watcher', process.execPath, [CLI, ...args], { HOLLOWTREES_CORE_URL: undefined, NODE_NAME: undefined, ...env }), (p) => p.kill());
}

describe('hollowtrees-node-watcher', () => {
  it('--version, --help and a usage error load neither gRPC nor the metrics: they answer at once', () => {
    const refusing = (...args: string[]) => runRefusing(['@grpc/grpc-js', 'prom-client'], CLI, args);
    expect(refusing('--version')).toMatchObject({ status: 0, stdout: '0.1.0\n', stderr: '' });
    expect(refusing('--help')).toMatchObject({ status: 0, stderr: '' });
    expect(refusing('--nope')).toMatchObject({ status: 2, stderr: expect.stringMatching(/^hollowtrees-node-watcher: Unknown option '--nope'/) });
    // The hook does refuse them where they are needed.
    expect(refusing('--once', '--core-url', 'http://127.0.0.1:1', '--cloud', 'aws', '--metadata-url', 'http://127.0.0.1:1').stderr).toContain(' was loaded');
  });

  it('--help lists every flag with its default', async () => {
    const proc = run(['--help']);
    expect(await proc.exited).toBe('code 0');
    const help = proc.output();
    for (const flag of ['--core-url', '--token-file', '--basic-auth-file', '--ca-file', '--cloud', '--metadata-url', '--poll-interval', '--azure-event-types', '--azure-approve', '--listen', '--stop-grace', '--once', '--dry-run', '--log-level', '--version', '--help']) expect(help).toContain(flag);
    expect(help).toContain('default 127.0.0.1:9102');
    expect(help).toContain('default 2s on AWS');
    expect(help).toContain('NODE_NAME');
  });

  it.each(['--version', '-v'])('%s prints only the package version, as the other bins do', async (flag) => {
    const proc = run([flag]);
    expect(await proc.exited).toBe('code 0');
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(proc.output()).toBe(version);
  });

  it('a usage error names the argument and how to get help, on two lines of stderr, and exits 2, as every Hollowtrees bin answers one', () => {
    for (const [args, said] of [
      [['--core-url', 'http://core:9092', '--bogus'], "Unknown option '--bogus'"],
      [['--dry-run', '--poll-interval', 'soon'], '--poll-interval must be a duration from 10ms to 1h such as 2s or 500ms, got "soon"'],
      [['extra'], "Unexpected argument 'extra'. This command does not take positional arguments"],
    ] as const) {
      expect(spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 10_000, env: { ...process.env, HOLLOWTREES_CORE_URL: '' } })).toMatchObject(usageRefusal('hollowtrees-node-watcher', said));
    }
  });

  it('a --listen address already in use exits 1 naming --listen and the address, without a stack trace', async () => {
    const busy = await busyPort();
    cleanups.add(busy, (b) => b.close());
    const listen = `127.0.0.1:${busy.port}`;
    const proc = run(['--dry-run', '--cloud', 'aws', '--metadata-url', 'http://127.0.0.1:1', '--listen', listen]);
    expect(await proc.exited).toBe('code 1');
    expect(proc.output()).toBe(`hollowtrees-node-watcher: --listen ${listen}: the port is already in use`);
  });

  it('a --listen host this machine does not have, or that does not resolve, exits 2 naming it, as core does: the flag must change', async () => {
    const flags = ['--dry-run', '--cloud', 'aws', '--metadata-url', 'http://127.0.0.1:1', '--listen'];
    const [notHere, unresolved] = [run([...flags, '10.254.253.1:9102']), run([...flags, 'nosuchhost.invalid:9102'])];
    expect([await notHere.exited, await unresolved.exited]).toEqual(['code 2', 'code 2']);
    expect(notHere.output()).toBe('hollowtrees-node-watcher: --listen 10.254.253.1:9102: no interface of this machine has that address');
    expect(unresolved.output()).toBe('hollowtrees-node-watcher: --listen nosuchhost.invalid:9102: the host name does not resolve');
  });

  it('--once --dry-run logs the event it would send and exits 0', async () => {
    const imds = cleanups.add(await startImdsStandIn(), (s) => s.close());
    imds.interruptSpot({ time: '2026-11-30T00:02:00Z' });
    const proc = run(['--once', '--dry-run', '--cloud', 'aws', '--metadata-url', imds.url], { NODE_NAME: 'ip-10-0-1-23' });
    expect(await proc.exited).toBe('code 0');
    const line = proc.output().split('\n').map((l) => (l.startsWith('{') ? (JSON.parse(l) as Record<string, unknown>) : {})).find((l) => l.event !== undefined);
    expect(line).toMatchObject({ msg: 'notice seen (dry run: not sent)', event: { type: 'hollowtrees.node.aws.spot-interruption', data: { labels: { node: 'ip-10-0-1-23', instance_action: 'terminate' } } } });
  });

  it('--metadata-url may end in a slash, as a base URL often does: the cloud is still detected and read', async () => {
    const imds = cleanups.add(await startImdsStandIn(), (s) => s.close());
    imds.interruptSpot({ time: '2026-11-30T00:02:00Z' });
    const proc = run(['--once', '--dry-run', '--metadata-url', `${imds.url}/`]);
    expect(await proc.exited).toBe('code 0');
    expect(proc.output()).toContain('"type":"hollowtrees.node.aws.spot-interruption"');
    expect(imds.calls.map((c) => c.path)).not.toContainEqual(expect.stringMatching(/^\/\//));
  });

  it('--once sends what it finds to core (HOLLOWTREES_CORE_URL) and exits 0 once core accepted it', async () => {
    const plugin = cleanups.add(await startRecordingPlugin(), (p) => p.close());
    const core = cleanups.add(await startCore(plugin.address), (c) => c.close());
    const imds = cleanups.add(await startImdsStandIn(), (s) => s.close());
    imds.recommendRebalance('2026-11-30T00:00:00Z');
    const proc = run(['--once', '--metadata-url', imds.url], { HOLLOWTREES_CORE_URL: core.url });
    expect(await proc.exited).toBe('code 0');
    await until('the event at the plugin', () => plugin.events.length === 1);
    expect(plugin.events[0]!.type).toBe('hollowtrees.node.aws.rebalance-recommendation');
  });

  it('serves /healthz and /metrics, and exits 0 on SIGTERM', async () => {
    const imds = cleanups.add(await startImdsStandIn(), (s) => s.close());
    const proc = run(['--dry-run', '--cloud', 'aws', '--metadata-url', imds.url, '--listen', '127.0.0.1:0', '--poll-interval', '50ms']);
    const started = await waitForOutput(proc, /"health_port":(\d+)/);
    const port = /"health_port":(\d+)/.exec(started)![1];
    await until('a poll counted', async () => /hollowtrees_node_watcher_polls_total\{cloud="aws"\} [1-9]/.test(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()));
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', cloud: 'aws', instance_id: 'i-0abc123def4567890' });
    proc.child.kill('SIGTERM');
    expect(await proc.exited).toBe('code 0');
  });

  it('--once stopped (SIGTERM) before core accepted what it found exits 1, saying so, not 0 as if it had been delivered', async () => {
    // A core that takes the notice's request and never answers it.
    const held: IncomingMessage[] = [];
    const core = createServer((req) => void held.push(req));
    await new Promise<void>((resolve) => core.listen(0, '127.0.0.1', resolve));
    cleanups.add(core, (c) => {
      c.closeAllConnections();
      return new Promise((resolve) => c.close(resolve));
    });
    const imds = cleanups.add(await startImdsStandIn(), (s) => s.close());
    imds.interruptSpot({ time: '2026-11-30T00:02:00Z' });
    const proc = run(['--once', '--cloud', 'aws', '--metadata-url', imds.url, '--core-url', `http://127.0.0.1:${(core.address() as AddressInfo).port}`]);
    await until('the notice sent to core', () => held.length === 1);
    proc.child.kill('SIGTERM');
    expect(await proc.exited).toBe('code 1');
    expect(proc.output()).toContain('stopped before core accepted');
  });

  it('--once stopped (SIGTERM) while it still loads its watching code exits 1, not the 0 of a watcher stopped while starting: it checked nothing', () => {
    // Stopped as it resolves run-watcher.js, whose import is held a while: the signal lands mid-import.
    const register = resolveHook(`if (specifier.endsWith('/run-watcher.js')) {\n  process.kill(process.pid, 'SIGTERM');\n  await new Promise((r) => setTimeout(r, 1000));\n}\nreturn next(specifier, context);`);
    const result = spawnSync(process.execPath, ['--import', register, CLI, '--once', '--cloud', 'aws', '--metadata-url', 'http://127.0.0.1:1', '--core-url', 'http://127.0.0.1:1'], { encoding: 'utf8', timeout: 20_000 });
    expect({ status: result.status, signal: result.signal }).toEqual({ status: 1, signal: null });
    expect(result.stderr + result.stdout).toContain('stopped before core accepted');
  });
});
