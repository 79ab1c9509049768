import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from './config-error.js';
import { defaultConfig } from './default-config.js';
import { loadConfigFile, parseConfig } from './load-config.js';
import { sqsQueueName } from './schema.js';

const flowYaml = (extra = '', plugins = '[log]') => `
flows:
  spot:
    allowedEvents: [prometheus.server.alert.SpotTerminationNotice]
    plugins: ${plugins}
${extra}`;

function problem(yaml: string, env: NodeJS.ProcessEnv = {}): string {
  try {
    parseConfig(yaml, 'config.yaml', env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).message;
  }
  throw new Error('expected a ConfigError');
}

describe('parseConfig', () => {
  it('fills in defaults and turns durations into milliseconds', () => {
    const { config } = parseConfig(
      `
plugins:
  k8s-drain: { type: grpc, address: 127.0.0.1:9000, timeout: 1m30s }
flows:
  spot:
    allowedEvents: [prometheus.server.alert.*]
    groupBy: [instance_id]
    cooldown: 5m30s
    plugins: [k8s-drain, log]
`,
      'config.yaml',
    );
    expect(config.server).toEqual({
      listen: '127.0.0.1:9092',
      shutdownGracePeriod: 30_000,
      limits: { maxBodyBytes: 1_048_576, maxAlertsPerRequest: 10_000, maxLabelsPerAlert: 128, maxLabelLength: 4_096, maxConcurrentRequests: 1_024 },
      timeouts: { headers: 10_000, body: 30_000, idle: 60_000 },
    });
    expect(config.plugins['k8s-drain']).toMatchObject({ type: 'grpc', timeout: 90_000, retry: { attempts: 3, initialBackoff: 200, maxBackoff: 5_000 } });
    expect(config.flows.spot).toMatchObject({ cooldown: 330_000, groupBy: ['instance_id'], filters: {}, concurrency: 1_000, queueSize: 10_000 });
  });

  it('interpolates ${ENV} and ${ENV:-default}', () => {
    const { config } = parseConfig(
      `server: { listen: "\${HOST:-0.0.0.0}:\${PORT}" }\n${flowYaml()}`,
      'config.yaml',
      { PORT: '9999' },
    );
    expect(config.server.listen).toBe('0.0.0.0:9999');
  });

  it('interpolates after parsing, so a value is loaded verbatim and cannot change the structure', () => {
    const auth = (token: string) =>
      parseConfig(`server:\n  auth:\n    bearerToken: \${TOKEN}\n${flowYaml()}`, 'config.yaml', { TOKEN: token }).config.server.auth;
    for (const token of ['Zk9 #longsecretpart', '*notAnAlias', '&anchor', 'say "hi"\nflows: {}', "it's: [a, b]", '  spaced  ', '${OTHER}', '$$'] as const) {
      expect(auth(token)).toMatchObject({ bearerToken: token });
    }
  });

  it('keeps $$ as a literal $ ($${T} is the text ${T}), also inside quoted and block scalars, and ignores comments', () => {
    const { config } = parseConfig(
      `# \${NOT_SET} in a comment is not interpolated\nserver:\n  auth:\n    bearerToken: |-\n      a$$b \${T}\n    basic: { username: "u\${T}$\${T}", password: 'p$$' }\n${flowYaml()}`,
      'config.yaml',
      { T: 'x#y' },
    );
    expect(config.server.auth).toMatchObject({ bearerToken: 'a$b x#y', basic: { username: 'ux#y${T}', password: 'p$' } });
  });

  it('leaves mapping keys as written', () => {
    const { config } = parseConfig(`${flowYaml().replace('spot:', '"\${NAME}":')}`, 'config.yaml', { NAME: 'renamed' });
    expect(Object.keys(config.flows)).toEqual(['${NAME}']);
  });

  it('does not re-type a value: numbers cannot come from the environment', () => {
    const message = problem(flowYaml().replace('plugins: [log]', 'plugins: [log]\n    concurrency: ${N}'), { N: '5' });
    expect(message).toBe('config.yaml: flows.spot.concurrency: Invalid input: expected number, received string');
  });

  it('a ${ that starts no reference is an error at its path, not text of the value', () => {
    const auth = (token: string) => `server:\n  auth:\n    bearerToken: "${token}"\n${flowYaml()}`;
    const expected = 'config.yaml: server.auth.bearerToken: a "${" that starts no ${NAME} or ${NAME:-default} (NAME: letters, digits and _; no nesting); write $${ for the text "${"';
    // Shell and Compose forms this syntax does not have, a space, an unclosed brace, a nested default: each
    // was taken as written, e.g. the bearer token "${TOKEN-changeme}" while TOKEN was set.
    for (const token of ['${TOKEN-changeme}', '${TOKEN:?required}', '${ TOKEN }', '${TOKEN', 'x${1}', '${A:-${TOKEN}}', 'p4ss${w0rd']) {
      expect(problem(auth(token), { TOKEN: 'secret', A: '' })).toBe(expected);
    }
    // Escaped, it is text; a reference next to it still works.
    expect(parseConfig(auth('$${TOKEN-x} ${TOKEN}'), 'config.yaml', { TOKEN: 'secret' }).config.server.auth).toMatchObject({ bearerToken: '${TOKEN-x} secret' });
  });

  it('names the path of every unset variable, and never a value', () => {
    const secret = 'Zk9 #longsecretpart';
    const message = problem(
      `server:\n  auth:\n    bearerToken: \${TOKEN}\n    basic: { username: "\${USER_SET}", password: "\${PASS}\${PASS}\${USER_SET}" }\n${flowYaml().replace('[prometheus.server.alert.SpotTerminationNotice]', '[a, "\${EVENT}"]')}`,
      { USER_SET: secret },
    );
    expect(message.split('\n')).toEqual([
      'config.yaml: server.auth.bearerToken: environment variable TOKEN is not set (write ${TOKEN:-default} for a default)',
      'config.yaml: server.auth.basic.password: environment variable PASS is not set (write ${PASS:-default} for a default)',
      'config.yaml: flows.spot.allowedEvents[1]: environment variable EVENT is not set (write ${EVENT:-default} for a default)',
    ]);
    expect(message).not.toContain('Zk9');
    expect(message).not.toContain('longsecretpart');
  });

  it('never shows a value from the environment in a message that names the value, and says where it came from', () => {
    const env = { COOLDOWN: '5 minutes', PLUGIN: 'k8s-drian', HALF: 'dr' };
    expect(problem(flowYaml().replace('plugins: [log]', 'plugins: [log]\n    cooldown: ${COOLDOWN}'), env)).toBe(
      'config.yaml: flows.spot.cooldown: expected a duration like 30s, 5m or 1h30m, got "${COOLDOWN}" (from the environment, not shown)',
    );
    expect(problem(flowYaml('', '[log, "${PLUGIN}", "k8s-${HALF}ain"]'), env).split('\n')).toEqual([
      'config.yaml: flows.spot.plugins[1]: unknown plugin "${PLUGIN}" (from the environment, not shown) (known: log)',
      'config.yaml: flows.spot.plugins[2]: unknown plugin "k8s-${HALF}ain" (from the environment, not shown) (known: log)',
    ]);
  });

  it('a short value from the environment ("5") is hidden without garbling the message around it', () => {
    expect(problem(flowYaml().replace('plugins: [log]', 'plugins: [log]\n    cooldown: "${N}"'), { N: '5' })).toBe(
      'config.yaml: flows.spot.cooldown: expected a duration like 30s, 5m or 1h30m, got "${N}" (from the environment, not shown)',
    );
  });

  it('a value written in the file, or made of defaults only, is shown', () => {
    expect(problem(flowYaml().replace('plugins: [log]', 'plugins: [log]\n    cooldown: "${UNSET:-5 minutes}"'))).toContain('got "5 minutes"');
  });

  it('hides a value from the environment also where an alias repeats it', () => {
    const env = { COOLDOWN: 'Zk9secret', P: 'Zk9secret' };
    const scalar = problem(`flows:\n  a: { allowedEvents: [x], plugins: [log], cooldown: &c "\${COOLDOWN}" }\n  b: { allowedEvents: [x], plugins: [log], cooldown: *c }\n`, env);
    expect(scalar.split('\n')[1]).toBe('config.yaml: flows.b.cooldown: expected a duration like 30s, 5m or 1h30m, got "${COOLDOWN}" (from the environment, not shown)');
    const nested = problem('flows:\n  c: &flow { allowedEvents: [x], plugins: ["${P}"] }\n  d: *flow\n', env);
    expect(nested.split('\n')[1]).toBe('config.yaml: flows.d.plugins[0]: unknown plugin "${P}" (from the environment, not shown) (known: log)');
    expect(scalar + nested).not.toContain('Zk9secret');
  });

  it('reads merge keys: flows share settings through <<, keys written beside it win', () => {
    const { config } = parseConfig(
      `
flows:
  drain: &spot
    allowedEvents: [prometheus.server.alert.SpotInterruption]
    groupBy: [instance_id]
    cooldown: 10m
    plugins: [log]
  notify:
    <<: *spot
    cooldown: 1m
  both:
    <<: [*spot]
    concurrency: 3
`,
      'config.yaml',
    );
    expect(config.flows.notify).toMatchObject({ allowedEvents: ['prometheus.server.alert.SpotInterruption'], groupBy: ['instance_id'], cooldown: 60_000 });
    expect(config.flows.both).toMatchObject({ groupBy: ['instance_id'], cooldown: 600_000, concurrency: 3 });
  });

  it('hides a value from the environment also where a merge key repeats it, and says what a bad merge source is', () => {
    const merged = problem('flows:\n  a: &a { allowedEvents: [x], plugins: [log], cooldown: "${COOLDOWN}" }\n  b: { <<: *a }\n', { COOLDOWN: 'Zk9secret' });
    expect(merged.split('\n')[1]).toBe('config.yaml: flows.b.cooldown: expected a duration like 30s, 5m or 1h30m, got "${COOLDOWN}" (from the environment, not shown)');
    expect(merged).not.toContain('Zk9secret');
    expect(problem(`flows:\n  a: { <<: 5, allowedEvents: [x], plugins: [log] }\n`)).toBe('config.yaml: Merge sources must be maps or map aliases');
  });

  it('says where an alias of an anchor not set before it is', () => {
    expect(problem('flows:\n  a: { allowedEvents: [x], plugins: [log] }\n  b: *common\n')).toBe(
      'config.yaml: line 3, column 6: Unresolved alias (the anchor must be set before the alias): common',
    );
  });

  it('a deprecated global.bindAddr from the environment stays hidden where it becomes server.listen', () => {
    const { config, display } = parseConfig(`global: { bindAddr: "\${ADDR}" }\n${flowYaml()}`, 'config.yaml', { ADDR: '10.1.2.3:9092' });
    expect(config.server.listen).toBe('10.1.2.3:9092');
    expect(display.plain('server.listen', config.server.listen)).toBe('${ADDR}');
  });

  it('an empty variable counts as unset', () => {
    expect(problem(`server: { listen: "\${LISTEN}" }\n${flowYaml()}`, { LISTEN: '' })).toContain('server.listen: environment variable LISTEN is not set');
  });

  it.each([
    '127.0.0.1:9000', 'drain.hollowtrees.svc:9000', '[::1]:9000', 'unix:/run/hollowtrees/drain.sock', 'dns:///drain:9000',
    'unix:///run/hollowtrees/drain.sock', 'dns:drain:9000', 'dns://10.96.0.10/drain:9000', 'dns://[fd00::a]:53/drain:9000', 'ipv4:10.0.0.1:9000,10.0.0.2:9000', 'ipv6:[fd00::1]:9000',
  ])('accepts the plugin address %s', (address) => {
    expect(parseConfig(`plugins:\n  x: { type: grpc, address: "${address}" }\n${flowYaml()}`, 'config.yaml', {}).config.plugins.x).toMatchObject({ address });
  });

  it('accepts the original global.bindAddr with a deprecation warning', () => {
    const loaded = parseConfig(`global: { bindAddr: "0.0.0.0:9191" }\n${flowYaml('    cooldown: 10m\n')}`, 'config.yaml');
    expect(loaded.config.server.listen).toBe('0.0.0.0:9191');
    expect(loaded.warnings).toEqual(['config.yaml: global.bindAddr is deprecated; write server.listen instead']);
  });

  it('warns of each flow that takes notices of an SQS queue without a cooldown: one handed out again after its run succeeded would run it again', () => {
    const yaml = (cooldowns: string) => `sources:
  sqs:
    - url: https://sqs.eu-west-1.amazonaws.com/123456789012/interruptions
flows:
  drain:
    allowedEvents: [aws.ec2.spot.*]
    plugins: [log]${cooldowns}
  alerts:
    allowedEvents: [prometheus.server.alert.*]
    plugins: [log]
`;
    const alertsWarning = 'config.yaml: flow alerts takes firing Prometheus alerts (prometheus.server.alert.*) with no cooldown: Prometheus sends a firing alert again every minute (Alertmanager at its repeat_interval), and each one after the run ended runs it again; set flows.alerts.cooldown (10m, say)';
    expect(parseConfig(yaml(''), 'config.yaml').warnings).toEqual([
      'config.yaml: flow drain takes notices of an SQS queue (aws.ec2.spot.interruption-warning, aws.ec2.spot.rebalance-recommendation) with no cooldown: a notice SQS hands out again after its run succeeded (its delete lost before a restart, a run on another replica) runs it again; set flows.drain.cooldown (10m, say)',
      alertsWarning,
    ]);
    expect(parseConfig(yaml('\n    cooldown: 10m'), 'config.yaml').warnings).toEqual([alertsWarning]);
    // Without a queue, no flow takes its notices.
    expect(parseConfig(yaml('').replace(/^sources:\n  sqs:\n.*\n/, ''), 'config.yaml').warnings).toEqual([alertsWarning]);
  });

  it('warns of each flow that takes Spot price events without a cooldown: after a restart the source announces a surge still going on again, which would run it again', () => {
    const yaml = (cooldown: string) => `sources:
  spotPrice:
    - { region: eu-west-1, instanceTypes: [m5.large], availabilityZones: [eu-west-1a], maxPrice: 0.1 }
flows:
  pool:
    allowedEvents: [aws.ec2.spot.*, aws.ec2.spot.price-surge.resolved]
    plugins: [log]${cooldown}
`;
    expect(parseConfig(yaml(''), 'config.yaml').warnings).toEqual([
      'config.yaml: flow pool takes Spot price events of sources.spotPrice (aws.ec2.spot.price-surge, aws.ec2.spot.price-surge.resolved) with no cooldown: after a restart the source announces a surge still going on, and the end of the latest one, again (it cannot know whether it did before), and each runs the flow again; set flows.pool.cooldown (1h, say)',
    ]);
    expect(parseConfig(yaml('\n    cooldown: 1h'), 'config.yaml').warnings).toEqual([]);
    // Without a price source, no flow takes its events.
    expect(parseConfig(yaml('').replace(/^sources:\n  spotPrice:\n.*\n/, ''), 'config.yaml').warnings).toEqual([]);
  });

  it('warns of each flow that takes firing Prometheus alerts without a cooldown: each re-send after its run ended would run it again', () => {
    const warned = (allowedEvents: string, cooldown = '') => parseConfig(`flows:\n  f:\n    allowedEvents: ${allowedEvents}\n    plugins: [log]${cooldown}\n`, 'config.yaml').warnings;
    const warning = (patterns: string) => `config.yaml: flow f takes firing Prometheus alerts (${patterns}) with no cooldown: Prometheus sends a firing alert again every minute (Alertmanager at its repeat_interval), and each one after the run ended runs it again; set flows.f.cooldown (10m, say)`;
    expect(warned('[prometheus.server.alert.SpotTerminationNotice, aws.ec2.spot.price-surge]')).toEqual([warning('prometheus.server.alert.SpotTerminationNotice')]);
    expect(warned('[prometheus.server.alert.Spot*, "*.server.alert.Node*"]')).toEqual([warning('prometheus.server.alert.Spot*, *.server.alert.Node*')]);
    expect(warned('[prometheus.server.alert.SpotTerminationNotice]', '\n    cooldown: 1m')).toEqual([]);
    // Resolutions (warned of on their own, below) and other events are not what Prometheus re-sends while an alert fires.
    expect(warned('[prometheus.server.alert.*.resolved, prometheus.server.other.X, aws.ec2.spot.price-surge]', '\n    cooldown: 20m')).toEqual([]);
    expect(warned('[prometheus.server.other.X, aws.ec2.spot.price-surge, aws.ec2.spot.price-surge.resolved]')).toEqual([]);
  });

  it('warns of each flow that takes resolved Prometheus alerts with a cooldown shorter than the 15 minutes Prometheus re-sends them', () => {
    const warned = (allowedEvents: string, cooldown = '') => parseConfig(`flows:\n  r:\n    allowedEvents: ${allowedEvents}\n    plugins: [log]${cooldown}\n`, 'config.yaml').warnings;
    const warning = (patterns: string, cooldown: string) => `config.yaml: flow r takes resolved Prometheus alerts (${patterns}) with ${cooldown}: Prometheus sends a resolved alert again every minute for 15 minutes after it resolved, and each one after the cooldown ended runs the flow again; set flows.r.cooldown to 20m, say`;
    expect(warned('[prometheus.server.alert.*.resolved, aws.ec2.spot.price-surge.resolved]')).toEqual([warning('prometheus.server.alert.*.resolved', 'no cooldown')]);
    expect(warned('[prometheus.server.alert.SpotPriceSurge.resolved]', '\n    cooldown: 10m')).toEqual([warning('prometheus.server.alert.SpotPriceSurge.resolved', 'a 600s cooldown')]);
    expect(warned('[prometheus.server.alert.*.resolved]', '\n    cooldown: 15m')).toEqual([]);
  });

  it('server.listen wins over global.bindAddr', () => {
    const loaded = parseConfig(`global: { bindAddr: "0.0.0.0:9191" }\nserver: { listen: "127.0.0.1:1" }\n${flowYaml()}`, 'config.yaml');
    expect(loaded.config.server.listen).toBe('127.0.0.1:1');
  });

  it('the embedded default is valid: receiver on 127.0.0.1:9092, a demo flow into log', () => {
    const { config, file } = defaultConfig();
    expect(file).toBe('<embedded default>');
    expect(config.server.listen).toBe('127.0.0.1:9092');
    expect(config.flows.demo?.plugins).toEqual([{ plugin: 'log', config: {} }]);
  });

  it.each([
    ['an unknown plugin, with the known ones', `plugins:\n  k8s-drain: { type: grpc, address: "a:1" }\n${flowYaml('', '[log, k8s-drian]')}`, 'config.yaml: flows.spot.plugins[1]: unknown plugin "k8s-drian" (known: k8s-drain, log)'],
    ['broken YAML, with its line', 'flows:\n  spot: [unclosed\n', 'config.yaml: line 3, column 1:'],
    ['a duplicate key, by its path', 'flows:\n  spot:\n    allowedEvents: [a.b]\n    allowedEvents: [c.d]\n    plugins: [log]\n', 'config.yaml: line 4, column 5: flows.spot.allowedEvents is written twice (a key is written once in a mapping)'],
    ['a list at the top', '- a\n- b\n', 'config.yaml: expected a YAML mapping with server, log, plugins and flows, got a list'],
    ['no flows', 'server: {}\n', 'config.yaml: flows: required (expected object)'],
    ['an empty flows map (validate said "valid (0 flows: )")', 'flows: {}\n', 'config.yaml: flows: expected at least one flow: without one, every alert is answered 200 and every SQS notice deleted, and nothing acts on them'],
    ['a bad duration', flowYaml('').replace('plugins: [log]', 'plugins: [log]\n    cooldown: 5 minutes'), 'config.yaml: flows.spot.cooldown: expected a duration like 30s, 5m or 1h30m, got "5 minutes"'],
    ['a duration given as a number', flowYaml('').replace('plugins: [log]', 'plugins: [log]\n    cooldown: 300'), 'config.yaml: flows.spot.cooldown: expected a duration like 30s, 5m or 1h30m, got "300"'],
    ['an unknown field (a typo)', flowYaml('').replace('plugins: [log]', 'plugins: [log]\n    groupby: [instance_id]'), 'config.yaml: flows.spot.groupby: unknown field'],
    ['no allowedEvents', 'flows:\n  spot:\n    plugins: [log]\n', 'config.yaml: flows.spot.allowedEvents: required (expected array)'],
    ['an empty plugin list', flowYaml('', '[]'), 'config.yaml: flows.spot.plugins: expected at least one plugin'],
    ['a plugin address without a port (grpc-js would dial 443)', `plugins:\n  x: { type: grpc, address: "drain" }\n${flowYaml()}`, 'config.yaml: plugins.x.address: expected HOST:PORT of the plugin, e.g. 127.0.0.1:9000, or a gRPC target such as unix:/run/plugin.sock, got "drain"'],
    ['a dns: target without a port (grpc-js would dial 443)', `plugins:\n  x: { type: grpc, address: "dns:///drain.hollowtrees.svc" }\n${flowYaml()}`, 'config.yaml: plugins.x.address: expected dns:///HOST:PORT, with the port of the plugin (without one grpc-js dials port 443), got "dns:///drain.hollowtrees.svc"'],
    ['a dns: target whose DNS server is a name (start-up failed on a TypeError)', `plugins:\n  x: { type: grpc, address: "dns://kube-dns/drain:9000" }\n${flowYaml()}`, 'config.yaml: plugins.x.address: expected the DNS server of a dns://SERVER/HOST:PORT target as an IP address (grpc-js cannot use a name there), or dns:///HOST:PORT for the system\'s, got "dns://kube-dns/drain:9000"'],
    ['an ipv4: target without a port (grpc-js would dial 443)', `plugins:\n  x: { type: grpc, address: "ipv4:10.0.0.1:9000,10.0.0.2" }\n${flowYaml()}`, 'config.yaml: plugins.x.address: expected ipv4:ADDRESS:PORT, or a list of them separated by commas, each an IPv4 address with the port of the plugin, got "ipv4:10.0.0.1:9000,10.0.0.2"'],
    ['an ipv6: target of an IPv4 address', `plugins:\n  x: { type: grpc, address: "ipv6:10.0.0.1:9000" }\n${flowYaml()}`, 'config.yaml: plugins.x.address: expected ipv6:ADDRESS:PORT, or a list of them separated by commas, each an IPv6 address in brackets with the port of the plugin, got "ipv6:10.0.0.1:9000"'],
    ['a target of a scheme grpc-js does not resolve (every call would fail)', `plugins:\n  x: { type: grpc, address: "unix-abstract:drain" }\n${flowYaml()}`, 'config.yaml: plugins.x.address: expected HOST:PORT of the plugin, e.g. 127.0.0.1:9000, or a gRPC target such as unix:/run/plugin.sock, got "unix-abstract:drain"'],
    ['a plugin address with port 0', `plugins:\n  x: { type: grpc, address: "127.0.0.1:0" }\n${flowYaml()}`, 'config.yaml: plugins.x.address: expected HOST:PORT of the plugin'],
    ['a plugin address without a host', `plugins:\n  x: { type: grpc, address: ":9000" }\n${flowYaml()}`, 'config.yaml: plugins.x.address: expected HOST:PORT of the plugin'],
    ['a plugin without type', `plugins:\n  x: { address: "a:1" }\n${flowYaml()}`, 'config.yaml: plugins.x.type: expected type: grpc or type: log'],
    ['a grpc plugin without address', `plugins:\n  x: { type: grpc }\n${flowYaml()}`, 'config.yaml: plugins.x.address: required (expected string)'],
    ['a plugin timeout past 24h (past 2^31 ms a timer fires at once)', `plugins:\n  x: { type: grpc, address: "a:1", timeout: 1200h }\n${flowYaml()}`, 'config.yaml: plugins.x.timeout: expected a duration from 1ms to 24h'],
    ['a plugin timeout of zero', `plugins:\n  x: { type: log, timeout: 0s }\n${flowYaml()}`, 'config.yaml: plugins.x.timeout: expected a duration from 1ms to 24h'],
    ['a retry backoff past 24h', flowYaml('').replace('plugins: [log]', 'plugins: [log]\n    runRetry: { maxBackoff: 25h }'), 'config.yaml: flows.spot.runRetry.maxBackoff: expected a duration from 0s to 24h'],
    ['a receiver timeout of zero (Node would read it as none)', `server: { timeouts: { body: 0s } }\n${flowYaml()}`, 'config.yaml: server.timeouts.body: expected a duration from 100ms to 1h'],
    ['a receiver timeout that is not a duration', `server: { timeouts: { idle: forever } }\n${flowYaml()}`, 'config.yaml: server.timeouts.idle: expected a duration like 30s, 5m or 1h30m, got "forever"'],
    ['a bad listen address', `server: { listen: "localhost" }\n${flowYaml()}`, 'config.yaml: server.listen: expected HOST:PORT with a port from 0 to 65535, e.g. 127.0.0.1:9092 (this machine only) or :9092 (every interface), got "localhost"'],
    ['a bare port as listen address (loopback or everywhere? not guessed)', `server: { listen: "9099" }\n${flowYaml()}`, 'config.yaml: server.listen: expected HOST:PORT with a port from 0 to 65535, e.g. 127.0.0.1:9092 (this machine only) or :9092 (every interface), got "9099"'],
    ['a bad filter regex', flowYaml('').replace('plugins: [log]', 'plugins: [log]\n    filters: { node: { regex: "([" } }'), 'config.yaml: flows.spot.filters.node.regex: expected a valid regular expression'],
    ['a filter of the wrong shape', flowYaml('').replace('plugins: [log]', 'plugins: [log]\n    filters: { node: 5 }'), 'config.yaml: flows.spot.filters.node: expected a string, a list of strings, { not: ... } or { regex: ... }'],
    ['retry attempts of zero', `plugins:\n  x: { type: grpc, address: "a:1", retry: { attempts: 0 } }\n${flowYaml()}`, 'config.yaml: plugins.x.retry.attempts: Too small: expected number to be >=1'],
    ['an unset environment variable', `server: { listen: "\${LISTEN}" }\n${flowYaml()}`, 'config.yaml: server.listen: environment variable LISTEN is not set (write ${LISTEN:-default} for a default)'],
    ['a log level that does not exist', `log: { level: loud }\n${flowYaml()}`, 'config.yaml: log.level: Invalid option: expected one of'],
    ['a plugin client certificate without its key', `plugins:\n  x: { type: grpc, address: "a:1", tls: { cert: /c.pem } }\n${flowYaml()}`, 'config.yaml: plugins.x.tls: cert and key must be given together'],
    ['a port above 65535', `server: { listen: "127.0.0.1:70000" }\n${flowYaml()}`, 'config.yaml: server.listen: expected HOST:PORT with a port from 0 to 65535, e.g. 127.0.0.1:9092 (this machine only) or :9092 (every interface), got "127.0.0.1:70000"'],
  ])('rejects %s', (_name, yaml, expected) => {
    expect(problem(yaml)).toContain(expected);
  });

  it('lists every problem, not only the first', () => {
    const message = problem('flows:\n  a: { plugins: [log] }\n  b: { allowedEvents: [x], plugins: [nope] }\n');
    expect(message.split('\n')).toEqual([
      'config.yaml: flows.a.allowedEvents: required (expected array)',
    ]);
    expect(problem('flows:\n  b: { allowedEvents: [x], plugins: [nope, log, nada] }\n').split('\n')).toEqual([
      'config.yaml: flows.b.plugins[0]: unknown plugin "nope" (known: log)',
      'config.yaml: flows.b.plugins[2]: unknown plugin "nada" (known: log)',
    ]);
  });

  it('a step with settings: an unknown plugin, a nested value, an unknown key', () => {
    expect(problem('flows:\n  b: { allowedEvents: [x], plugins: [{plugin: nope, config: {mode: pool}}] }\n')).toContain('config.yaml: flows.b.plugins[0]: unknown plugin "nope" (known: log)');
    // Each names the key inside the step and what it takes, not "plugins[0]: Invalid input".
    const step = (text: string) => problem(`flows:\n  b: { allowedEvents: [x], plugins: [${text}] }\n`);
    expect(step('{plugin: log, config: {zones: [a, b]}}')).toBe('config.yaml: flows.b.plugins[0].config.zones: expected a string, a number or a boolean');
    expect(step('{plugin: log, config: {mode: }}')).toBe('config.yaml: flows.b.plugins[0].config.mode: expected a string, a number or a boolean');
    expect(step('{config: {mode: pool}}')).toBe('config.yaml: flows.b.plugins[0].plugin: required (expected string)');
    expect(step('{plugin: log, settings: {}}')).toBe('config.yaml: flows.b.plugins[0].settings: unknown field');
    expect(step('~')).toBe('config.yaml: flows.b.plugins[0]: expected a plugin name, or {plugin: <name>, config: {key: value}}');
    expect(problem('flows:\n  b: { allowedEvents: [x], plugins: [{plugin: "${P}"}] }\n', { P: 'secret-name' })).toContain('flows.b.plugins[0].plugin: unknown plugin "${P}" (from the environment, not shown)');
  });
});

