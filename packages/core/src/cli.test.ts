import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createServer } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasIpv6Loopback, makeTestCertificates, refusingImport, runRefusing, usageRefusal } from '@hollowtrees/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI_PATH as CLI, killAllCli, startCli as start } from '../test/support/cli-process.js';
import { canMountPrivateTmpfs, underPrivateTmpfs } from '../test/support/private-mount.js';

const EXAMPLE_CONFIG = new URL('../../../examples/config.yaml', import.meta.url).pathname;
const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 10_000 });
const tmp = mkdtempSync(join(tmpdir(), 'hollowtrees-cli-'));
const file = (name: string, text: string): string => {
  const path = join(tmp, name);
  writeFileSync(path, text);
  return path;
};

afterEach(killAllCli);

const alert = JSON.stringify([{ labels: { alertname: 'SpotInstanceTerminating', instance_id: 'i-0abc', instance_action: 'terminate' }, startsAt: '2026-11-25T10:00:00Z' }]);

describe('hollowtrees CLI', () => {
  it('--version and --help exit 0', () => {
    expect(run('--version')).toMatchObject({ status: 0, stdout: '0.1.0\n' });
    const help = run('--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('hollowtrees validate --config FILE');
  });

  it('--version, --help and a usage error load none of the server stack (gRPC, protobuf, zod, yaml, metrics): a third of the start-up', () => {
    const withHook = (...args: string[]) => runRefusing(['@grpc/grpc-js', '@bufbuild/protobuf', 'zod', 'yaml', 'prom-client'], CLI, args);
    expect(withHook('--version')).toMatchObject({ status: 0, stdout: '0.1.0\n', stderr: '' });
    expect(withHook('--help')).toMatchObject({ status: 0, stderr: '' });
    expect(withHook('--nope')).toMatchObject({ status: 2, stderr: "hollowtrees: Unknown option '--nope'\nRun 'hollowtrees --help' for usage.\n" });
    // The hook does refuse them where they are needed.
    expect(withHook('validate', '--config', EXAMPLE_CONFIG).stderr).toMatch(/(zod|yaml) was loaded/);
  });

  it('validate and explain load no gRPC, protobuf or metrics module: they only read files', () => {
    const withHook = (args: string[], input?: string) => runRefusing(['@grpc/grpc-js', '@bufbuild/protobuf', 'prom-client'], CLI, args, input === undefined ? {} : { input });
    expect(withHook(['validate', '--config', EXAMPLE_CONFIG])).toMatchObject({ status: 0, stderr: '' });
    expect(withHook(['explain', '--config', EXAMPLE_CONFIG], alert)).toMatchObject({ status: 0, stderr: '' });
    expect(withHook(['--config', EXAMPLE_CONFIG, '--listen', '127.0.0.1:0']).stderr).toContain('was loaded');
  });

  it('on a configuration of log plugins only, start-up loads no gRPC (a fifth of it) and serves', async () => {
    const withHook = start(['--listen', '127.0.0.1:0'], { env: { ...process.env, NODE_OPTIONS: `--import ${refusingImport(['@grpc/grpc-js', '@bufbuild/protobuf'])}` } });
    expect((await fetch(`${await withHook.url()}/-/ready`)).status).toBe(200);
    withHook.child.kill('SIGTERM');
    expect(await withHook.exited).toBe(0);
    // The hook does refuse gRPC where a plugin needs it.
    expect(runRefusing(['@grpc/grpc-js'], CLI, ['--config', EXAMPLE_CONFIG, '--listen', '127.0.0.1:0']).stdout).toContain('@grpc/grpc-js was loaded');
  });

  it('a usage error names the argument and how to get help, on two lines of stderr, and exits 2, as every Hollowtrees bin answers one', () => {
    const refused = (said: string) => usageRefusal('hollowtrees', said);
    expect(run('--nope')).toMatchObject(refused("Unknown option '--nope'"));
    expect(run('frobnicate')).toMatchObject(refused('unknown command "frobnicate"'));
    // As the other bins: an argument --version or --help would drop is refused, not ignored.
    expect(run('--version', 'extra')).toMatchObject(refused('unknown command "extra"'));
    expect(run('frobnicate', '--help')).toMatchObject(refused('unknown command "frobnicate"'));
    expect(run('validate')).toMatchObject(refused('validate needs --config FILE'));
  });

  it.each([
    ['validate', '--dry-run'],
    ['validate', '--listen'],
    ['explain', '--dry-run'],
    ['explain', '--listen'],
  ])('%s refuses %s, a flag it does not take, with exit 2 naming it, rather than ignoring it', (command, flag) => {
    const value = flag === '--listen' ? ['127.0.0.1:0'] : [];
    expect(run(command, '--config', EXAMPLE_CONFIG, flag, ...value, ...(command === 'explain' ? ['/dev/null'] : []))).toMatchObject({
      status: 2,
      stdout: '',
      stderr: `hollowtrees: ${command} does not take ${flag} (it takes --config FILE)\nRun 'hollowtrees --help' for usage.\n`,
    });
  });

  it('an empty --config (an unset variable in a unit file) is a usage error, not a run on the embedded default', () => {
    for (const args of [['--config', '', '--listen', '127.0.0.1:0'], ['--config=', '--listen', '127.0.0.1:0'], ['validate', '-c', '']]) {
      const result = run(...args);
      expect(result).toMatchObject({ status: 2, stdout: '' });
      expect(result.stderr).toMatch(/^hollowtrees: --config needs a value, got ""\n/);
    }
  });

  it('a malformed --listen is a usage error: exit 2 naming the value, before anything starts', () => {
    for (const listen of ['9099', 'localhost', '127.0.0.1:99999', '0.0.0.0:']) {
      expect(run('--listen', listen)).toMatchObject({
        status: 2,
        stdout: '',
        stderr: `hollowtrees: --listen ${JSON.stringify(listen)}: expected HOST:PORT with a port from 0 to 65535, e.g. 127.0.0.1:9092 (this machine only) or :9092 (every interface)\nRun 'hollowtrees --help' for usage.\n`,
      });
    }
  });

  it('server.listen that validate refuses, start-up refuses the same way (exit 2, one message)', () => {
    const bad = file('bad-listen.yaml', 'server: { listen: "127.0.0.1:99999" }\nflows:\n  f: { allowedEvents: [a.b], plugins: [log] }\n');
    const expected = `${bad}: server.listen: expected HOST:PORT with a port from 0 to 65535, e.g. 127.0.0.1:9092 (this machine only) or :9092 (every interface), got "127.0.0.1:99999"\n`;
    expect(run('validate', '--config', bad)).toMatchObject({ status: 2, stdout: '', stderr: expected });
    expect(run('--config', bad)).toMatchObject({ status: 2, stdout: '', stderr: expected });
  });

  it('a state.file that cannot be used is a configuration error naming state.file and why: exit 2, no stack', () => {
    const flows = 'flows:\n  f: { allowedEvents: [a.b], plugins: [log] }\n';
    const directory = mkdtempSync(join(tmpdir(), 'hollowtrees-state-dir-'));
    const isDirectory = file('state-is-dir.yaml', `state: { file: "${directory}" }\n${flows}`);
    expect(run('--config', isDirectory, '--listen', '127.0.0.1:0')).toMatchObject({
      status: 2,
      stdout: '',
      stderr: `${isDirectory}: state.file: cannot use "${directory}" for the run-state journal: it is a directory (EISDIR)\n`,
    });
    const underFile = file('state-under-file.yaml', `state: { file: "${isDirectory}/runs.jsonl" }\n${flows}`);
    expect(run('--config', underFile, '--listen', '127.0.0.1:0')).toMatchObject({
      status: 2,
      stdout: '',
      stderr: `${underFile}: state.file: cannot use "${isDirectory}/runs.jsonl" for the run-state journal: a part of its path is a file, not a directory (EEXIST)\n`,
    });
  });

  it.skipIf(!canMountPrivateTmpfs())('a state.file in a directory a read-only file system does not have is refused saying so, not as ENOENT', () => {
    const readOnly = mkdtempSync(join(tmpdir(), 'hollowtrees-read-only-'));
    const journal = join(readOnly, 'state', 'runs.jsonl');
    const config = file('state-read-only.yaml', `state: { file: "${journal}" }\nflows:\n  f: { allowedEvents: [a.b], plugins: [log] }\n`);
    const [command, ...wrap] = underPrivateTmpfs(readOnly, 'ro');
    expect(spawnSync(command!, [...wrap, process.execPath, CLI, '--config', config, '--listen', '127.0.0.1:0'], { encoding: 'utf8', timeout: 10_000 })).toMatchObject({
      status: 2,
      stdout: '',
      stderr: `${config}: state.file: cannot use "${journal}" for the run-state journal: the file system is read-only (EROFS)\n`,
    });
  });

  it('a state.file a later version wrote is refused naming state.file: exit 2, the file kept as it is (a rollback)', () => {
    const journal = join(mkdtempSync(join(tmpdir(), 'hollowtrees-state-')), 'runs.jsonl');
    writeFileSync(journal, `${JSON.stringify({ journal: 'hollowtrees-run-state', version: 7, records: 0 })}\n`);
    const config = file('state-later.yaml', `state: { file: "${journal}" }\nflows:\n  f: { allowedEvents: [a.b], plugins: [log] }\n`);
    expect(run('--config', config, '--listen', '127.0.0.1:0')).toMatchObject({
      status: 2,
      stdout: '',
      stderr: `${config}: state.file: cannot use "${journal}" for the run-state journal: it was written by a later Hollowtrees (journal format 7; this one reads format 6 and earlier): start that version again, or move the file away to start without its run state\n`,
    });
    expect(readFileSync(journal, 'utf8')).toBe(`${JSON.stringify({ journal: 'hollowtrees-run-state', version: 7, records: 0 })}\n`);
  });

  it('an address this machine does not have is a configuration error: exit 2 naming server.listen or --listen', () => {
    // 192.0.2.1 is TEST-NET-1 (RFC 5737): on no machine's interfaces.
    const elsewhere = file('elsewhere.yaml', 'server: { listen: "192.0.2.1:9099" }\nflows:\n  f: { allowedEvents: [a.b], plugins: [log] }\n');
    expect(run('--config', elsewhere)).toMatchObject({ status: 2, stderr: `${elsewhere}: server.listen: "192.0.2.1:9099": no interface of this machine has that address\n` });
    expect(run('--listen', '192.0.2.1:9099')).toMatchObject({ status: 2, stderr: '--listen: "192.0.2.1:9099": no interface of this machine has that address\n' });
  });

  it('a link-local IPv6 --listen takes the interface its refusal says to add after a % ([fe80::1%eth0]:PORT)', async (ctx) => {
    const own = Object.entries(networkInterfaces()).flatMap(([name, infos]) => (infos ?? []).filter((i) => i.family === 'IPv6' && /^fe80:/i.test(i.address)).map((i) => ({ name, address: i.address })))[0];
    if (!own) return ctx.skip();
    expect(run('--listen', `[${own.address}]:0`)).toMatchObject({ status: 2, stderr: `--listen: "[${own.address}]:0": a link-local IPv6 address needs the interface it is on after a %: ${own.address}%${own.name}\n` });
    // Before: refused as "expected HOST:PORT ..." (exit 2): the address it was told to give could not be given.
    const scoped = start(['--listen', `[${own.address}%${own.name}]:0`]);
    expect(String((await scoped.waitFor((l) => l.msg === 'hollowtrees started')).listen)).toMatch(new RegExp(`^\\[${own.address}(%${own.name})?\\]:\\d+$`));
  });

  it(':PORT listens on every interface, IPv6 ones too where the machine has IPv6, as in Go; 0.0.0.0:PORT on the IPv4 ones', async () => {
    const everywhere = start(['--listen', ':0']);
    const listen = String((await everywhere.waitFor((l) => l.msg === 'hollowtrees started')).listen);
    expect(listen).toMatch((await hasIpv6Loopback()) ? /^\[::\]:\d+$/ : /^0\.0\.0\.0:\d+$/);
    // Reached over IPv4 as well: one socket for both.
    expect((await fetch(`http://127.0.0.1:${listen.split(':').at(-1)}/-/ready`)).status).toBe(200);
    const ipv4 = start(['--listen', '0.0.0.0:0']);
    expect((await ipv4.waitFor((l) => l.msg === 'hollowtrees started')).listen).toMatch(/^0\.0\.0\.0:\d+$/);
  });

  it('explain reads an alert from stdin or a file and prints what each flow of the config would do; bad input exits 2', () => {
    const input = JSON.stringify({ labels: { alertname: 'SpotInstanceTerminating', instance_id: 'i-0abc', instance_action: 'reboot' }, startsAt: '2026-11-25T10:00:00Z' });
    const viaStdin = spawnSync(process.execPath, [CLI, 'explain', '--config', EXAMPLE_CONFIG], { encoding: 'utf8', timeout: 10_000, input });
    expect(viaStdin.status).toBe(0);
    expect(viaStdin.stdout.split('\n').slice(1, 7)).toEqual([
      '  spot-replace: not taken: instance_action is "reboot", expected one of [terminate, stop, hibernate]',
      '  spot-drain: not taken: instance_action is "reboot", expected one of [terminate, stop, hibernate]',
      '  spot-rebalance: not taken: type is "prometheus.server.alert.SpotInstanceTerminating", expected one of allowedEvents [prometheus.server.alert.SpotRebalanceRecommended]',
      '  spot-price-surge: not taken: type is "prometheus.server.alert.SpotInstanceTerminating", expected one of allowedEvents [aws.ec2.spot.price-surge, prometheus.server.alert.SpotPriceSurge, hollowtrees.node.aws.rebalance-recommendation, aws.ec2.spot.rebalance-recommendation]',
      '  spot-price-surge-resolved: not taken: type is "prometheus.server.alert.SpotInstanceTerminating", expected one of allowedEvents [aws.ec2.spot.price-surge.resolved, prometheus.server.alert.SpotPriceSurge.resolved]',
      '  resolved: not taken: type is "prometheus.server.alert.SpotInstanceTerminating", expected one of allowedEvents [prometheus.server.alert.*.resolved]',
    ]);
    const viaFile = run('explain', '--config', EXAMPLE_CONFIG, file('alert.json', alert));
    expect(viaFile.status).toBe(0);
    expect(viaFile.stdout).toContain('  spot-replace: runs, group spot-replace:{instance_id="i-0abc"}, plugins aws-spot\n');
    expect(viaFile.stdout).toContain('  spot-drain: runs, group spot-drain:{instance_id="i-0abc"}, plugins k8s-drain → aws-spot → log\n');
    expect(run('explain', '--config', EXAMPLE_CONFIG, file('bad.json', '[{"labels": {}}]'))).toMatchObject({ status: 2, stdout: '', stderr: expect.stringContaining(`hollowtrees explain: ${join(tmp, 'bad.json')}: not a CloudEvent`) });
    expect(run('explain', file('x.json', alert))).toMatchObject({ status: 2, stderr: "hollowtrees: explain needs --config FILE\nRun 'hollowtrees --help' for usage.\n" });
    expect(run('explain', '--config', EXAMPLE_CONFIG, join(tmp, 'missing.json'))).toMatchObject({
      status: 2,
      stderr: `hollowtrees explain: ${join(tmp, 'missing.json')}: cannot read: no such file or directory (ENOENT)\n`,
    });
    // A batch the receiver takes in part: the valid alert explained, the refused one named, and exit 2.
    const mixed = run('explain', '--config', EXAMPLE_CONFIG, file('mixed.json', `[${alert.slice(1, -1)}, {"labels": {}}]`));
    expect(mixed).toMatchObject({ status: 2, stderr: `hollowtrees explain: ${join(tmp, 'mixed.json')}: the receiver would refuse alerts[1].labels.alertname: required: labels.alertname (1 of 2 alerts; the others are explained)\n` });
    expect(mixed.stdout).toContain('  spot-drain: runs, group spot-drain:{instance_id="i-0abc"}, plugins k8s-drain → aws-spot → log\n');
  });

  it('validate accepts the example SQS config, and names the queue URL it lacks', () => {
    const sqsConfig = new URL('../../../examples/config-sqs.yaml', import.meta.url).pathname;
    const validate = (env: NodeJS.ProcessEnv) => spawnSync(process.execPath, [CLI, 'validate', '--config', sqsConfig], { encoding: 'utf8', timeout: 10_000, env });
    expect(validate({ ...process.env, SQS_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/hollowtrees-notices' })).toMatchObject({
      status: 0,
      stdout: `${sqsConfig}: valid (3 flows: spot-termination, scheduled-change, spot-rebalance)\n`,
    });
    const { SQS_QUEUE_URL: _unset, ...withoutUrl } = process.env;
    expect(validate(withoutUrl)).toMatchObject({ status: 2, stderr: expect.stringContaining('sources.sqs[0].url') as string });
  });

  it('validate accepts the example config and exits 0', () => {
    expect(run('validate', '--config', EXAMPLE_CONFIG)).toMatchObject({ status: 0, stdout: `${EXAMPLE_CONFIG}: valid (6 flows: spot-replace, spot-drain, spot-rebalance, spot-price-surge, spot-price-surge-resolved, resolved)\n` });
  });

  it('validate names the file, the path and the expectation, and exits 2', () => {
    const bad = file('bad.yaml', 'flows:\n  spot:\n    allowedEvents: [x]\n    plugins: [k8s-drian]\n');
    expect(run('validate', '--config', bad)).toMatchObject({ status: 2, stderr: `${bad}: flows.spot.plugins[0]: unknown plugin "k8s-drian" (known: log)\n` });
    expect(run('validate', '--config', join(tmp, 'missing.yaml'))).toMatchObject({ status: 2, stderr: `${join(tmp, 'missing.yaml')}: cannot read file: no such file or directory (ENOENT)\n` });
    expect(run('--config', bad).status).toBe(2);
  });

  it('validate refuses an alias of no anchor and an alias bomb with exit 2, instead of a crash or a hang', () => {
    const flows = 'flows:\n  f: { allowedEvents: [a.b], plugins: [log] }\n';
    const noAnchor = file('no-anchor.yaml', `${flows}  g: { allowedEvents: [a.b], plugins: [*nope] }\n`);
    expect(run('validate', '--config', noAnchor)).toMatchObject({ status: 2, stdout: '', stderr: `${noAnchor}: line 3, column 40: Unresolved alias (the anchor must be set before the alias): nope\n` });
    // Nine aliases of nine aliases, ten deep: 9^10 values once expanded.
    const levels = 'abcdefghij'.split('');
    const bomb = file('bomb.yaml', `${levels.map((name, i) => `${name}: &${name} [${Array(9).fill(i === 0 ? 'x' : `*${levels[i - 1]}`).join(', ')}]`).join('\n')}\n${flows}`);
    // SIGKILL when it hangs: a process stuck expanding it does not die of SIGTERM either.
    const refused = spawnSync(process.execPath, [CLI, 'validate', '--config', bomb], { encoding: 'utf8', timeout: 10_000, killSignal: 'SIGKILL' });
    expect(refused).toMatchObject({ status: 2, stdout: '' });
    expect(refused.stderr).toMatch(/^.*bomb\.yaml: Excessive alias count/);
  });

  it('validate checks every file start-up reads (missing, not PEM, not a pair): both exit 2 with the same errors', () => {
    const certs = makeTestCertificates();
    const notPem = file('not.pem', 'not PEM\n');
    const config = file(
      'files.yaml',
      `server:\n  tls: { cert: "${file('cert.pem', certs.server.cert)}", key: "${file('key.pem', certs.client.key)}" }\n  auth: { bearerTokenFile: "${join(tmp, 'no-token')}" }\nplugins:\n  p: { type: grpc, address: "a:1", tls: { ca: "${notPem}" } }\nflows:\n  f: { allowedEvents: [a.b], plugins: [p] }\n`,
    );
    const expected = [
      `${config}: server.tls.key: "${join(tmp, 'key.pem')}" is not the key of the certificate in server.tls.cert`,
      `${config}: server.auth.bearerTokenFile: cannot read "${join(tmp, 'no-token')}": no such file or directory (ENOENT)`,
      `${config}: plugins.p.tls.ca: "${notPem}" is not a PEM certificate bundle`,
    ].join('\n');
    expect(run('validate', '--config', config)).toMatchObject({ status: 2, stdout: '', stderr: `${expected}\n` });
    expect(run('--config', config, '--listen', '127.0.0.1:0')).toMatchObject({ status: 2, stdout: '', stderr: `${expected}\n` });
  });

  it('validate checks the state kubeconfig as start-up does: one that is no kubeconfig exits 2 in both, naming it', () => {
    const kubeconfig = file('kubeconfig', 'apiVersion: v1\nkind: Config\nclusters: []\n');
    const config = file('kube-state.yaml', `state:\n  backend: kubernetes\n  kubernetes: { namespace: ops, kubeconfig: "${kubeconfig}" }\nflows:\n  f: { allowedEvents: [a.b], plugins: [log] }\n`);
    const expected = `${config}: state.kubernetes.kubeconfig: "${kubeconfig}" is not a kubeconfig with a current cluster\n`;
    expect(run('validate', '--config', config)).toMatchObject({ status: 2, stdout: '', stderr: expected });
    expect(run('--config', config, '--listen', '127.0.0.1:0')).toMatchObject({ status: 2, stdout: '', stderr: expected });
  });

  it('loads @kubernetes/client-node (70 MiB resident) only for a kubernetes state backend with a kubeconfig: validate and start-up without one never do', () => {
    const withHook = (...args: string[]) => runRefusing(['@kubernetes/client-node'], CLI, args);
    expect(withHook('validate', '--config', EXAMPLE_CONFIG)).toMatchObject({ status: 0, stderr: '' });
    const kubeconfig = file('kubeconfig-lazy', 'apiVersion: v1\nkind: Config\nclusters: [{ name: c, cluster: { server: "https://127.0.0.1:1" } }]\ncontexts: [{ name: x, context: { cluster: c, user: u } }]\nusers: [{ name: u, user: { token: t } }]\ncurrent-context: x\n');
    const config = file('kube-lazy.yaml', `state:\n  backend: kubernetes\n  kubernetes: { namespace: ops, kubeconfig: "${kubeconfig}" }\nflows:\n  f: { allowedEvents: [a.b], plugins: [log] }\n`);
    expect(run('validate', '--config', config)).toMatchObject({ status: 0 });
    // The hook does refuse it where it is needed.
    expect(withHook('validate', '--config', config).stderr).toContain('@kubernetes/client-node was loaded');
  });

  it('without a config runs on the embedded default, says so, logs an alert through the log plugin, and exits 0 on SIGTERM', async () => {
    const core = start(['--listen', '127.0.0.1:0']);
    expect(await core.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('no --config given'))).toBeDefined();
    const started = await core.waitFor((l) => l.msg === 'hollowtrees started');
    const res = await fetch(`http://${started.listen as string}/api/v2/alerts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: alert });
    expect(res.status).toBe(200);
    const logged = await core.waitFor((l) => l.plugin === 'log');
    expect(logged).toMatchObject({ flow: 'demo', event: { type: 'prometheus.server.alert.SpotInstanceTerminating', data: { labels: { instance_id: 'i-0abc' } } } });
    core.child.kill('SIGTERM');
    expect(await core.exited).toBe(0);
  });

  it('--dry-run runs the flows and logs what each plugin would get without calling it', async () => {
    const config = file('dry.yaml', `plugins:\n  drain: { type: grpc, address: "127.0.0.1:1" }\nflows:\n  spot:\n    allowedEvents: [prometheus.server.alert.*]\n    plugins: [drain]\n`);
    const core = start(['--config', config, '--dry-run', '--listen', '127.0.0.1:0']);
    const started = await core.waitFor((l) => l.msg === 'hollowtrees started');
    expect(started.dryRun).toBe(true);
    await fetch(`http://${started.listen as string}/api/v2/alerts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: alert });
    expect(await core.waitFor((l) => l.msg === 'dry run: would call plugin drain')).toMatchObject({ plugin: 'drain', event: { data: { labels: { instance_id: 'i-0abc' } } } });
    expect(await core.waitFor((l) => l.msg === 'flow run succeeded')).toBeDefined();
  });

  it('exits promptly after "hollowtrees stopped", also when a run was cut short on a plugin that never answered', async () => {
    // The unreachable plugin leaves grpc-js' waitForReady deadline timer (the plugin's 60 s timeout) running after close.
    const config = file('stuck.yaml', `server: { shutdownGracePeriod: 200ms }\nplugins:\n  drain: { type: grpc, address: "127.0.0.1:1", timeout: 60s }\nflows:\n  spot:\n    allowedEvents: [prometheus.server.alert.*]\n    plugins: [drain]\n`);
    const core = start(['--config', config, '--listen', '127.0.0.1:0']);
    const res = await fetch(`${await core.url()}/api/v2/alerts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: alert });
    expect(res.status).toBe(200);
    core.child.kill('SIGTERM');
    await core.waitFor((l) => l.msg === 'hollowtrees stopped');
    const stoppedAt = Date.now();
    expect(await core.exited).toBe(0);
    // Generous bound for a loaded machine; what it guards against is the plugin's whole timeout.
    expect(Date.now() - stoppedAt).toBeLessThan(5_000);
    expect(core.lines.at(-1)?.msg).toBe('hollowtrees stopped');
  });

  it('SIGTERM while starting is not lost: core finishes starting, then shuts down gracefully and exits 0', async () => {
    // Start-up reads the bearer token from a FIFO, so it waits there until the test writes it; the test's open for
    // writing returns once core has opened it for reading. Then it opens its journal, as a start does that waits on
    // a state file's lock or reads a long journal: the signal is handled meanwhile.
    const fifo = join(tmp, 'token-fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const config = file('starting.yaml', `server:\n  listen: 127.0.0.1:0\n  auth: { bearerTokenFile: "${fifo}" }\nstate: { file: "${join(tmp, 'starting', 'runs.jsonl')}" }\nflows:\n  spot:\n    allowedEvents: [prometheus.server.alert.*]\n    plugins: [log]\n`);
    const core = start(['--config', config]);
    const writer = await open(fifo, 'w');
    core.child.kill('SIGTERM');
    await writer.writeFile('token');
    await writer.close();
    expect(await core.exited).toBe(0);
    expect(core.lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['hollowtrees started', 'shutting down', 'hollowtrees stopped']));
    expect(core.lines.find((l) => l.msg === 'shutting down')).toMatchObject({ signal: 'SIGTERM' });
  });

  it('a port in use is a runtime failure: exit 1 with the port named', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const core = start(['--listen', `127.0.0.1:${port}`]);
      expect(await core.exited).toBe(1);
      // Said once: the message, without an err object repeating it with a stack.
      expect(core.lines.filter((l) => l.level === 'fatal')).toEqual([{ level: 'fatal', time: expect.any(String), service: 'hollowtrees', msg: `cannot listen on 127.0.0.1:${port}: the port is already in use` }]);
    } finally {
      blocker.close();
    }
  });
});
