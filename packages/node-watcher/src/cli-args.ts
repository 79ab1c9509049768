import { integerFlag, parseDuration, parseFlags, readFlagFile, UsageError, type LogLevel } from '@hollowtrees/grpcplugin/without-grpc';
import { AZURE_EVENT_TYPES, DEFAULT_AZURE_EVENT_TYPES, type AzureEventType } from './azure-scheduled-events.js';
import { CORE_EVENTS_PATH, type CoreAuth } from './core-client.js';
import { parseListen } from './health-server.js';
import { DEFAULT_MAX_RESENDS } from './notice-follow.js';
import { CLOUDS, type CloudName } from './notice.js';

/** The `--help` text: every flag with its default. */
export const USAGE = `Usage: hollowtrees-node-watcher [flags]

Watches this instance's metadata service (AWS IMDSv2, Google Cloud, Azure) for interruption and
maintenance notices and sends each to Hollowtrees core as a CloudEvent (POST /api/v1/events).

Core:
  --core-url URL            core's receiver, e.g. http://hollowtrees:9092; a path is kept, for core behind
                            an ingress: https://ops.example/hollowtrees; no user:password in it (it is
                            logged): use --basic-auth-file (default: $HOLLOWTREES_CORE_URL; required
                            unless --dry-run)
  --token-file FILE         send "Authorization: Bearer <the file's contents>" (read at every send)
  --basic-auth-file FILE    send basic auth; the file holds user:password (read at every send)
  --ca-file FILE            trust core's certificate only when signed by a CA in this file (PEM): it
                            replaces the system's CAs, as curl's --cacert does
  --max-resends N           send a notice again when a flow run of it failed in core (after its plugins'
                            retries) while the metadata service still lists it, so core runs the flow
                            again; at most N times per notice, 0 for never (default 3; read from core's
                            status API, with the same credentials; not with --once, which exits at the 200)
Metadata:
  --cloud aws|gcp|azure     the cloud (default: detect, by asking each metadata service, again for up to
                            2 minutes while none answers)
  --metadata-url URL        one base URL for the metadata service (default: the cloud's own address;
                            for stand-ins and proxies)
  --poll-interval DURATION  between checks, e.g. 2s, 500ms (default 2s on AWS, 1s on Azure; Google
                            Cloud is watched with hanging GETs and does not poll)
  --azure-event-types LIST  Scheduled Events acted on, of Preempt, Terminate, Reboot, Redeploy, Freeze
                            (default Preempt,Terminate)
  --state-file FILE         Google Cloud: where the watcher keeps which maintenance it saw in this boot,
                            so that one restarted during a maintenance that came back without the VM
                            stopping sends that one's id, not the first's (default: none, kept in memory;
                            not with --once; unused on AWS and Azure)
  --azure-approve           approve an Azure event (StartRequests) once every flow run of it succeeded
                            in core, so Azure goes ahead without waiting for NotBefore (default off;
                            not with --once, which exits before the runs end)
Running:
  --listen HOST:PORT        serve /healthz, /readyz and /metrics here (default 127.0.0.1:9102)
  --stop-grace DURATION     on SIGTERM or SIGINT, how long the events not yet accepted by core are still
                            tried before the watcher exits (default 25s: under a pod's default
                            terminationGracePeriodSeconds of 30 s; keep it under yours)
  --once                    check once, send what is found, exit (0 when all of it was delivered and every
                            part of the metadata service answered; what was found is sent either way;
                            1 when stopped by SIGTERM or SIGINT first)
  --dry-run                 log each event instead of sending it
  --log-level LEVEL         trace, debug, info, warn, error, silent (default info)
  -v, --version             print the version
  -h, --help                show this help

Environment:
  NODE_NAME                 the Kubernetes node (the downward API's spec.nodeName): labels.node
  HOLLOWTREES_CORE_URL      the default of --core-url
`;

/** The default of `--stop-grace`: room left under the 30 s a pod is given to stop, to close and exit. */
const DEFAULT_STOP_GRACE_MS = 25_000;