/** `flowYaml()` under `extra` top-level YAML, parsed. */
const withTop = (extra: string) => parseConfig(`${extra}\n${flowYaml()}`, 'config.yaml', {}).config;
/** A flow `spot` with `fields` (YAML lines at flow level) added, parsed. */
const flowWith = (fields: string) => parseConfig(flowYaml().replace('plugins: [log]', `plugins: [log]\n${fields.replace(/^/gm, '    ')}`), 'config.yaml', {}).config.flows.spot!;

describe('parseConfig accepts every documented form', () => {
  it('a flow without optional fields gets an empty description, filters and groupBy, no cooldown', () => {
    expect(parseConfig(flowYaml(), 'config.yaml').config.flows.spot).toEqual({
      description: '',
      allowedEvents: ['prometheus.server.alert.SpotTerminationNotice'],
      filters: {},
      groupBy: [],
      cooldown: 0,
      concurrency: 1_000,
      queueSize: 10_000,
      queueBytes: 64 * 1024 * 1024,
      runRetry: { attempts: 6, initialBackoff: 30_000, maxBackoff: 300_000, multiplier: 2 },
      plugins: [{ plugin: 'log', config: {} }],
    });
  });

  it('a step with settings for its plugin: strings, numbers and booleans, sent as strings', () => {
    const flows = parseConfig('flows:\n  surge:\n    allowedEvents: [x]\n    plugins:\n      - {plugin: log, config: {mode: pool, maxUnavailable: 2, dryRun: false, minInterval: 30s}}\n      - log\n      - {plugin: log}\n', 'config.yaml').config.flows;
    expect(flows.surge?.plugins).toEqual([
      { plugin: 'log', config: { mode: 'pool', maxUnavailable: '2', dryRun: 'false', minInterval: '30s' } },
      { plugin: 'log', config: {} },
      { plugin: 'log', config: {} },
    ]);
  });

  it('flow fields within their bounds', () => {
    const events = parseConfig('flows:\n  spot: { allowedEvents: [a.b, "prometheus.server.alert.*.resolved"], plugins: [log] }\n', 'config.yaml');
    expect(events.config.flows.spot?.allowedEvents).toEqual(['a.b', 'prometheus.server.alert.*.resolved']);
    expect(flowWith('concurrency: 5\nqueueSize: 0\ngroupBy: [node, instance_id]')).toMatchObject({
      concurrency: 5,
      queueSize: 0,
      groupBy: ['node', 'instance_id'],
    });
    expect(flowWith('concurrency: 100000\nqueueSize: 10000000')).toMatchObject({ concurrency: 100_000, queueSize: 10_000_000 });
    expect(flowWith('cooldown: 876000h')).toMatchObject({ cooldown: 876_000 * 3_600_000 });
  });

  it('filters: a value, a list, { not: value or list }, { regex }', () => {
    const filters = { node: 'n1', zone: ['a', 'b'], region: { not: 'us-east-1' }, type: { not: ['t3.micro', 'm5.large'] }, pool: { regex: 'spot-.*' } };
    expect(flowWith(`filters: ${JSON.stringify(filters)}`).filters).toEqual(filters);
  });

  it('a gRPC plugin with TLS files, a server name and its own retry policy; a log plugin with its timeout', () => {
    const { plugins } = withTop(`plugins:
  drain: { type: grpc, address: "127.0.0.1:9000", timeout: 2m, retry: { attempts: 100, initialBackoff: 1s, maxBackoff: 1m, multiplier: 1.5 }, tls: { ca: /ca.pem, cert: /c.pem, key: /k.pem, serverName: drain.local }, keepalive: { time: 45s } }
  quiet: { type: log, timeout: 1s, retry: { attempts: 1, multiplier: 10 } }`);
    expect(plugins.drain).toEqual({
      type: 'grpc',
      address: '127.0.0.1:9000',
      timeout: 120_000,
      retry: { attempts: 100, initialBackoff: 1_000, maxBackoff: 60_000, multiplier: 1.5 },
      tls: { ca: '/ca.pem', cert: '/c.pem', key: '/k.pem', serverName: 'drain.local', refresh: 60_000 },
      transport: 'auto',
      keepalive: { time: 45_000, timeout: 10_000 },
    });
    expect(withTop('plugins:\n  drain: { type: grpc, address: "127.0.0.1:9000", transport: unary }').plugins.drain).toMatchObject({ transport: 'unary', keepalive: { time: 30_000, timeout: 10_000 } });
    expect(withTop('plugins:\n  drain: { type: grpc, address: "127.0.0.1:9000", keepalive: false }').plugins.drain).toMatchObject({ keepalive: false });
    expect(plugins.quiet).toEqual({ type: 'log', timeout: 1_000, retry: { attempts: 1, initialBackoff: 200, maxBackoff: 5_000, multiplier: 10 } });
  });

  it('plugin names with letters, digits, dots, underscores and dashes', () => {
    expect(Object.keys(withTop('plugins:\n  k8s_drain.v2-b: { type: log }').plugins)).toEqual(['k8s_drain.v2-b']);
  });

  it.each(['127.0.0.1:9092', '0.0.0.0:1', ':9092', 'localhost:65535', '[::1]:9092', '[fe80::1:AbCd]:80'])('server.listen %s', (listen) => {
    expect(withTop(`server: { listen: "${listen}" }`).server.listen).toBe(listen);
  });

  it('a server section without listen or limits gets the defaults', () => {
    expect(withTop('server: { shutdownGracePeriod: 5s }').server).toEqual({
      listen: '127.0.0.1:9092',
      shutdownGracePeriod: 5_000,
      limits: { maxBodyBytes: 1_048_576, maxAlertsPerRequest: 10_000, maxLabelsPerAlert: 128, maxLabelLength: 4_096, maxConcurrentRequests: 1_024 },
      timeouts: { headers: 10_000, body: 30_000, idle: 60_000 },
    });
  });

  it('receiver limits within their bounds; one given leaves the others at their defaults', () => {
    const limits = { maxBodyBytes: 64 * 1024 * 1024, maxAlertsPerRequest: 1_000_000, maxLabelsPerAlert: 10_000, maxLabelLength: 1_000_000, maxConcurrentRequests: 1_000_000 };
    expect(withTop(`server: { limits: ${JSON.stringify(limits)} }`).server.limits).toEqual(limits);
    const low = { maxBodyBytes: 1_024, maxAlertsPerRequest: 1, maxLabelsPerAlert: 1, maxLabelLength: 16, maxConcurrentRequests: 1 };
    expect(withTop(`server: { limits: ${JSON.stringify(low)} }`).server.limits).toEqual(low);
    expect(withTop('server: { limits: { maxAlertsPerRequest: 5 } }').server.limits).toEqual({
      maxBodyBytes: 1_048_576, maxAlertsPerRequest: 5, maxLabelsPerAlert: 128, maxLabelLength: 4_096, maxConcurrentRequests: 1_024,
    });
  });

  it('receiver TLS and auth in each form', () => {
    expect(withTop('server: { tls: { cert: /c.pem, key: /k.pem } }').server.tls).toEqual({ cert: '/c.pem', key: '/k.pem', refresh: 60_000 });
    expect(withTop('server: { tls: { cert: /c.pem, key: /k.pem, refresh: 10s } }').server.tls).toEqual({ cert: '/c.pem', key: '/k.pem', refresh: 10_000 });
    for (const auth of [{ bearerTokenFile: '/token' }, { basic: { username: 'u', passwordFile: '/pw' } }, { bearerToken: 't', basic: { username: 'u', password: 'p' } }]) {
      expect(withTop(`server: { auth: ${JSON.stringify(auth)} }`).server.auth).toEqual(auth);
    }
  });

  it.each(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])('log level %s', (level) => {
    expect(withTop(`log: { level: ${level} }`).log.level).toBe(level);
  });

  it('sizes in bytes, or with a binary unit', () => {
    const config = parseConfig(`server: { limits: { maxBodyBytes: 512KiB } }\nstate: { maxQueuedBytes: 1Gi }\n${flowYaml('    queueBytes: 16MiB')}`, 'config.yaml').config;
    expect(config.server.limits.maxBodyBytes).toBe(512 * 1024);
    expect(config.state.maxQueuedBytes).toBe(1024 ** 3);
    expect(config.flows.spot!.queueBytes).toBe(16 * 1024 * 1024);
    expect(withTop('server: { limits: { maxBodyBytes: 2048 } }').server.limits.maxBodyBytes).toBe(2048);
  });

  it('a duration a timer waits for is at most 24h: Node fires a timer past 24.8 days at once', () => {
    // Each of these was taken: shutdown would cancel every run at once, the spot-price source poll
    // EC2 without pause, and a replica renew its Leases without pause.
    const spotPrice = 'sources:\n  spotPrice:\n    - { region: us-east-1, instanceTypes: [m5.large], availabilityZones: [us-east-1a], maxPrice: 0.2, interval: 600h }';
    expect(problem(flowYaml(`server: { shutdownGracePeriod: 600h }\n${spotPrice}\nstate: { backend: kubernetes, kubernetes: { leaseDuration: 1800h, renewInterval: 600h } }`)).split('\n')).toEqual([
      'config.yaml: state.kubernetes.leaseDuration: expected whole seconds from 1s to 24h',
      'config.yaml: state.kubernetes.renewInterval: expected a duration from 100ms to 24h',
      'config.yaml: server.shutdownGracePeriod: expected a duration from 0s to 24h',
      'config.yaml: sources.spotPrice[0].interval: expected a duration from 100ms to 24h',
    ]);
    expect(withTop('server: { shutdownGracePeriod: 24h }').server.shutdownGracePeriod).toBe(86_400_000);
  });

  it('a state file, and no state section means memory only, with the default bounds', () => {
    const bounds = { maxGroups: 250_000, maxQueuedBytes: 256 * 1024 * 1024 };
    expect(withTop('state: { file: /var/lib/hollowtrees/state.jsonl }').state).toEqual({ backend: 'file', file: '/var/lib/hollowtrees/state.jsonl', ...bounds });
    expect(parseConfig(flowYaml(), 'config.yaml').config.state).toEqual({ backend: 'memory', ...bounds });
  });

  it('the kubernetes backend with its defaults, and settings that do not fit the backend named', () => {
    expect(withTop('state: { backend: kubernetes, kubernetes: { namespace: ops } }').state.kubernetes).toEqual({ namespace: 'ops', leasePrefix: 'hollowtrees-', leaseDuration: 30_000, renewInterval: 10_000, maxInFlight: 32 });
    expect(withTop('state: { backend: kubernetes }').state.kubernetes).toEqual({ leasePrefix: 'hollowtrees-', leaseDuration: 30_000, renewInterval: 10_000, maxInFlight: 32 });
    expect(withTop('state: { backend: kubernetes, kubernetes: { maxInFlight: 4 } }').state.kubernetes).toMatchObject({ maxInFlight: 4 });
    for (const bad of ['0', '1001', '2.5', '"8"']) expect(() => withTop(`state: { backend: kubernetes, kubernetes: { maxInFlight: ${bad} } }`)).toThrow(/state\.kubernetes\.maxInFlight: /);
    expect(() => withTop('state: { backend: file }')).toThrow(/state\.file: backend file needs the path of the state file/);
    expect(() => withTop('state: { backend: memory, file: /x }')).toThrow(/state\.file: only the file backend uses a state file \(backend is memory\)/);
    expect(() => withTop('state: { file: /x, kubernetes: {} }')).toThrow(/state\.kubernetes: only the kubernetes backend uses these settings \(backend is file\)/);
    expect(() => withTop('state: { backend: kubernetes, kubernetes: { leaseDuration: 10s, renewInterval: 10s } }')).toThrow(/state\.kubernetes\.renewInterval: renewInterval must be at most a third of leaseDuration/);
    // Accepted before, and then every run that outlasted two renewals was stopped by its own replica.
    expect(() => withTop('state: { backend: kubernetes, kubernetes: { leaseDuration: 30s, renewInterval: 11s } }')).toThrow(/state\.kubernetes\.renewInterval: renewInterval must be at most a third of leaseDuration/);
    expect(withTop('state: { backend: kubernetes, kubernetes: { leaseDuration: 30s, renewInterval: 10s } }').state.kubernetes).toMatchObject({ renewInterval: 10_000 });
    expect(() => withTop('state: { backend: kubernetes, kubernetes: { namespace: Ops_1 } }')).toThrow(/state\.kubernetes\.namespace: expected a namespace name/);
    // The Lease's leaseDurationSeconds is an int32: the API server refused every claim of a longer one, so every event was answered 503.
    for (const bad of ['596524h', '25h', '500ms', '1500ms']) {
      expect(() => withTop(`state: { backend: kubernetes, kubernetes: { leaseDuration: ${bad} } }`)).toThrow(/state\.kubernetes\.leaseDuration: expected whole seconds from 1s to 24h/);
    }
    expect(withTop('state: { backend: kubernetes, kubernetes: { leaseDuration: 24h } }').state.kubernetes).toMatchObject({ leaseDuration: 86_400_000 });
    // The API server refuses a Lease name with '-.', '..' or '.-' (every claim would be 422, every event 503): refused here instead.
    for (const prefix of ['ht-.', 'ht..', 'ht.-', 'a.b-.c-']) {
      expect(() => withTop(`state: { backend: kubernetes, kubernetes: { leasePrefix: "${prefix}" } }`)).toThrow(/state\.kubernetes\.leasePrefix: expected the start of a Lease name/);
    }
    for (const prefix of ['hollowtrees-', 'ht.', 'a.b-c--', 'x']) expect(withTop(`state: { backend: kubernetes, kubernetes: { leasePrefix: "${prefix}" } }`).state.kubernetes?.leasePrefix).toBe(prefix);
  });

  it('lists the known plugins sorted', () => {
    expect(problem(`plugins:\n  zeta: { type: log }\n  alpha: { type: log }\n${flowYaml('', '[nope]')}`)).toBe('config.yaml: flows.spot.plugins[0]: unknown plugin "nope" (known: alpha, log, zeta)');
  });
});

