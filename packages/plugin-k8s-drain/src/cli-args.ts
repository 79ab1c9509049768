import { integerFlag, parseDuration, parseFlags, shutdownTimeoutAfter, tlsFlagFiles, UsageError, type InfoCommand, type ServerTlsFiles } from '@hollowtrees/grpcplugin/without-grpc';
import { parseNodeLabel, parseTaint } from './node-marks.js';
import { MAX_WAIT_MS, resolveDrainOptions, WAIT_MINIMUM_MS, type DrainOptions } from './options.js';

export { UsageError };

/** The `--help` text. */
export const USAGE = `Usage: hollowtrees-k8s-drain [flags]

Serves the Hollowtrees cordon-and-drain action plugin over gRPC.

Server:
  --port N                      gRPC port (default 9000)
  --host ADDR                   address to bind (default 127.0.0.1; another address without mTLS
                                lets anyone who reaches the port ask for a drain, and is logged)
  --tls-cert FILE --tls-key FILE  serve TLS with this certificate and key (PEM)
  --tls-client-ca FILE          require client certificates signed by this CA (mTLS)
  --tls-refresh DURATION        read the TLS files again this often, so a renewed certificate is
                                served without a restart, 1s to 24h (default 1m)
  --shutdown-timeout DURATION   on SIGTERM, how long drains in flight may go on before they are
                                cut short, up to 24h (default --max-drain-ms plus 10s)
Cluster:
  --kubeconfig FILE             kubeconfig (default: $KUBECONFIG, ~/.kube/config, then in-cluster)
  --context NAME                kubeconfig context (default: the current one)
Finding the node:
  --node-label KEY              event label with the node name (default node)
  --instance-id-label KEY       event label with the EC2 instance id (default instance_id)
  --termination-time-label KEY  event label with the termination time, RFC 3339 (default termination_time)
  --node-not-found error|skip   answer for a node this cluster lacks (default error = NOT_FOUND;
                                one known gone, deleted or its name reused, is always skipped)
Cordon:
  --taint KEY=VALUE:EFFECT      (default hollowtrees.io/spot-termination=true:NoSchedule)
  --mark-label KEY=VALUE        (default hollowtrees.io/spot-termination=true)
Drain:
  --delete-emptydir-data true|false  evict pods with emptyDir volumes (default true)
  --grace-period-seconds N      cap on each pod's grace period (default: the pod's own)
  --concurrency N               evictions in flight per node (default 20)
  --max-in-flight N             Kubernetes calls in flight across all drains, cordons first (default 64)
  --watch-cache true|false      keep the cluster's nodes and pods in watch-fed caches instead of
                                a GET, a list and a poll per node (default true; needs watch on nodes, pods)
  --wait-for-deletion true|false  wait until evicted pods are gone (default true)
  --deletion-poll-ms N          poll interval while waiting without the watch cache (default 1000)
  --termination-margin-ms N     stop this long before the termination time (default 10000)
  --reply-margin-ms N           stop this long before the gRPC deadline (default 1000)
  --max-drain-ms N              longest drain without another bound (default 120000)
  --event-namespace NS          namespace of the node's Kubernetes Events (default default)
Pool mode (a flow's plugin config mode: pool; its maxUnavailable / minInterval win):
  --pool-max-unavailable N      nodes of a pool draining at once (default 1)
  --pool-min-interval DURATION  least time between starting two node drains, e.g. 30s (default 0s)
  --pool-namespace NS           namespace of the pools' resolution Leases (default POD_NAMESPACE, else default)
  --dry-run                     log every step, change nothing
  -v, --version                 print the version
  -h, --help                    show this help
`;

/** What the command line asks for when it asks to serve. */
export interface ServeCommand {
  kind: 'serve';
  port: number;
  host: string;
  tls: ServerTlsFiles | undefined;
  /** serve()'s shutdownTimeoutMs: how long a SIGTERM lets drains in flight go on. */
  shutdownTimeoutMs: number;
  kubeconfig: string | undefined;
  context: string | undefined;
  drain: DrainOptions;
}

/** What the command line asks for. */
export type CliCommand = InfoCommand | ServeCommand;

const STRING_FLAGS = [
  'port',
  'host',
  'tls-cert',
  'tls-key',
  'tls-client-ca',
  'tls-refresh',
  'shutdown-timeout',
  'kubeconfig',
  'context',
  'node-label',
  'instance-id-label',
  'termination-time-label',
  'node-not-found',
  'taint',
  'mark-label',
  'delete-emptydir-data',
  'grace-period-seconds',
  'concurrency',
  'max-in-flight',
  'watch-cache',
  'wait-for-deletion',
  'deletion-poll-ms',
  'termination-margin-ms',
  'reply-margin-ms',
  'max-drain-ms',
  'event-namespace',
  'pool-max-unavailable',
  'pool-min-interval',
  'pool-namespace',
] as const;

type Values = Partial<Record<(typeof STRING_FLAGS)[number], string>>;

function integer(values: Values, flag: keyof Values): number | undefined {
  const text = values[flag];
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text)) throw new UsageError(`--${flag} must be a non-negative integer, got "${text}"`);
  return Number(text);
}

