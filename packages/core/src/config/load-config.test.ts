import { describe, expect, it } from 'vitest';
import { ConfigError } from './config-error.js';
import { defaultConfig } from './default-config.js';
import { parseConfig } from './load-config.js';

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

  it('a deprecated global.bindAddr from the environment stays hidden where it becomes server.listen', () => {
    const { config, display } = parseConfig(`global: { bindAddr: "\${ADDR}" }\n${flowYaml()}`, 'config.yaml', { ADDR: '10.1.2.3:9092' });
    expect(config.server.listen).toBe('10.1.2.3:9092');
    expect(display.plain('server.listen', config.server.listen)).toBe('${ADDR}');
  });

  it('an empty variable counts as unset', () => {
    expect(problem(`server: { listen: "\${LISTEN}" }\n${flowYaml()}`, { LISTEN: '' })).toContain('server.listen: environment variable LISTEN is not set');
  });

  it.each(['127.0.0.1:9000', 'drain.hollowtrees.svc:9000', '[::1]:9000', 'unix:/run/hollowtrees/drain.sock', 'dns:///drain:9000'])('accepts the plugin address %s', (address) => {
    expect(parseConfig(`plugins:\n  x: { type: grpc, address: "${address}" }\n${flowYaml()}`, 'config.yaml', {}).config.plugins.x).toMatchObject({ address });
  });

  it('accepts the original global.bindAddr with a deprecation warning', () => {
    const loaded = parseConfig(`global: { bindAddr: "0.0.0.0:9191" }\n${flowYaml()}`, 'config.yaml');
    expect(loaded.config.server.listen).toBe('0.0.0.0:9191');
    expect(loaded.warnings).toEqual(['config.yaml: global.bindAddr is deprecated; write server.listen instead']);
  });

  it('server.listen wins over global.bindAddr', () => {
    const loaded = parseConfig(`global: { bindAddr: "0.0.0.0:9191" }\nserver: { listen: "127.0.0.1:1" }\n${flowYaml()}`, 'config.yaml');
    expect(loaded.config.server.listen).toBe('127.0.0.1:1');
  });

  it('the embedded default is valid: receiver on 127.0.0.1:9092, a demo flow into log', () => {
    const { config, file } = defaultConfig();
    expect(file).toBe('<embedded default>');
    expect(config.server.listen).toBe('127.0.0.1:9092');
    expect(config.flows.demo?.plugins).toEqual(['log']);
  });

  it.each([
    ['an unknown plugin, with the known ones', `plugins:\n  k8s-drain: { type: grpc, address: "a:1" }\n${flowYaml('', '[log, k8s-drian]')}`, 'config.yaml: flows.spot.plugins[1]: unknown plugin "k8s-drian" (known: k8s-drain, log)'],
    ['broken YAML, with its line', 'flows:\n  spot: [unclosed\n', 'config.yaml: line 3, column 1:'],
    ['a duplicate key', 'flows: {}\nflows: {}\n', 'config.yaml: line 2, column 1: Map keys must be unique'],
    ['a list at the top', '- a\n- b\n', 'config.yaml: expected a YAML mapping with server, log, plugins and flows'],
    ['no flows', 'server: {}\n', 'config.yaml: flows: required (expected record)'],
    ['a bad duration', flowYaml('').replace('plugins: [log]', 'plugins: [log]\n    cooldown: 5 minutes'), 'config.yaml: flows.spot.cooldown: expected a duration like 30s, 5m or 1h30m, got "5 minutes"'],
    ['a duration given as a number', flowYaml('').replace('plugins: [log]', 'plugins: [log]\n    cooldown: 300'), 'config.yaml: flows.spot.cooldown: Invalid input: expected string, received number'],
    ['an unknown field (a typo)', flowYaml('').replace('plugins: [log]', 'plugins: [log]\n    groupby: [instance_id]'), 'config.yaml: flows.spot.groupby: unknown field'],
    ['no allowedEvents', 'flows:\n  spot:\n    plugins: [log]\n', 'config.yaml: flows.spot.allowedEvents: required (expected array)'],
    ['an empty plugin list', flowYaml('', '[]'), 'config.yaml: flows.spot.plugins: expected at least one plugin'],
    ['a plugin address without a port (grpc-js would dial 443)', `plugins:\n  x: { type: grpc, address: "drain" }\n${flowYaml()}`, 'config.yaml: plugins.x.address: expected HOST:PORT of the plugin, e.g. 127.0.0.1:9000, or a gRPC target such as unix:/run/plugin.sock, got "drain"'],
    ['a plugin address with port 0', `plugins:\n  x: { type: grpc, address: "127.0.0.1:0" }\n${flowYaml()}`, 'config.yaml: plugins.x.address: expected HOST:PORT of the plugin'],
    ['a plugin address without a host', `plugins:\n  x: { type: grpc, address: ":9000" }\n${flowYaml()}`, 'config.yaml: plugins.x.address: expected HOST:PORT of the plugin'],
    ['a plugin without type', `plugins:\n  x: { address: "a:1" }\n${flowYaml()}`, 'config.yaml: plugins.x.type: expected type: grpc or type: log'],
    ['a grpc plugin without address', `plugins:\n  x: { type: grpc }\n${flowYaml()}`, 'config.yaml: plugins.x.address: required (expected string)'],
    ['a receiver timeout of zero (Node would read it as none)', `server: { timeouts: { body: 0s } }\n${flowYaml()}`, 'config.yaml: server.timeouts.body: expected a duration from 100ms to 1h'],
    ['a receiver timeout that is not a duration', `server: { timeouts: { idle: forever } }\n${flowYaml()}`, 'config.yaml: server.timeouts.idle: expected a duration like 30s, 5m or 1h30m, got "forever"'],
    ['a bad listen address', `server: { listen: "localhost" }\n${flowYaml()}`, 'config.yaml: server.listen: expected HOST:PORT with a port from 0 to 65535, e.g. 127.0.0.1:9092 (this machine only) or :9092 (all IPv4 interfaces), got "localhost"'],
    ['a bare port as listen address (loopback or everywhere? not guessed)', `server: { listen: "9099" }\n${flowYaml()}`, 'config.yaml: server.listen: expected HOST:PORT with a port from 0 to 65535, e.g. 127.0.0.1:9092 (this machine only) or :9092 (all IPv4 interfaces), got "9099"'],
    ['a bad filter regex', flowYaml('').replace('plugins: [log]', 'plugins: [log]\n    filters: { node: { regex: "([" } }'), 'config.yaml: flows.spot.filters.node.regex: expected a valid regular expression'],
    ['a filter of the wrong shape', flowYaml('').replace('plugins: [log]', 'plugins: [log]\n    filters: { node: 5 }'), 'config.yaml: flows.spot.filters.node: expected a string, a list of strings, { not: ... } or { regex: ... }'],
    ['retry attempts of zero', `plugins:\n  x: { type: grpc, address: "a:1", retry: { attempts: 0 } }\n${flowYaml()}`, 'config.yaml: plugins.x.retry.attempts: Too small: expected number to be >=1'],
    ['an unset environment variable', `server: { listen: "\${LISTEN}" }\n${flowYaml()}`, 'config.yaml: server.listen: environment variable LISTEN is not set (write ${LISTEN:-default} for a default)'],
    ['a log level that does not exist', `log: { level: loud }\n${flowYaml()}`, 'config.yaml: log.level: Invalid option: expected one of'],
    ['a plugin client certificate without its key', `plugins:\n  x: { type: grpc, address: "a:1", tls: { cert: /c.pem } }\n${flowYaml()}`, 'config.yaml: plugins.x.tls: cert and key must be given together'],
    ['a port above 65535', `server: { listen: "127.0.0.1:70000" }\n${flowYaml()}`, 'config.yaml: server.listen: expected HOST:PORT with a port from 0 to 65535, e.g. 127.0.0.1:9092 (this machine only) or :9092 (all IPv4 interfaces), got "127.0.0.1:70000"'],
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
});
