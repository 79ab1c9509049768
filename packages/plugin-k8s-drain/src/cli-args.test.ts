import { describe, expect, it } from 'vitest';
import { parseCliArgs, UsageError } from './cli-args.js';

describe('parseCliArgs', () => {
  it('maps flags to drain options and leaves unset ones to the defaults', () => {
    expect(
      parseCliArgs(['--port', '9100', '--dry-run', '--taint', 'spot=gone:NoExecute', '--delete-emptydir-data', 'false', '--node-not-found', 'skip']),
    ).toEqual({
      kind: 'serve',
      port: 9100,
      host: '127.0.0.1',
      tls: undefined,
      shutdownTimeoutMs: 130_000,
      kubeconfig: undefined,
      context: undefined,
      drain: { dryRun: true, taint: { key: 'spot', value: 'gone', effect: 'NoExecute' }, deleteEmptyDirData: false, nodeNotFound: 'skip' },
    });
    expect(parseCliArgs(['-h'])).toEqual({ kind: 'help' });
    expect(parseCliArgs(['-v'])).toEqual({ kind: 'version' });
    expect(parseCliArgs(['--max-in-flight', '128', '--watch-cache', 'false'])).toMatchObject({ drain: { maxInFlight: 128, watchCache: false } });
    expect(parseCliArgs(['--pool-max-unavailable', '3', '--pool-min-interval', '1m30s', '--pool-namespace', 'ops'])).toMatchObject({ drain: { poolMaxUnavailable: 3, poolMinIntervalMs: 90_000, poolNamespace: 'ops' } });
    expect(parseCliArgs(['--deletion-poll-ms', '1', '--reply-margin-ms', '0', '--termination-margin-ms', '0', '--max-drain-ms', '86400000'])).toMatchObject({
      drain: { deletionPollMs: 1, replyMarginMs: 0, terminationMarginMs: 0, maxDrainMs: 86_400_000 },
    });
  });

  it('on SIGTERM waits for drains in flight as long as one may run (--max-drain-ms) and 10 s to answer, not the SDK\'s 30 s', () => {
    expect(parseCliArgs(['--max-drain-ms', '300000'])).toMatchObject({ shutdownTimeoutMs: 310_000 });
    expect(parseCliArgs(['--shutdown-timeout', '3m', '--max-drain-ms', '300000'])).toMatchObject({ shutdownTimeoutMs: 180_000 });
    expect(() => parseCliArgs(['--shutdown-timeout', 'soon'])).toThrow(/^--shutdown-timeout: "soon" is not a duration such as 30s or 1m30s$/);
    expect(() => parseCliArgs(['--shutdown-timeout', '25h'])).toThrow(/^--shutdown-timeout: "25h" is over 24h$/);
  });

  it.each([
    [['--bogus'], /Unknown option '--bogus'/],
    [['--port', 'x'], /--port must be an integer from 0 to 65535, got "x"/],
    [['--taint', 'nokey'], /--taint: taint "nokey" is not key=value:Effect/],
    [['--wait-for-deletion', 'yes'], /--wait-for-deletion must be true or false/],
    [['--watch-cache', 'on'], /--watch-cache must be true or false/],
    [['--max-in-flight', '0'], /--max-in-flight must be at least 1/],
    [['--tls-cert', 'a.pem'], /--tls-cert and --tls-key go together/],
    [['--tls-refresh', '1m'], /^--tls-refresh needs --tls-cert and --tls-key$/],
    [['--tls-cert', '/nonexistent/a.pem', '--tls-key', '/nonexistent/b.pem', '--tls-refresh', '500ms'], /^--tls-refresh must be a duration from 1s to 24h \(e\.g\. 1m\), got "500ms"$/],
    [['--pool-max-unavailable', '0'], /--pool-max-unavailable must be at least 1/],
    [['--pool-min-interval', '30'], /--pool-min-interval: "30" is not a duration such as 30s or 1m30s/],
    [['--pool-min-interval', '720h'], /^--pool-min-interval: "720h" is over 24h$/],
    [['--deletion-poll-ms', '0'], /^--deletion-poll-ms must be an integer from 1 to 86400000, got "0"$/],
    [['--max-drain-ms', '0'], /^--max-drain-ms must be an integer from 1 to 86400000, got "0"$/],
    [['--max-drain-ms', '2592000000'], /^--max-drain-ms must be an integer from 1 to 86400000, got "2592000000"$/],
    [['--reply-margin-ms=-1'], /^--reply-margin-ms must be an integer from 0 to 86400000, got "-1"$/],
    [['--termination-margin-ms', '1.5'], /^--termination-margin-ms must be an integer from 0 to 86400000, got "1.5"$/],
    // An unset variable in a unit file: not the default chain's kubeconfig, which may be another cluster's.
    [['--kubeconfig', ''], /^--kubeconfig needs a value, got ""$/],
    [['--context='], /^--context needs a value, got ""$/],
  ])('rejects %j as bad usage', (argv, message) => {
    expect(() => parseCliArgs(argv)).toThrow(UsageError);
    expect(() => parseCliArgs(argv)).toThrow(message);
  });
});