const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/** What the watcher runs with. */
export interface WatcherSettings {
  /** Undefined only with `dryRun`. */
  readonly coreUrl: string | undefined;
  readonly auth: CoreAuth | undefined;
  readonly ca: Buffer | undefined;
  /** Undefined: detect. */
  readonly cloud: CloudName | undefined;
  readonly metadataUrl: string | undefined;
  /** Undefined: the cloud's default. */
  readonly pollIntervalMs: number | undefined;
  readonly azureEventTypes: readonly AzureEventType[];
  /** Approve Azure events whose flow run succeeded. */
  readonly azureApprove: boolean;
  /** `--max-resends`: re-sends of a notice whose run failed in core, at most (0: none). */
  readonly maxResends: number;
  readonly listen: string;
  /** On stop, how long queued events are still tried. */
  readonly stopGraceMs: number;
  readonly once: boolean;
  readonly dryRun: boolean;
  readonly logLevel: LogLevel;
  readonly nodeName: string | undefined;
  /** Where Google Cloud occurrences are kept across restarts; undefined: in memory only. */
  readonly stateFile: string | undefined;
}

/** What the command line asks for. */
export type CliCommand = { readonly kind: 'help' } | { readonly kind: 'version' } | { readonly kind: 'run'; readonly settings: WatcherSettings };

/** Milliseconds in a duration as the configuration writes them: `500ms`, `2s`, `1m30s`, `1h`. */
function duration(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = parseDuration(text) ?? NaN;
  if (!(ms >= 10 && ms <= 3_600_000)) throw new UsageError(`--${flag} must be a duration from 10ms to 1h such as 2s or 500ms, got "${text}"`);
  return ms;
}

function oneOf<T extends string>(flag: string, text: string | undefined, allowed: readonly T[]): T | undefined {
  if (text === undefined) return undefined;
  const found = allowed.find((a) => a === text);
  if (!found) throw new UsageError(`--${flag} must be one of ${allowed.join(', ')}, got "${text}"`);
  return found;
}

/** `text` when it is an http(s) URL; `name` says where it came from (`--metadata-url`, `HOLLOWTREES_CORE_URL`). */
function httpUrl(name: string, text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const url = URL.canParse(text) ? new URL(text) : undefined;
  if (url?.protocol !== 'http:' && url?.protocol !== 'https:') throw new UsageError(`${name} must be an http:// or https:// URL, got "${text}"`);
  return text;
}

/** A base URL that paths such as `/latest/api/token` are appended to: without its trailing slashes, or they would ask for `//latest/...`. */
function baseUrl(flag: string, text: string | undefined): string | undefined {
  return httpUrl(`--${flag}`, text)?.replace(/\/+$/, '');
}

/**
 * Core's base URL. Its path is kept (an ingress prefix), so one that already ends in the receiver's path would ask for it twice, and every notice would meet a 404.
 * Credentials in it (`https://user:password@core`) are refused: the URL is logged at start and in every error that names a request to core.
 * `name` is where it came from, which a refusal names: a unit setting `HOLLOWTREES_CORE_URL` has no `--core-url` to look for.
 */
function coreBaseUrl(name: string, text: string | undefined): string | undefined {
  const url = httpUrl(name, text);
  if (url === undefined) return undefined;
  const parsed = new URL(url);
  if (parsed.username !== '' || parsed.password !== '') {
    parsed.username = parsed.username && '***';
    parsed.password = parsed.password && '***';
    throw new UsageError(`${name} must hold no credentials, which would be logged with it: put them in --basic-auth-file (user:password) or --token-file; got "${parsed.href}"`);
  }
  if (parsed.pathname.replace(/\/+$/, '').endsWith(CORE_EVENTS_PATH)) throw new UsageError(`${name} is core's base URL, without ${CORE_EVENTS_PATH}, got "${url}"`);
  return url;
}

function auth(tokenFile: string | undefined, basicFile: string | undefined): CoreAuth | undefined {
  if (tokenFile !== undefined && basicFile !== undefined) throw new UsageError('--token-file and --basic-auth-file exclude each other');
  // Read once now, so a wrong path stops the start instead of every send.
  if (tokenFile !== undefined) readFlagFile('token-file', tokenFile);
  if (basicFile !== undefined && !readFlagFile('basic-auth-file', basicFile).toString().includes(':')) throw new UsageError(`--basic-auth-file: ${basicFile} must hold user:password`);
  if (tokenFile !== undefined) return { kind: 'bearer', tokenFile };
  return basicFile === undefined ? undefined : { kind: 'basic', file: basicFile };
}

function azureEventTypes(text: string | undefined): readonly AzureEventType[] {
  if (text === undefined) return DEFAULT_AZURE_EVENT_TYPES;
  return text.split(',').map((t) => oneOf('azure-event-types', t.trim(), AZURE_EVENT_TYPES)!);
}