describe('parseConfig rejects, saying where and what was expected', () => {
  it.each([
    ['a listen address with a space', 'server: { listen: "a b:9092" }', 'server.listen: expected HOST:PORT with a port from 0 to 65535, e.g. 127.0.0.1:9092 (this machine only) or :9092 (every interface), got "a b:9092"'],
    ['a listen port of six digits', 'server: { listen: "127.0.0.1:909200" }', 'server.listen: expected HOST:PORT with a port from 0 to 65535, e.g. 127.0.0.1:9092 (this machine only) or :9092 (every interface), got "127.0.0.1:909200"'],
    ['an IPv6 listen address without brackets', 'server: { listen: "::1:9092" }', 'server.listen: expected HOST:PORT with a port from 0 to 65535, e.g. 127.0.0.1:9092 (this machine only) or :9092 (every interface), got "::1:9092"'],
    ['a plugin name starting with a dash', 'plugins:\n  -x: { type: log }', 'plugins.-x: plugin names use letters, digits, . _ -'],
    ['a plugin name with a space', 'plugins:\n  "a b": { type: log }', 'plugins.a b: plugin names use letters, digits, . _ -'],
    ['an unknown plugin type', 'plugins:\n  x: { type: http }', 'plugins.x.type: expected type: grpc or type: log'],
    ['a plugin that is not a mapping', 'plugins:\n  x: grpc', 'plugins.x: Invalid input: expected object, received string'],
    ['an empty plugin address', 'plugins:\n  x: { type: grpc, address: "" }', 'plugins.x.address: expected HOST:PORT of the plugin, e.g. 127.0.0.1:9000, or a gRPC target such as unix:/run/plugin.sock, got ""'],
    ['a plugin address given as a port number', 'plugins:\n  x: { type: grpc, address: 9000 }', 'plugins.x.address: expected HOST:PORT of the plugin, e.g. 127.0.0.1:9000, or a gRPC target such as unix:/run/plugin.sock, got "9000"'],
    ['a plugin address that is not a string', 'plugins:\n  x: { type: grpc, address: true }', 'plugins.x.address: Invalid input: expected string, received boolean'],
    ['a bare listen port, which YAML reads as a number', 'server: { listen: 9092 }', 'server.listen: expected HOST:PORT with a port from 0 to 65535, e.g. 127.0.0.1:9092 (this machine only) or :9092 (every interface), got "9092"'],
    ['a plugin timeout in seconds without a unit', 'plugins:\n  x: { type: grpc, address: "a:1", timeout: 30 }', 'plugins.x.timeout: expected a duration like 30s, 5m or 1h30m, got "30"'],
    ['retry attempts over 100', 'plugins:\n  x: { type: log, retry: { attempts: 101 } }', 'plugins.x.retry.attempts: Too big: expected number to be <=100'],
    ['a retry multiplier under 1', 'plugins:\n  x: { type: log, retry: { multiplier: 0.5 } }', 'plugins.x.retry.multiplier: Too small: expected number to be >=1'],
    ['a retry multiplier over 10', 'plugins:\n  x: { type: log, retry: { multiplier: 11 } }', 'plugins.x.retry.multiplier: Too big: expected number to be <=10'],
    ['an unknown TLS field', 'plugins:\n  x: { type: grpc, address: "a:1", tls: { insecure: true } }', 'plugins.x.tls.insecure: unknown field'],
    ['a body limit over 64 MiB', 'server: { limits: { maxBodyBytes: 67108865 } }', 'server.limits.maxBodyBytes: expected a size from 1KiB to 64MiB, got "67108865"'],
    ['a body limit under 1 KiB', 'server: { limits: { maxBodyBytes: 1023 } }', 'server.limits.maxBodyBytes: expected a size from 1KiB to 64MiB, got "1023"'],
    ['a body limit over 64 MiB with a unit', 'server: { limits: { maxBodyBytes: 65MiB } }', 'server.limits.maxBodyBytes: expected a size from 1KiB to 64MiB, got "65MiB"'],
    ['a body limit in decimal megabytes', 'server: { limits: { maxBodyBytes: 8MB } }', 'server.limits.maxBodyBytes: expected a whole number of bytes, or a size with a binary unit like 512KiB, 64MiB or 1GiB, got "8MB"'],
    ['a body limit of a fraction of a byte', 'server: { limits: { maxBodyBytes: 2048.5 } }', 'server.limits.maxBodyBytes: expected a whole number of bytes, or a size with a binary unit like 512KiB, 64MiB or 1GiB, got "2048.5"'],
    ['a body limit that is a list', 'server: { limits: { maxBodyBytes: [1] } }', 'server.limits.maxBodyBytes: expected a size in bytes, like 67108864 or 64MiB'],
    ['an empty TLS certificate path', 'server: { tls: { cert: "", key: /k.pem } }', 'server.tls.cert: Too small: expected string to have >=1 characters'],
    ['a TLS refresh under a second', 'server: { tls: { cert: /c.pem, key: /k.pem, refresh: 500ms } }', 'server.tls.refresh: expected a duration from 1s to 24h'],
    ['a plugin TLS refresh over a day', 'plugins:\n  x: { type: grpc, address: "a:1", tls: { ca: /ca.pem, refresh: 25h } }', 'plugins.x.tls.refresh: expected a duration from 1s to 24h'],
    ['auth with nothing in it', 'server: { auth: {} }', 'server.auth: expected bearerToken, bearerTokenFile or basic'],
    ['a token and a token file', 'server: { auth: { bearerToken: t, bearerTokenFile: /t } }', 'server.auth: expected bearerToken or bearerTokenFile, not both'],
    ['an empty token file path', 'server: { auth: { bearerTokenFile: "" } }', 'server.auth.bearerTokenFile: Too small: expected string to have >=1 characters'],
    ['basic auth with a password and a password file', 'server: { auth: { basic: { username: u, password: p, passwordFile: /p } } }', 'server.auth.basic: expected password or passwordFile, exactly one'],
    ['basic auth without a password', 'server: { auth: { basic: { username: u } } }', 'server.auth.basic: expected password or passwordFile, exactly one'],
    ['an empty password file path', 'server: { auth: { basic: { username: u, passwordFile: "" } } }', 'server.auth.basic.passwordFile: Too small: expected string to have >=1 characters'],
    ['an empty state file path', 'state: { file: "" }', 'state.file: Too small: expected string to have >=1 characters'],
    ['an unknown state field', 'state: { file: /s, dir: /d }', 'state.dir: unknown field'],
  ])('%s', (_name, top, expected) => {
    expect(problem(`${top}\n${flowYaml()}`)).toBe(`config.yaml: ${expected}`);
  });

  it.each([
    ['an event type with a space', 'allowedEvents: ["prometheus alert"]', 'flows.spot.allowedEvents[0]: expected an event type or a glob such as prometheus.server.alert.*'],
    ['no event types', 'allowedEvents: []', 'flows.spot.allowedEvents: expected at least one event type'],
    ['an empty filter list', 'allowedEvents: [a]\nfilters: { node: [] }', 'flows.spot.filters.node: Too small: expected array to have >=1 items'],
    ['an empty { not } list', 'allowedEvents: [a]\nfilters: { node: { not: [] } }', 'flows.spot.filters.node.not: Too small: expected array to have >=1 items'],
    ['an empty groupBy key', 'allowedEvents: [a]\ngroupBy: [""]', 'flows.spot.groupBy[0]: Too small: expected string to have >=1 characters'],
    ['concurrency over 100,000', 'allowedEvents: [a]\nconcurrency: 100001', 'flows.spot.concurrency: Too big: expected number to be <=100000'],
    ['a queue over 10,000,000', 'allowedEvents: [a]\nqueueSize: 10000001', 'flows.spot.queueSize: Too big: expected number to be <=10000000'],
    ['an empty plugin name', 'allowedEvents: [a]\nplugins: [log, ""]', 'flows.spot.plugins[1]: Too small: expected string to have >=1 characters'],
    ['a cooldown over 100 years (one of billions of hours ends past any date: the status API failed while it held)', 'allowedEvents: [a]\ncooldown: 876001h', 'flows.spot.cooldown: expected a duration up to 876000h (100 years)'],
  ])('a flow with %s', (_name, fields, expected) => {
    const withPlugins = fields.includes('plugins:') ? fields : `${fields}\nplugins: [log]`;
    expect(problem(`flows:\n  spot:\n${withPlugins.replace(/^/gm, '    ')}\n`)).toBe(`config.yaml: ${expected}`);
  });

  it.each([
    ['a filter', 'flows:\n  spot:\n    allowedEvents: [a]\n    filters: { __proto__: x, node: n }\n    plugins: [log]', 'flows.spot.filters'],
    ['a flow', `${flowYaml()}  __proto__: { allowedEvents: [a], plugins: [log] }`, 'flows'],
    ['a plugin', `plugins:\n  __proto__: { type: log }\n${flowYaml()}`, 'plugins'],
    ["a step's settings", flowYaml('', '[{ plugin: log, config: { __proto__: 1 } }]'), 'flows.spot.plugins[0].config'],
    ['the top level', `__proto__: { listen: ":1" }\n${flowYaml()}`, ''],
  ])('a key named __proto__ in %s, which the schema dropped without a word', (_name, yaml, at) => {
    expect(problem(yaml)).toBe(`config.yaml: ${at ? `${at}: ` : ''}a key named __proto__ is not read (JavaScript reserves it); rename it`);
  });

  it('an empty key, which names nothing: a filter on it never matched, so its flow never ran', () => {
    expect(problem('flows:\n  spot:\n    allowedEvents: [a]\n    filters: { "": x }\n    plugins: [log]\n')).toBe('config.yaml: flows.spot.filters: an empty key names nothing; remove it or name what it is for');
    expect(problem(`server: { "": 1 }\n${flowYaml()}`)).toBe('config.yaml: server: an empty key names nothing; remove it or name what it is for');
  });

  it('a queue is named on every Node core declares (engines >=20.12): URL.parse came with 20.18', () => {
    const parse = URL.parse;
    // What Node 20.12 to 20.17 have: no URL.parse.
    delete (URL as { parse?: unknown }).parse;
    try {
      const { config } = parseConfig(`sources:\n  sqs:\n    - url: https://sqs.us-east-1.amazonaws.com/123456789012/notices\n${flowYaml()}`, 'config.yaml', {});
      expect(sqsQueueName(config.sources.sqs[0]!)).toBe('notices');
    } finally {
      URL.parse = parse;
    }
  });

  it('an SQS visibility timeout over 9h, which every renewal would push past SQS\'s 12h cap on a message\'s total visibility', () => {
    const queue = (visibilityTimeout: string): string => `sources:\n  sqs:\n    - { url: "https://sqs.us-east-1.amazonaws.com/123456789012/q", visibilityTimeout: ${visibilityTimeout} }\n${flowYaml()}`;
    expect(parseConfig(queue('9h'), 'config.yaml', {}).config.sources.sqs[0]!.visibilityTimeout).toBe(32_400_000);
    expect(problem(queue('9h1s'))).toBe(
      "config.yaml: sources.sqs[0].visibilityTimeout: expected whole seconds from 1s to 9h: renewed every third of it while a run is in progress, a longer timeout passes SQS's 12h cap on a message's total visibility at its first renewal",
    );
  });

  it('an SQS queue whose region is not the one its URL names: every call would be refused, as signed for another region', () => {
    const queue = (url: string, region: string): string => `sources:\n  sqs:\n    - { url: "${url}", region: ${region} }\n${flowYaml()}`;
    expect(problem(queue('https://sqs.us-east-1.amazonaws.com/123456789012/q', 'eu-west-1'))).toBe(
      "config.yaml: sources.sqs[0].region: not the region the queue URL names (sqs.<region>.amazonaws.com): SQS refuses every call signed for another region; leave region out to take the URL's",
    );
    expect(problem(queue('https://eu-west-1.queue.amazonaws.com/123456789012/q', 'us-east-1'))).toMatch(/^config\.yaml: sources\.sqs\[0\]\.region: not the region/);
    // The FIPS, dual-stack and VPC endpoint forms name their region too.
    for (const host of ['sqs-fips.us-east-1.amazonaws.com', 'sqs.us-east-1.api.aws', 'vpce-0a1b2c3d4e5f60718-abcdefgh.sqs.us-east-1.vpce.amazonaws.com']) {
      expect(problem(queue(`https://${host}/123456789012/q`, 'eu-west-1'))).toMatch(/^config\.yaml: sources\.sqs\[0\]\.region: not the region/);
    }
    // China's hosts, under amazonaws.com.cn.
    for (const host of ['sqs.cn-north-1.amazonaws.com.cn', 'cn-north-1.queue.amazonaws.com.cn']) {
      expect(problem(queue(`https://${host}/123456789012/q`, 'eu-west-1'))).toMatch(/^config\.yaml: sources\.sqs\[0\]\.region: not the region/);
    }
    // A host that only holds an SQS host's form (one's own proxy) names no region: the entry's is taken.
    for (const host of ['sqs.us-east-1.amazonaws.com.proxy.example', 'my-sqs.us-east-1.amazonaws.com', 'x.us-east-1.queue.amazonaws.com.example']) {
      expect(parseConfig(queue(`https://${host}/123456789012/q`, 'eu-west-1'), 'config.yaml', {}).config.sources.sqs[0]!.region).toBe('eu-west-1');
    }
    // The same region, or a URL that names none (an endpoint of one's own), is what it was.
    expect(parseConfig(queue('https://sqs.us-east-1.amazonaws.com/123456789012/q', 'us-east-1'), 'config.yaml', {}).config.sources.sqs[0]!.region).toBe('us-east-1');
    expect(parseConfig(queue('http://127.0.0.1:4566/000000000000/q', 'eu-west-1'), 'config.yaml', {}).config.sources.sqs[0]!.region).toBe('eu-west-1');
  });

  it('a YAML error gives its line and column and the reason, without the code frame', () => {
    expect(problem(`${'# comment\n'.repeat(10)}flows: { spot: 1, spot: 2 }\n`)).toBe('config.yaml: line 11, column 19: flows.spot is written twice (a key is written once in a mapping)');
    expect(problem('flows: {}\nflows: {}\n')).toBe('config.yaml: line 2, column 1: flows is written twice (a key is written once in a mapping)');
  });

  it('a value under a tag yaml does not know is an error, not the text after the tag', () => {
    const auth = (value: string) => `server:\n  auth: { bearerToken: ${value} }\n${flowYaml()}`;
    expect(problem(auth('!env TOKEN'), { TOKEN: 'secret' })).toBe(
      'config.yaml: line 2, column 24: Unresolved tag: !env (no tags are read here; write ${VAR} for a value from the environment)',
    );
    expect(problem(auth('!vault "$ANSIBLE_VAULT;1.1;AES256"'))).toBe(
      'config.yaml: line 2, column 24: Unresolved tag: !vault (no tags are read here; write ${VAR} for a value from the environment)',
    );
    expect(problem(flowYaml().replace('plugins: [log]', 'plugins: [log]\n    concurrency: !!float 5'))).toMatch(/^config\.yaml: line 6, column 18: Unresolved tag: tag:yaml\.org,2002:float/);
  });

  it('a document that is a single value', () => {
    expect(problem('just text\n')).toBe('config.yaml: expected a YAML mapping with server, log, plugins and flows, got a string');
    expect(problem('42\n')).toBe('config.yaml: expected a YAML mapping with server, log, plugins and flows, got a number');
  });
});

describe('loadConfigFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hollowtrees-config-'));

  it('reads and validates a file, naming it as the source', async () => {
    const file = join(dir, 'config.yaml');
    writeFileSync(file, flowYaml());
    const loaded = await loadConfigFile(file, {});
    expect([loaded.file, loaded.config.flows.spot?.plugins]).toEqual([file, [{ plugin: 'log', config: {} }]]);
  });

  it('a file that cannot be read is a ConfigError naming it and the reason', async () => {
    const file = join(dir, 'missing.yaml');
    await expect(loadConfigFile(file)).rejects.toThrow(new ConfigError(file, [{ path: '', message: 'cannot read file: no such file or directory (ENOENT)' }]));
    await expect(loadConfigFile(file)).rejects.toThrow(`${file}: cannot read file: no such file or directory (ENOENT)`);
  });
});
