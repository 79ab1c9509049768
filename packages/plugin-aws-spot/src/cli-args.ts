import type { ServeOptions } from '@hollowtrees/grpcplugin';
import { durationFlag, integerFlag, parseFlags, shutdownTimeoutAfter, tlsFlagFiles, UsageError, type InfoCommand } from '@hollowtrees/grpcplugin/without-grpc';
import { commaList, DEFAULT_POOL_WAIT_MS, parseTagFilter, type PoolOptions } from './pool-settings.js';
import type { AwsSpotReplaceOptions } from './replace-handler.js';
import { isRegionName, REGION_EXAMPLE } from './region-name.js';
import { REPLACEMENT_STRATEGIES, type ReplacementStrategy } from './replacement-strategy.js';

/** The bin's usage text. */
export const USAGE = `Usage: hollowtrees-aws-spot [options]

Serves the Hollowtrees AWS spot replacement plugin over gRPC.

Options:
  --port <n>              port to listen on (default 9001; 0 picks a free one)
  --host <addr>           address to bind (default 127.0.0.1; another address without mTLS lets
                          anyone who reaches the port ask for a replacement, and is logged)
  --region <r>            region for events without labels.region (default: AWS_REGION, then the
                          profile's region; none at all exits 2)
  --endpoint <url>        EC2 and Auto Scaling endpoint, for stand-ins and demos (default: AWS)
  --strategy <s>          auto | asg-detach | fleet (default auto)
  --instance-types <list> comma-separated types for fleet replacements
                          (default: the old type, then the same size in sibling families)
  --spot-only             never fall back to on-demand when spot has none to give
  --dry-run               check with EC2's DryRun and log; change nothing
  --max-attempts <n>      attempts per AWS call, the first included (default 4)
  --max-sockets <n>       connections per AWS endpoint; more calls wait, and a long wait is logged (default 128)
  --complete-lifecycle-hooks always|after-drain
                          complete a Terminating:Wait member's lifecycle actions always, or only after the
                          k8s-drain plugin drained its node earlier in the same run (default always)
Pool mode (a flow's plugin config mode: pool; the flow's config tag, subnets and waitTimeout override):
  --pool-tag <key=value>  only instances with this tag belong to a pool (e.g. the cluster's tag;
                          default: every spot instance of the zone and type)
  --pool-subnets <list>   comma-separated subnets, e.g. the cluster's in other zones, where replacements
                          may launch too (default: only other instance types in the old instance's subnet)
  --pool-wait-timeout <d> how long a call waits for the replacements to run, at most, 1s to 24h (default
                          5m; the call's deadline also bounds it)
  --pool-fleet-concurrency <n>
                          CreateFleet calls in flight at once (default 4)

  --tls-cert <file>       serve TLS with this certificate chain (PEM) ...
  --tls-key <file>        ... and this private key (PEM)
  --tls-ca <file>         require client certificates signed by this CA (mTLS)
  --tls-refresh <d>       read the TLS files again this often, so a renewed certificate is served
                          without a restart, 1s to 24h (default 1m)
  --shutdown-timeout <d>  on SIGTERM, how long calls in flight may go on before they are cut short,
                          up to 24h (default --pool-wait-timeout plus 10s, 5m10s: a pool call at its longest)
  -v, --version           print the version
  -h, --help              show this help

Credentials come from the AWS SDK's default chain (environment, profile, web identity, IMDS).`;

export { UsageError };

/** What the bin runs with. */
export type CliCommand = InfoCommand | ServeCommand;

/** What the bin serves with. */
export interface ServeCommand {
  readonly kind: 'serve';
  readonly port: number;
  /** serve()'s options; `host` always set, as `--host` gives it or 127.0.0.1. */
  readonly serve: ServeOptions & { readonly host: string };
  readonly handler: AwsSpotReplaceOptions;
}

function strategy(value: string | undefined): ReplacementStrategy | undefined {
  if (value === undefined) return undefined;
  const found = REPLACEMENT_STRATEGIES.find((s) => s === value);
  if (!found) throw new UsageError(`--strategy must be one of ${REPLACEMENT_STRATEGIES.join(', ')}, got "${value}"`);
  return found;
}

function tls(cert: string | undefined, key: string | undefined, ca: string | undefined, refresh: string | undefined): ServeOptions['tls'] {
  if (cert === undefined && key === undefined) {
    if (ca !== undefined) throw new UsageError('--tls-ca needs --tls-cert and --tls-key');
    if (refresh !== undefined) throw new UsageError('--tls-refresh needs --tls-cert and --tls-key');
    return undefined;
  }
  if (cert === undefined || key === undefined) throw new UsageError('--tls-cert and --tls-key go together');
  const files = { cert: { flag: 'tls-cert', path: cert }, key: { flag: 'tls-key', path: key }, ...(ca !== undefined && { ca: { flag: 'tls-ca', path: ca } }) };
  return { files: tlsFlagFiles(files, refresh) };
}

