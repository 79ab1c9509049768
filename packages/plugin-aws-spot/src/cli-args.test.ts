import { describe, expect, it } from 'vitest';
import { parseCliArgs, UsageError } from './cli-args.js';
import { REGION_EXAMPLE } from './region-name.js';

/** A pattern that matches `message` alone. */
const exactly = (message: string): RegExp => new RegExp(`^${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);

describe('parseCliArgs', () => {
  it('applies the defaults', () => {
    expect(parseCliArgs([])).toEqual({
      kind: 'serve',
      port: 9001,
      serve: { host: '127.0.0.1', shutdownTimeoutMs: 310_000 },
      handler: { onDemandFallback: true, dryRun: false, retry: { maxAttempts: 4 } },
    });
  });

  it('on SIGTERM waits for calls in flight as long as a pool call waits (--pool-wait-timeout) and 10 s to answer, not the SDK\'s 30 s', () => {
    expect(parseCliArgs(['--shutdown-timeout', '1m30s', '--pool-wait-timeout', '10m'])).toMatchObject({ serve: { shutdownTimeoutMs: 90_000 } });
    expect(() => parseCliArgs(['--shutdown-timeout', 'later'])).toThrow(/^--shutdown-timeout must be a duration up to 24h \(e\.g\. 2m\), got "later"$/);
    expect(() => parseCliArgs(['--shutdown-timeout', '25h'])).toThrow(/^--shutdown-timeout must be a duration up to 24h/);
  });

  it('reads every handler flag', () => {
    const command = parseCliArgs([
      '--port=0',
      '--host',
      '127.0.0.1',
      '--region',
      'eu-west-1',
      '--endpoint',
      'http://127.0.0.1:4566',
      '--strategy',
      'fleet',
      '--instance-types',
      'm5.large, m6i.large',
      '--spot-only',
      '--dry-run',
      '--max-attempts',
      '2',
      '--max-sockets',
      '256',
      '--complete-lifecycle-hooks',
      'after-drain',
      '--pool-tag',
      'kubernetes.io/cluster/prod=owned',
      '--pool-subnets',
      'subnet-b,subnet-c',
      '--pool-wait-timeout',
      '2m30s',
      '--pool-fleet-concurrency',
      '8',
    ]);
    expect(command).toEqual({
      kind: 'serve',
      port: 0,
      serve: { host: '127.0.0.1', shutdownTimeoutMs: 160_000 },
      handler: {
        region: 'eu-west-1',
        endpoint: 'http://127.0.0.1:4566',
        strategy: 'fleet',
        instanceTypes: ['m5.large', 'm6i.large'],
        onDemandFallback: false,
        dryRun: true,
        retry: { maxAttempts: 2 },
        maxSockets: 256,
        completeLifecycleHooks: 'after-drain',
        pool: { tag: 'kubernetes.io/cluster/prod=owned', subnets: ['subnet-b', 'subnet-c'], waitTimeoutMs: 150_000, fleetConcurrency: 8 },
      },
    });
  });

  it('asks for help', () => {
    expect(parseCliArgs(['-h'])).toEqual({ kind: 'help' });
    expect(parseCliArgs(['--version'])).toEqual({ kind: 'version' });
  });

  it.each([
    [['--bogus'], /Unknown option '--bogus'/],
    [['extra'], /Unexpected argument 'extra'/],
    [['--port', '70000'], /--port must be an integer from 0 to 65535/],
    [['--strategy', 'magic'], /--strategy must be one of auto, asg-detach, fleet/],
    [['--endpoint', 'not a url'], /--endpoint must be a URL/],
    [['--max-sockets', '0'], /--max-sockets must be an integer from 1 to 10000/],
    [['--complete-lifecycle-hooks', 'sometimes'], /--complete-lifecycle-hooks must be always or after-drain, got "sometimes"/],
    [['--instance-types', ','], /at least one instance type/],
    [['--pool-tag', 'cluster'], /--pool-tag must be key=value, got "cluster"/],
    [['--pool-subnets', ' , '], /--pool-subnets needs at least one subnet/],
    [['--pool-wait-timeout', '5 minutes'], /--pool-wait-timeout must be a duration/],
    // 0s gave up on every pool call's replacements at once; 1000h made the default --shutdown-timeout a timer Node cannot keep, refused only after loading the SDK and naming serve's option, not the flag.
    [['--pool-wait-timeout', '0s'], /^--pool-wait-timeout must be a duration from 1s to 24h \(e\.g\. 90s, 5m\), got "0s"$/],
    [['--pool-wait-timeout', '1000h'], /^--pool-wait-timeout must be a duration from 1s to 24h \(e\.g\. 90s, 5m\), got "1000h"$/],
    [['--pool-fleet-concurrency', '0'], /--pool-fleet-concurrency must be an integer from 1 to 100/],
    [['--tls-cert', 'a.pem'], /--tls-cert and --tls-key go together/],
    [['--tls-refresh', '1m'], /^--tls-refresh needs --tls-cert and --tls-key$/],
    [['--tls-cert', '/nonexistent/a.pem', '--tls-key', '/nonexistent/b.pem', '--tls-refresh', '500ms'], /^--tls-refresh must be a duration from 1s to 24h \(e\.g\. 1m\), got "500ms"$/],
    [['--tls-cert', '/nonexistent/a.pem', '--tls-key', '/nonexistent/b.pem'], /^TLS file --tls-cert \/nonexistent\/a\.pem: cannot read it: ENOENT$/],
    // An unset variable in a unit file: an empty region would reach the SDK instead of AWS_REGION's.
    [['--region', ''], /^--region needs a value, got ""$/],
    // The SDK took these (one DNS label each) and failed every call later, naming no flag; the blank one only after loading the SDK.
    ...['eu west 1', 'EU-WEST-1', 'us-east-1x!', 'us-east-1a', 'local', 'eu/west-1'].map((region) => [['--region', region], exactly(`--region must be an AWS region name ${REGION_EXAMPLE}, got "${region}"`)] as [string[], RegExp]),
  ])('refuses %j', (argv, message) => {
    expect(() => parseCliArgs(argv)).toThrow(UsageError);
    expect(() => parseCliArgs(argv)).toThrow(message);
  });

  it.each(['us-east-1', 'us-gov-west-1', 'cn-north-1', 'eu-central-2', 'il-central-1', 'ap-southeast-5', 'us-isob-east-1', 'eusc-de-east-1'])(
    'takes the region %s, in every partition',
    (region) => {
      expect(parseCliArgs(['--region', region])).toMatchObject({ handler: { region } });
    },
  );
});
