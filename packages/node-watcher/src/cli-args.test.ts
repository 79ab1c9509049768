import { writeFile } from 'node:fs/promises';
import { UsageError } from '@hollowtrees/grpcplugin';
import { tempDir } from '@hollowtrees/testkit';
import { describe, expect, it } from 'vitest';
import { parseCliArgs } from './cli-args.js';

describe('parseCliArgs', () => {
  it('takes the defaults, NODE_NAME and HOLLOWTREES_CORE_URL from the environment', () => {
    expect(parseCliArgs([], { HOLLOWTREES_CORE_URL: 'http://core:9092', NODE_NAME: 'ip-10-0-1-23' })).toEqual({
      kind: 'run',
      settings: {
        coreUrl: 'http://core:9092',
        auth: undefined,
        ca: undefined,
        cloud: undefined,
        metadataUrl: undefined,
        pollIntervalMs: undefined,
        azureEventTypes: ['Preempt', 'Terminate'],
        azureApprove: false,
        maxResends: 3,
        listen: '127.0.0.1:9102',
        stopGraceMs: 25_000,
        once: false,
        dryRun: false,
        logLevel: 'info',
        nodeName: 'ip-10-0-1-23',
        stateFile: undefined,
      },
    });
  });

  it('--core-url wins over HOLLOWTREES_CORE_URL; durations and lists are read', () => {
    const command = parseCliArgs(['--core-url', 'https://a:1', '--poll-interval', '500ms', '--azure-event-types', 'Preempt,Reboot', '--cloud', 'azure', '--listen', '[::1]:0', '--stop-grace', '10s'], { HOLLOWTREES_CORE_URL: 'http://b:2' });
    expect(parseCliArgs(['--dry-run', '--max-resends', '0'], {})).toMatchObject({ settings: { maxResends: 0 } });
    expect(parseCliArgs(['--dry-run', '--once', '--max-resends', '0'], {})).toMatchObject({ settings: { maxResends: 0, once: true } });
    expect(command).toMatchObject({ kind: 'run', settings: { coreUrl: 'https://a:1', pollIntervalMs: 500, azureEventTypes: ['Preempt', 'Reboot'], cloud: 'azure', listen: '[::1]:0', stopGraceMs: 10_000 } });
    // --state-file with Google Cloud named, or with the cloud left to detect (the shipped units pass it on every cloud).
    for (const cloud of [['--cloud', 'gcp'], []]) expect(parseCliArgs(['--dry-run', ...cloud, '--state-file', '/run/hollowtrees/watcher.json'], {})).toMatchObject({ settings: { stateFile: '/run/hollowtrees/watcher.json' } });
  });

  it('--poll-interval takes every duration its error message names, up to 1h, written as the configuration writes durations', () => {
    const interval = (text: string): unknown => parseCliArgs(['--dry-run', '--poll-interval', text], {});
    expect(interval('1h')).toMatchObject({ settings: { pollIntervalMs: 3_600_000 } });
    expect(interval('1m30s')).toMatchObject({ settings: { pollIntervalMs: 90_000 } });
    expect(interval('10ms')).toMatchObject({ settings: { pollIntervalMs: 10 } });
    expect(() => interval('2h')).toThrow('--poll-interval must be a duration from 10ms to 1h such as 2s or 500ms, got "2h"');
  });

  it('needs no core URL with --dry-run', () => {
    expect(parseCliArgs(['--dry-run'], {})).toMatchObject({ kind: 'run', settings: { coreUrl: undefined, dryRun: true } });
  });

  it.each([
    [['--core-url', 'http://core:9092', '--bogus'], /Unknown option '--bogus'/],
    [['--core-url', 'http://core:9092', 'extra'], /Unexpected argument 'extra'/],
    [['--core-url', 'http://core:9092', '--cloud', 'ibm'], /--cloud must be one of aws, gcp, azure, got "ibm"/],
    [['--core-url', 'http://core:9092', '--poll-interval', '2'], /--poll-interval must be a duration from 10ms to 1h such as 2s or 500ms, got "2"/],
    [['--core-url', 'http://core:9092', '--poll-interval', '1ms'], /--poll-interval must be a duration from 10ms to 1h/],
    [['--core-url', 'http://core:9092', '--stop-grace', '30'], /--stop-grace must be a duration from 10ms to 1h such as 2s or 500ms, got "30"/],
    [['--core-url', 'core:9092'], /--core-url must be an http:\/\/ or https:\/\/ URL, got "core:9092"/],
    [['--core-url', 'http://core:9092/api/v1/events'], /--core-url is core's base URL, without \/api\/v1\/events, got "http:\/\/core:9092\/api\/v1\/events"/],
    [['--core-url', 'https://ops.example/hollowtrees/api/v1/events/'], /--core-url is core's base URL, without \/api\/v1\/events/],
    [['--core-url', 'http://core:9092', '--listen', '9102'], /--listen: expected host:port, got "9102"/],
    [['--core-url', 'http://core:9092', '--listen', 'a:99999'], /--listen: expected host:port, got "a:99999"/],
    [['--core-url', 'http://core:9092', '--token-file', '/nonexistent/token'], /--token-file: cannot read \/nonexistent\/token/],
    [['--core-url', 'http://core:9092', '--token-file', '/a', '--basic-auth-file', '/b'], /--token-file and --basic-auth-file exclude each other/],
    [['--core-url', 'http://core:9092', '--azure-event-types', 'Preempt,Explode'], /--azure-event-types must be one of Preempt, Terminate, Reboot, Redeploy, Freeze, got "Explode"/],
    [['--core-url', 'http://core:9092', '--log-level', 'loud'], /--log-level must be one of trace, debug, info, warn, error, fatal, silent, got "loud"/],
    [[], /--core-url \(or HOLLOWTREES_CORE_URL\) is required unless --dry-run/],
    [['--core-url', 'http://core:9092', '--cloud', 'aws', '--azure-approve'], /--azure-approve is for Azure, not --cloud aws/],
    [['--core-url', 'http://core:9092', '--once', '--azure-approve'], /--azure-approve cannot go with --once: it approves once the flow runs of a delivered event succeeded, and --once exits as soon as core accepted the event/],
    [['--core-url', 'http://core:9092', '--once', '--max-resends', '2'], /--max-resends cannot go with --once: it sends a notice again once a flow run of it failed, and --once exits as soon as core accepted the event/],
    [['--core-url', 'http://core:9092', '--max-resends', '101'], /--max-resends must be an integer from 0 to 100, got "101"/],
    [['--core-url', 'http://core:9092', '--cloud', 'aws', '--state-file', '/run/w/occurrences.json'], /--state-file is for Google Cloud, not --cloud aws: the other clouds' notices carry ids of their own/],
    [['--core-url', 'http://core:9092', '--cloud', 'azure', '--state-file', '/run/w/occurrences.json'], /--state-file is for Google Cloud, not --cloud azure/],
    [['--core-url', 'http://core:9092', '--once', '--state-file', '/run/w/occurrences.json'], /--state-file cannot go with --once: a single check keeps no occurrences from one run to the next/],
  ])('refuses %j with a message that names the flag', (args, message) => {
    expect(() => parseCliArgs(args, {})).toThrow(UsageError);
    expect(() => parseCliArgs(args, {})).toThrow(message);
  });

  it.each([['https://ops:s3cr3t@core:9092'], ['https://s3cr3t@core:9092']])('refuses credentials in --core-url (%s), which every log line naming the URL would carry, without echoing them', (url) => {
    expect(() => parseCliArgs(['--core-url', url], {})).toThrow(UsageError);
    expect(() => parseCliArgs(['--core-url', url], {})).toThrow(/--core-url must hold no credentials, which would be logged with it: put them in --basic-auth-file \(user:password\) or --token-file; got "https:\/\/\*\*\*(:\*\*\*)?@core:9092\/"/);
    expect(() => parseCliArgs([], { HOLLOWTREES_CORE_URL: url })).toThrow(/HOLLOWTREES_CORE_URL must hold no credentials, which would be logged with it: put them in --basic-auth-file \(user:password\) or --token-file; got "https:\/\/\*\*\*(:\*\*\*)?@core:9092\/"/);
    expect(() => parseCliArgs(['--core-url', url], {})).not.toThrow(/s3cr3t/);
  });

  it.each([
    ['core:9092', /^HOLLOWTREES_CORE_URL must be an http:\/\/ or https:\/\/ URL, got "core:9092"$/],
    ['http://core:9092/api/v1/events', /^HOLLOWTREES_CORE_URL is core's base URL, without \/api\/v1\/events, got "http:\/\/core:9092\/api\/v1\/events"$/],
  ])('refuses a bad HOLLOWTREES_CORE_URL (%s) naming the variable, not a --core-url the command line never had', (url, message) => {
    expect(() => parseCliArgs([], { HOLLOWTREES_CORE_URL: url })).toThrow(message);
  });

  it('refuses a basic-auth file without user:password', async () => {
    const dir = await tempDir('watcher-args');
    try {
      await writeFile(`${dir.path}/basic`, 'just-a-password\n');
      expect(() => parseCliArgs(['--core-url', 'http://c:1', '--basic-auth-file', `${dir.path}/basic`], {})).toThrow(/--basic-auth-file: .* must hold user:password/);
    } finally {
      await dir.remove();
    }
  });
});