function poolOptions(tag: string | undefined, subnets: string | undefined, waitTimeout: string | undefined, concurrency: string | undefined): PoolOptions | undefined {
  if (tag === undefined && subnets === undefined && waitTimeout === undefined && concurrency === undefined) return undefined;
  if (tag !== undefined) {
    try {
      parseTagFilter(tag);
    } catch (err) {
      throw new UsageError(`--pool-tag ${(err as Error).message}, got "${tag}"`);
    }
  }
  // Up to 24h, as --shutdown-timeout: the default shutdown timeout is this plus 10s, and a timer cannot wait much longer.
  const waitTimeoutMs = durationFlag('pool-wait-timeout', waitTimeout, { min: '1s', max: '24h', example: '90s, 5m' });
  const subnetIds = subnets === undefined ? undefined : commaList(subnets);
  if (subnetIds?.length === 0) throw new UsageError('--pool-subnets needs at least one subnet');
  return {
    ...(tag !== undefined && { tag }),
    ...(subnetIds !== undefined && { subnets: subnetIds }),
    ...(waitTimeoutMs !== undefined && { waitTimeoutMs }),
    ...(concurrency !== undefined && { fleetConcurrency: integerFlag('pool-fleet-concurrency', concurrency, 4, 1, 100) }),
  };
}

/**
 * How long a SIGTERM lets calls in flight go on: not the SDK's 30 s, which cut a pool call waiting for its
 * replacements, so that core retried it (an attempt spent) on the new process.
 */
function shutdownTimeoutMs(flag: string | undefined, pool: PoolOptions | undefined): number {
  if (flag === undefined) return shutdownTimeoutAfter(pool?.waitTimeoutMs ?? DEFAULT_POOL_WAIT_MS);
  return durationFlag('shutdown-timeout', flag, { max: '24h', example: '2m' })!;
}

/** Parses the bin's arguments (without `node` and the script). Throws {@link UsageError}. */
export function parseCliArgs(argv: readonly string[]): CliCommand {
  const v = parseFlags(argv, {
    port: { type: 'string' },
    host: { type: 'string' },
    region: { type: 'string' },
    endpoint: { type: 'string' },
    strategy: { type: 'string' },
    'instance-types': { type: 'string' },
    'spot-only': { type: 'boolean' },
    'dry-run': { type: 'boolean' },
    'max-attempts': { type: 'string' },
    'max-sockets': { type: 'string' },
    'complete-lifecycle-hooks': { type: 'string' },
    'pool-tag': { type: 'string' },
    'pool-subnets': { type: 'string' },
    'pool-wait-timeout': { type: 'string' },
    'pool-fleet-concurrency': { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    'tls-ca': { type: 'string' },
    'tls-refresh': { type: 'string' },
    'shutdown-timeout': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean', short: 'v' },
  });
  if (v.help) return { kind: 'help' };
  if (v.version) return { kind: 'version' };
  // Here, not once the SDK is loaded: a usage error, answered at once and naming the flag.
  if (v.region !== undefined && !isRegionName(v.region)) throw new UsageError(`--region must be an AWS region name ${REGION_EXAMPLE}, got "${v.region}"`);
  if (v.endpoint !== undefined && !URL.canParse(v.endpoint)) throw new UsageError(`--endpoint must be a URL, got "${v.endpoint}"`);
  const instanceTypes = v['instance-types'] === undefined ? undefined : commaList(v['instance-types']);
  if (instanceTypes?.length === 0) throw new UsageError('--instance-types needs at least one instance type');
  const serveTls = tls(v['tls-cert'], v['tls-key'], v['tls-ca'], v['tls-refresh']);
  const chosenStrategy = strategy(v.strategy);
  const hooks = v['complete-lifecycle-hooks'];
  if (hooks !== undefined && hooks !== 'always' && hooks !== 'after-drain') {
    throw new UsageError(`--complete-lifecycle-hooks must be always or after-drain, got "${hooks}"`);
  }
  const pool = poolOptions(v['pool-tag'], v['pool-subnets'], v['pool-wait-timeout'], v['pool-fleet-concurrency']);
  return {
    kind: 'serve',
    port: integerFlag('port', v.port, 9001, 0, 65_535),
    serve: { host: v.host ?? '127.0.0.1', ...(serveTls && { tls: serveTls }), shutdownTimeoutMs: shutdownTimeoutMs(v['shutdown-timeout'], pool) },
    handler: {
      ...(v.region !== undefined && { region: v.region }),
      ...(v.endpoint !== undefined && { endpoint: v.endpoint }),
      ...(chosenStrategy !== undefined && { strategy: chosenStrategy }),
      ...(instanceTypes !== undefined && { instanceTypes }),
      onDemandFallback: !v['spot-only'],
      dryRun: v['dry-run'] ?? false,
      retry: { maxAttempts: integerFlag('max-attempts', v['max-attempts'], 4, 1, 20) },
      ...(v['max-sockets'] !== undefined && { maxSockets: integerFlag('max-sockets', v['max-sockets'], 128, 1, 10_000) }),
      ...(hooks !== undefined && { completeLifecycleHooks: hooks }),
      ...(pool && { pool }),
    },
  };
}