/** A wait in milliseconds, in the range the drain options take, so that a bad one is a usage error naming the flag. */
function waitMs(values: Values, flag: keyof Values, option: keyof typeof WAIT_MINIMUM_MS): number | undefined {
  const text = values[flag];
  return text === undefined ? undefined : integerFlag(flag, text, 0, WAIT_MINIMUM_MS[option], MAX_WAIT_MS);
}

function bool(values: Values, flag: keyof Values): boolean | undefined {
  const text = values[flag];
  if (text === undefined || text === 'true' || text === 'false') return text === undefined ? undefined : text === 'true';
  throw new UsageError(`--${flag} must be true or false, got "${text}"`);
}

function parsed<T>(values: Values, flag: keyof Values, parse: (text: string) => T): T | undefined {
  const text = values[flag];
  if (text === undefined) return undefined;
  try {
    return parse(text);
  } catch (err) {
    throw new UsageError(`--${flag}: ${(err as Error).message}`);
  }
}

function durationMs(text: string): number {
  const ms = parseDuration(text);
  if (ms === undefined) throw new Error(`"${text}" is not a duration such as 30s or 1m30s`);
  if (ms > MAX_WAIT_MS) throw new Error(`"${text}" is over 24h`);
  return ms;
}

function tlsOf(values: Values): ServerTlsFiles | undefined {
  const { 'tls-cert': cert, 'tls-key': key, 'tls-client-ca': ca, 'tls-refresh': refresh } = values;
  if (!cert && !key && !ca) {
    if (refresh !== undefined) throw new UsageError('--tls-refresh needs --tls-cert and --tls-key');
    return undefined;
  }
  if (!cert || !key) throw new UsageError('--tls-cert and --tls-key go together');
  const files = { cert: { flag: 'tls-cert', path: cert }, key: { flag: 'tls-key', path: key }, ...(ca ? { ca: { flag: 'tls-client-ca', path: ca } } : {}) };
  return { files: tlsFlagFiles(files, refresh) };
}

/**
 * Parses the command line (without `node` and the script).
 * @throws UsageError for an unknown flag or a bad value.
 */
export function parseCliArgs(argv: readonly string[]): CliCommand {
  const values = parseFlags(argv, {
    ...Object.fromEntries(STRING_FLAGS.map((f) => [f, { type: 'string' as const }])),
    'dry-run': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean', short: 'v' },
  }) as Values & { 'dry-run'?: boolean; help?: boolean; version?: boolean };
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };

  const port = integerFlag('port', values.port, 9000, 0, 65_535);
  const nodeNotFound = values['node-not-found'];
  if (nodeNotFound !== undefined && nodeNotFound !== 'error' && nodeNotFound !== 'skip') {
    throw new UsageError(`--node-not-found must be error or skip, got "${nodeNotFound}"`);
  }
  const concurrency = integer(values, 'concurrency');
  if (concurrency === 0) throw new UsageError('--concurrency must be at least 1');
  const maxInFlight = integer(values, 'max-in-flight');
  if (maxInFlight === 0) throw new UsageError('--max-in-flight must be at least 1');

  const poolMaxUnavailable = integer(values, 'pool-max-unavailable');
  if (poolMaxUnavailable === 0) throw new UsageError('--pool-max-unavailable must be at least 1');

  const drain: DrainOptions = {
    nodeLabel: values['node-label'],
    instanceIdLabel: values['instance-id-label'],
    terminationTimeLabel: values['termination-time-label'],
    nodeNotFound,
    taint: parsed(values, 'taint', parseTaint),
    nodeLabelMark: parsed(values, 'mark-label', parseNodeLabel),
    deleteEmptyDirData: bool(values, 'delete-emptydir-data'),
    gracePeriodSeconds: integer(values, 'grace-period-seconds'),
    concurrency,
    maxInFlight,
    watchCache: bool(values, 'watch-cache'),
    waitForDeletion: bool(values, 'wait-for-deletion'),
    deletionPollMs: waitMs(values, 'deletion-poll-ms', 'deletionPollMs'),
    terminationMarginMs: waitMs(values, 'termination-margin-ms', 'terminationMarginMs'),
    replyMarginMs: waitMs(values, 'reply-margin-ms', 'replyMarginMs'),
    maxDrainMs: waitMs(values, 'max-drain-ms', 'maxDrainMs'),
    eventNamespace: values['event-namespace'],
    poolMaxUnavailable,
    poolMinIntervalMs: parsed(values, 'pool-min-interval', durationMs),
    poolNamespace: values['pool-namespace'],
    dryRun: values['dry-run'],
  };
  return {
    kind: 'serve',
    port,
    host: values.host ?? '127.0.0.1',
    tls: tlsOf(values),
    // Not the SDK's 30 s: a drain runs up to --max-drain-ms, and a rolling update of the plugin that cut it
    // short would spend one of core's attempts and start the drain over.
    shutdownTimeoutMs: parsed(values, 'shutdown-timeout', durationMs) ?? shutdownTimeoutAfter(resolveDrainOptions({ maxDrainMs: drain.maxDrainMs }).maxDrainMs),
    kubeconfig: values.kubeconfig,
    context: values.context,
    // Unset flags stay out, so the handler's defaults apply.
    drain: Object.fromEntries(Object.entries(drain).filter(([, v]) => v !== undefined)) as DrainOptions,
  };
}