/**
 * Parses the command line (without `node` and the script) and the environment.
 * @throws UsageError for an unknown flag or a bad value.
 */
export function parseCliArgs(argv: readonly string[], env: NodeJS.ProcessEnv): CliCommand {
  const v = parseFlags(argv, {
    'core-url': { type: 'string' },
    'token-file': { type: 'string' },
    'basic-auth-file': { type: 'string' },
    'ca-file': { type: 'string' },
    cloud: { type: 'string' },
    'metadata-url': { type: 'string' },
    'poll-interval': { type: 'string' },
    'azure-event-types': { type: 'string' },
    'azure-approve': { type: 'boolean' },
    'state-file': { type: 'string' },
    'max-resends': { type: 'string' },
    listen: { type: 'string' },
    'stop-grace': { type: 'string' },
    once: { type: 'boolean' },
    'dry-run': { type: 'boolean' },
    'log-level': { type: 'string' },
    version: { type: 'boolean', short: 'v' },
    help: { type: 'boolean', short: 'h' },
  });
  if (v.help) return { kind: 'help' };
  if (v.version) return { kind: 'version' };
  const dryRun = v['dry-run'] ?? false;
  const coreUrl = v['core-url'] === undefined ? coreBaseUrl('HOLLOWTREES_CORE_URL', env.HOLLOWTREES_CORE_URL || undefined) : coreBaseUrl('--core-url', v['core-url']);
  if (coreUrl === undefined && !dryRun) throw new UsageError('--core-url (or HOLLOWTREES_CORE_URL) is required unless --dry-run');
  if (v['azure-approve'] && v.cloud !== undefined && v.cloud !== 'azure') throw new UsageError(`--azure-approve is for Azure, not --cloud ${v.cloud}`);
  // Refused rather than ignored: a user would count on an approval that never comes.
  if (v['azure-approve'] && v.once) throw new UsageError('--azure-approve cannot go with --once: it approves once the flow runs of a delivered event succeeded, and --once exits as soon as core accepted the event; run the watcher without --once to approve');
  // Refused as --azure-approve is: a user would count on re-sends that --once, gone at core's 200, never makes.
  const maxResends = integerFlag('max-resends', v['max-resends'], DEFAULT_MAX_RESENDS, 0, 100);
  if (v['max-resends'] !== undefined && maxResends > 0 && v.once) throw new UsageError('--max-resends cannot go with --once: it sends a notice again once a flow run of it failed, and --once exits as soon as core accepted the event; run the watcher without --once to re-send');
  // Refused rather than ignored, as --azure-approve: a user would count on ids kept across restarts that no file keeps.
  // (Left unused without a word when the cloud is detected: the shipped units pass it on every cloud.)
  if (v['state-file'] && v.cloud !== undefined && v.cloud !== 'gcp') throw new UsageError(`--state-file is for Google Cloud, not --cloud ${v.cloud}: the other clouds' notices carry ids of their own`);
  if (v['state-file'] && v.once) throw new UsageError('--state-file cannot go with --once: a single check keeps no occurrences from one run to the next; run the watcher without --once to keep them');
  const listen = v.listen ?? '127.0.0.1:9102';
  try {
    parseListen(listen);
  } catch (err) {
    throw new UsageError(`--listen: ${(err as Error).message}`);
  }
  return {
    kind: 'run',
    settings: {
      coreUrl,
      auth: auth(v['token-file'], v['basic-auth-file']),
      ca: v['ca-file'] === undefined ? undefined : readFlagFile('ca-file', v['ca-file']),
      cloud: oneOf('cloud', v.cloud, CLOUDS),
      metadataUrl: baseUrl('metadata-url', v['metadata-url']),
      pollIntervalMs: duration('poll-interval', v['poll-interval']),
      azureEventTypes: azureEventTypes(v['azure-event-types']),
      azureApprove: v['azure-approve'] ?? false,
      maxResends,
      listen,
      stopGraceMs: duration('stop-grace', v['stop-grace']) ?? DEFAULT_STOP_GRACE_MS,
      once: v.once ?? false,
      dryRun,
      logLevel: oneOf('log-level', v['log-level'], LOG_LEVELS) ?? 'info',
      nodeName: env.NODE_NAME || undefined,
      stateFile: v['state-file'] || undefined,
    },
  };
}
