import { z } from 'zod';
import { DEFAULT_KEEPALIVE, parseDuration } from '@hollowtrees/grpcplugin/without-grpc';
import { formatByteSize, parseByteSize } from './byte-size.js';
import { LISTEN_FORMAT, parseListenAddress, pluginAddressProblem } from './listen-address.js';
import { regionOfQueueUrl } from '../sources/sqs/sqs-region.js';
import type { ShownInput } from '../validation-issues.js';

/**
 * A string YAML may have read as a number (`cooldown: 300`, `listen: 9092`, `address: 9000`), taken
 * as its text, so that the field's own check says what it expects and shows the value, instead of
 * "expected string, received number".
 */
const textOrNumber = () => z.preprocess((value) => (typeof value === 'number' ? String(value) : value), z.string());

/** A Go-style duration string (`30s`, `5m30s`), validated and turned into milliseconds. */
const duration = textOrNumber().transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === undefined) {
    // The value is shown by whoever describes the issue, who knows whether it may be shown (see ShownInput).
    ctx.addIssue({ code: 'custom', message: 'expected a duration like 30s, 5m or 1h30m', params: { got: text } satisfies ShownInput });
    return z.NEVER;
  }
  return ms;
});

/**
 * A duration a timer waits for: at most 24h. Node's timers hold 2^31-1 ms (24.8 days) and fire
 * at once past that, and a plugin call's deadline past 2^32 ms cannot be sent at all.
 */
const timerDuration = (min: number, minText: string) =>
  duration.refine((ms) => ms >= min && ms <= 86_400_000, `expected a duration from ${minText} to 24h`);

/** A size in bytes from `min` to `max`: a whole number, or one with a binary unit (`64MiB`, `1Gi`). */
const byteSize = (min: number, max: number) =>
  z.union([z.number(), z.string()], { error: 'expected a size in bytes, like 67108864 or 64MiB' }).transform((value, ctx) => {
    const bytes = typeof value === 'number' ? value : parseByteSize(value);
    const problem =
      bytes === undefined || !Number.isSafeInteger(bytes) ? 'expected a whole number of bytes, or a size with a binary unit like 512KiB, 64MiB or 1GiB'
      : bytes < min || bytes > max ? `expected a size from ${formatByteSize(min)} to ${formatByteSize(max)}`
      : undefined;
    if (problem === undefined) return bytes!;
    ctx.addIssue({ code: 'custom', message: problem, params: { got: String(value) } satisfies ShownInput });
    return z.NEVER;
  });

/** `HOST:PORT` or `:PORT`, checked by the parser start-up uses; the value is shown unless it came from ${VAR}. */
const listenAddress = textOrNumber().superRefine((text, ctx) => {
  if (!parseListenAddress(text)) ctx.addIssue({ code: 'custom', message: LISTEN_FORMAT, params: { got: text } satisfies ShownInput });
});

/** How often TLS files are read again, so a certificate renewed in place is used without a restart or reload. */
const tlsRefresh = () => timerDuration(1_000, '1s').default(60_000);

const tlsFiles = z
  .strictObject({
    ca: z.string().optional(),
    cert: z.string().optional(),
    key: z.string().optional(),
    serverName: z.string().optional(),
    refresh: tlsRefresh(),
  })
  .refine((tls) => (tls.cert === undefined) === (tls.key === undefined), 'cert and key must be given together');

/** A retry policy with its defaults: `attempts` in all (the first included), exponential backoff between them. */
function retryPolicy(defaults: { attempts: number; maxAttempts: number; initialBackoff: number; maxBackoff: number }) {
  return z.strictObject({
    attempts: z.number().int().min(1).max(defaults.maxAttempts).default(defaults.attempts),
    initialBackoff: timerDuration(0, '0s').default(defaults.initialBackoff),
    maxBackoff: timerDuration(0, '0s').default(defaults.maxBackoff),
    multiplier: z.number().min(1).max(10).default(2),
  });
}

/** Retries of one plugin call that failed on a retryable code. */
const retry = retryPolicy({ attempts: 3, maxAttempts: 100, initialBackoff: 200, maxBackoff: 5_000 });
const defaultRetry = { attempts: 3, initialBackoff: 200, maxBackoff: 5_000, multiplier: 2 };

/**
 * Later tries of a whole run that failed on retryable codes (a plugin down for
 * longer than its own retries span): the group stays held meanwhile, and the
 * run goes on from the plugin that failed. 1 attempt turns later tries off.
 */
const runRetry = retryPolicy({ attempts: 6, maxAttempts: 1_000, initialBackoff: 30_000, maxBackoff: 300_000 });
const defaultRunRetry = { attempts: 6, initialBackoff: 30_000, maxBackoff: 300_000, multiplier: 2 };

/** How long one plugin call may take: a call that must answer in 0 ms cannot succeed. */
const pluginTimeout = timerDuration(1, '1ms');

const grpcPlugin = z.strictObject({
  type: z.literal('grpc'),
  address: textOrNumber().superRefine((text, ctx) => {
    const problem = pluginAddressProblem(text);
    if (problem) ctx.addIssue({ code: 'custom', message: problem, params: { got: text } satisfies ShownInput });
  }),
  timeout: pluginTimeout.default(30_000),
  retry: retry.default(defaultRetry),
  tls: tlsFiles.optional(),
  /**
   * How calls reach the plugin: `auto` one HandleStream, with unary Handle calls for a plugin
   * that does not serve it; `stream` or `unary` forces one.
   */
  transport: z.enum(['auto', 'stream', 'unary'], { error: 'expected auto, stream or unary' }).default('auto'),
  /**
   * HTTP/2 pings towards the plugin, so a connection dropped on the way without a word fails its
   * calls (retried on a new one) within `time` + `timeout`, not after the kernel's 15 minutes;
   * `false` turns them off.
   */
  keepalive: z
    .union([
      z.literal(false, { error: 'expected false (no pings) or { time, timeout }' }),
      z.strictObject({
        time: timerDuration(1_000, '1s').default(DEFAULT_KEEPALIVE.timeMs),
        timeout: timerDuration(1_000, '1s').default(DEFAULT_KEEPALIVE.timeoutMs),
      }),
    ])
    .default({ time: DEFAULT_KEEPALIVE.timeMs, timeout: DEFAULT_KEEPALIVE.timeoutMs }),
});

const logPlugin = z.strictObject({
  type: z.literal('log'),
  timeout: pluginTimeout.default(5_000),
  retry: retry.default(defaultRetry),
});

const plugin = z.discriminatedUnion('type', [grpcPlugin, logPlugin], {
  error: (issue) => (issue.code === 'invalid_union' ? 'expected type: grpc or type: log' : undefined),
});

/** A filter value: equality, any of a list, `{ not: ... }`, or `{ regex: ... }` (anchored). */
const filterValue = z.union([
  z.string(),
  z.array(z.string()).min(1),
  z.strictObject({ not: z.union([z.string(), z.array(z.string()).min(1)]) }),
  z.strictObject({
    regex: z.string().refine((source) => {
      try {
        new RegExp(source);
        return true;
      } catch {
        return false;
      }
    }, 'expected a valid regular expression'),
  }),
], { error: () => 'expected a string, a list of strings, { not: ... } or { regex: ... }' });

const eventPattern = z.string().regex(/^[^\s]+$/, 'expected an event type or a glob such as prometheus.server.alert.*');

/**
 * One step of a flow: a plugin's name, or the name with settings the plugin
 * gets on every call from this flow (`HandleContext.config`, values as strings).
 */
const flowStep = z
  .union(
    [
      z.string().min(1),
      z.strictObject({
        plugin: z.string().min(1),
        config: z.record(z.string().min(1), z.union([z.string(), z.number(), z.boolean()], { error: 'expected a string, a number or a boolean' })).default({}),
      }),
    ],
    { error: (issue) => (issue.code === 'invalid_union' ? 'expected a plugin name, or {plugin: <name>, config: {key: value}}' : undefined) },
  )
  .transform((step) => (typeof step === 'string' ? { plugin: step, config: {} } : { plugin: step.plugin, config: Object.fromEntries(Object.entries(step.config).map(([k, v]) => [k, String(v)])) }));

/**
 * A flow's cooldown: at most 100 years. Its end is a date in the status API, the journal and a
 * Lease, and a date past the year 275760 (a cooldown of billions of hours) is none: every status
 * request would fail while the group cooled, and so would the Lease holding its cooldown.
 */
const cooldown = duration.refine((ms) => ms <= 100 * 365 * 86_400_000, 'expected a duration up to 876000h (100 years)');

const flow = z.strictObject({
  description: z.string().default(''),
  allowedEvents: z.array(eventPattern).min(1, 'expected at least one event type'),
  filters: z.record(z.string(), filterValue).default({}),
  groupBy: z.array(z.string().min(1)).default([]),
  cooldown: cooldown.default(0),
  /** Runs of this flow at once; more wait in the queue. */
  concurrency: z.number().int().min(1).max(100_000).default(1_000),
  /** Runs waiting for a slot; beyond it an event is dropped, counted, and its POST answered 503 so the sender re-sends. */
  queueSize: z.number().int().min(0).max(10_000_000).default(10_000),
  /** Bytes of events this flow's queued, running and waiting runs may hold; beyond it the POST is answered 503 too. */
  queueBytes: byteSize(1_024, 64 * 1024 ** 3).default(64 * 1024 * 1024),
  runRetry: runRetry.default(defaultRunRetry),
  plugins: z.array(flowStep).min(1, 'expected at least one plugin'),
});

/** Receiver limits; each default is documented in the README. */
const limits = z.strictObject({
  /** Largest request body, in bytes. */
  maxBodyBytes: byteSize(1_024, 64 * 1024 * 1024).default(1024 * 1024),
  /** Alerts in one request. */
  maxAlertsPerRequest: z.number().int().min(1).max(1_000_000).default(10_000),
  /** Labels on one alert or event, annotations on one alert, and extension attributes on one CloudEvent. */
  maxLabelsPerAlert: z.number().int().min(1).max(10_000).default(128),
  /** Characters in one label name or value, and in a CloudEvent's `id`. */
  maxLabelLength: z.number().int().min(16).max(1_000_000).default(4_096),
  /** Requests handled at once; more get 503. */
  maxConcurrentRequests: z.number().int().min(1).max(1_000_000).default(1_024),
});
const defaultLimits = { maxBodyBytes: 1024 * 1024, maxAlertsPerRequest: 10_000, maxLabelsPerAlert: 128, maxLabelLength: 4_096, maxConcurrentRequests: 1_024 };

/** A receiver timeout: whole milliseconds, so Node takes it, and never 0, which Node reads as "none". */
const timeout = duration
  .refine((ms) => ms >= 100 && ms <= 3_600_000, 'expected a duration from 100ms to 1h')
  .transform((ms) => Math.ceil(ms));

/** Receiver timeouts, so a stalled client cannot hold a request slot or a connection; each default is documented in the README. */
const timeouts = z.strictObject({
  /** From a request's first byte until its headers are in; then a bare 408 and the connection is closed. */
  headers: timeout.default(10_000),
  /** From the headers until the whole body is in; then 408 and the request slot is free. */
  body: timeout.default(30_000),
  /** No byte moving either way on a connection for this long (a client that stopped sending or reading): it is closed. */
  idle: timeout.default(60_000),
});
const defaultTimeouts = { headers: 10_000, body: 30_000, idle: 60_000 };

const exactlyOne = (a: unknown, b: unknown): boolean => (a === undefined) !== (b === undefined);

/** Receiver auth, as Prometheus' and Alertmanager's http_config can send it. Secrets inline (use `${ENV}`) or in files. */
const auth = z
  .strictObject({
    /** `Authorization: Bearer <token>` (Prometheus `authorization: {credentials}`). */
    bearerToken: z.string().min(1).optional(),
    bearerTokenFile: z.string().min(1).optional(),
    /** `Authorization: Basic` (Prometheus `basic_auth`). */
    basic: z
      .strictObject({ username: z.string().min(1), password: z.string().min(1).optional(), passwordFile: z.string().min(1).optional() })
      .refine((b) => exactlyOne(b.password, b.passwordFile), 'expected password or passwordFile, exactly one')
      .optional(),
  })
  .refine((a) => a.bearerToken === undefined || a.bearerTokenFile === undefined, 'expected bearerToken or bearerTokenFile, not both')
  .refine((a) => a.bearerToken !== undefined || a.bearerTokenFile !== undefined || a.basic !== undefined, 'expected bearerToken, bearerTokenFile or basic');

const server = z.strictObject({
  listen: listenAddress.default('127.0.0.1:9092'),
  /** HTTPS on the receiver: certificate and key files. */
  tls: z.strictObject({ cert: z.string().min(1), key: z.string().min(1), refresh: tlsRefresh() }).optional(),
  /** Without it the receiver takes alerts from anyone who can reach it. */
  auth: auth.optional(),
  limits: limits.default(defaultLimits),
  timeouts: timeouts.default(defaultTimeouts),
  /** How long shutdown waits for runs in flight before cancelling them. */
  shutdownGracePeriod: timerDuration(0, '0s').default(30_000),
});

const log = z.strictObject({
  level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
});

/** The original Hollowtrees' `global` section, still accepted. */
const legacyGlobal = z.strictObject({ bindAddr: listenAddress.optional() });

/** A DNS-1123 label, as a namespace name must be. */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** `state.kubernetes`: one `coordination.k8s.io/v1` Lease per group held, in one namespace, shared by every replica. */
const kubernetesState = z
  .strictObject({
    /** Default: `POD_NAMESPACE`, else the service account's namespace. */
    namespace: z.string().regex(DNS_LABEL, 'expected a namespace name (lower-case letters, digits and -)').optional(),
    leasePrefix: z
      .string()
      .max(100)
      // With the 40 hex digits after it, a DNS subdomain as the API server wants a Lease name: no '-.', '..' or '.-'.
      .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*(-*|\.)$/, 'expected the start of a Lease name (lower-case letters, digits, - and ., starting with a letter or digit; no dot next to another dot or a -)')
      .default('hollowtrees-'),
    /**
     * How long a Lease holds its group after its holder's last renewal; then another replica may take the run over.
     * At most 24h: it is the Lease's int32 `leaseDurationSeconds`, which the API server refuses past 2^31-1 (every
     * claim, so every event, would fail), and a group whose holder died stays held that long, its reclaims not acted on.
     */
    leaseDuration: duration.refine((ms) => ms >= 1_000 && ms <= 86_400_000 && ms % 1_000 === 0, 'expected whole seconds from 1s to 24h').default(30_000),
    renewInterval: timerDuration(100, '100ms').default(10_000),
    /** Lease calls a replica has in flight at once; more wait for a slot (see lease-api.ts). */
    maxInFlight: z.number().int().min(1).max(1_000).default(32),
    /** Default: the in-cluster service account. */
    kubeconfig: z.string().min(1).optional(),
  })
  // A holder stops its run once its renewals go unconfirmed for leaseDuration - 1.5 x renewInterval (kubernetes-store.ts):
  // past a third of the lease, a renewal confirmed on time would already be that old at the next tick.
  .refine((k) => 3 * k.renewInterval <= k.leaseDuration, { message: 'renewInterval must be at most a third of leaseDuration (a run stops once its renewals go unconfirmed for leaseDuration - 1.5 x renewInterval)', path: ['renewInterval'] });

/** `state.kubernetes` with every default filled in. */
export type KubernetesStateConfig = z.output<typeof kubernetesState>;

/**
 * Run state: where it is kept (`backend`; without it, `file` when a file is
 * given, else memory) and how much of it is held.
 */
const state = z.strictObject({
  backend: z.enum(['memory', 'file', 'kubernetes']).optional(),
  kubernetes: kubernetesState.optional(),
  file: z.string().min(1).optional(),
  /** Groups held at once (running, waiting, cooling); beyond it an event of a new group is answered 503 too_many_groups. */
  maxGroups: z.number().int().min(1).max(100_000_000).default(250_000),
  /** Bytes of events all flows' runs may hold together; beyond it events are answered 503 queue_full. */
  maxQueuedBytes: byteSize(1_024, 64 * 1024 ** 3).default(256 * 1024 * 1024),
})
  .superRefine((s, ctx) => {
    const backend = s.backend ?? (s.file ? 'file' : 'memory');
    if (backend === 'file' && !s.file) ctx.addIssue({ code: 'custom', path: ['file'], message: 'backend file needs the path of the state file' });
    if (backend !== 'file' && s.file) ctx.addIssue({ code: 'custom', path: ['file'], message: `only the file backend uses a state file (backend is ${backend})` });
    if (backend !== 'kubernetes' && s.kubernetes) ctx.addIssue({ code: 'custom', path: ['kubernetes'], message: `only the kubernetes backend uses these settings (backend is ${backend}); set backend: kubernetes` });
  })
  .transform(({ backend, kubernetes, ...rest }) => {
    const chosen = backend ?? (rest.file ? 'file' : 'memory');
    return { ...rest, backend: chosen, ...(chosen === 'kubernetes' ? { kubernetes: kubernetes ?? kubernetesState.parse({}) } : {}) };
  });

/** An SQS queue URL: `https://sqs.<region>.amazonaws.com/<account>/<name>` (or any endpoint's, with `endpoint`). */
const queueUrl = z.string().superRefine((text, ctx) => {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (!url || !/^https?:$/.test(url.protocol) || url.pathname.split('/').filter(Boolean).length < 2) {
    ctx.addIssue({ code: 'custom', message: 'expected a queue URL like https://sqs.us-east-1.amazonaws.com/123456789012/my-queue', params: { got: text } satisfies ShownInput });
  }
});

/**
 * Whole seconds from 1s to 9h (0 would hand a message out again at once). SQS takes up to 12h, but refuses to keep a
 * message hidden past 12h from its receive, and a message in progress is renewed for a whole timeout every third of
 * it: above 9h its first renewal is already refused.
 */
const visibilityTimeout = duration.refine(
  (ms) => ms >= 1_000 && ms <= 32_400_000 && ms % 1_000 === 0,
  "expected whole seconds from 1s to 9h: renewed every third of it while a run is in progress, a longer timeout passes SQS's 12h cap on a message's total visibility at its first renewal",
);

/** A queue's name in metrics, logs and the status API: its URL's last segment (the SQS queue name). */
export function sqsQueueName(queue: { url: string }): string {
  // Not URL.parse: Node has it from 20.18 only, and core runs on 20.12.
  return (URL.canParse(queue.url) ? new URL(queue.url).pathname.split('/').filter(Boolean).pop() : undefined) ?? queue.url;
}

/** An AWS region name. */
const awsRegion = z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'expected an AWS region such as us-east-1');

/** One EventBridge → SQS queue the SQS source reads (see README, "Cloud notices"). */
const sqsQueue = z.strictObject({
  url: queueUrl,
  /** Default: the region in the URL's host (`sqs.<region>.amazonaws.com`), else the SDK's chain (`AWS_REGION`, profile). Set, it must be the URL's. */
  region: awsRegion.optional(),
  /** Another SQS endpoint (a VPC endpoint, a stand-in). Default: the region's. */
  endpoint: z.url({ error: 'expected a URL such as https://sqs.us-east-1.amazonaws.com' }).optional(),
  /** Long-poll wait of each receive, 0–20 s. */
  waitTimeSeconds: z.number().int().min(0).max(20).default(20),
  /** Messages per receive, 1–10. */
  batchSize: z.number().int().min(1).max(10).default(10),
  /** How long a received message stays hidden; extended while its runs are in progress. */
  visibilityTimeout: visibilityTimeout.default(30_000),
  /**
   * How long one SQS call may go unanswered before it is abandoned (and tried again by the SDK): the SDK waits
   * 15 minutes. A receive's bound is this beyond its `waitTimeSeconds`.
   */
  callTimeout: timerDuration(100, '100ms').default(10_000),
  /** Receives in parallel on this queue. */
  pollers: z.number().int().min(1).max(50).default(1),
  /** Messages being acted on at once; the pollers wait while this many are. */
  maxInFlight: z.number().int().min(1).max(100_000).default(1_000),
}).superRefine((queue, ctx) => {
  // The SDK sends to the URL's host but signs for `region`: SQS would refuse every call, seen only once core polls.
  const named = URL.canParse(queue.url) ? regionOfQueueUrl(queue.url) : undefined;
  if (queue.region !== undefined && named !== undefined && queue.region !== named) {
    // No value in the message: either may come from the environment (see ShownInput).
    ctx.addIssue({ code: 'custom', path: ['region'], message: "not the region the queue URL names (sqs.<region>.amazonaws.com): SQS refuses every call signed for another region; leave region out to take the URL's" });
  }
});

/** US dollars per hour, as EC2 and the AWS Price List quote them. */
const hourlyPrice = z.number({ error: 'expected a price in US dollars per hour, such as 0.096' }).positive('expected a price above 0');
const instanceType = z.string().regex(/^[a-z][a-z0-9-]*\.[a-z0-9]+$/, 'expected an EC2 instance type such as m5.large');

/**
 * One region's Spot pools the spot-price source watches (see README, "Spot price
 * surges"): instance types × Availability Zones, or the pools of running spot
 * instances found by tag, and the thresholds that make a price a surge.
 */
const spotPriceEntry = z
  .strictObject({
    /** Names the source in metrics, logs and the status API. Default `spot-price-<region>`. */
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'expected letters, digits, . _ -').optional(),
    region: awsRegion,
    /** Another EC2 endpoint (a VPC endpoint, a stand-in). Default: the region's. */
    endpoint: z.url({ error: 'expected a URL such as https://ec2.us-east-1.amazonaws.com' }).optional(),
    /** How often the price history is read. */
    interval: timerDuration(100, '100ms').default(300_000),
    /** How long one EC2 call may go unanswered before it is abandoned (and tried again by the SDK): the SDK waits for ever. */
    callTimeout: timerDuration(100, '100ms').default(30_000),
    /** The window whose surges each poll reports; a surge that began before it is read further back (see README, "Cost"). */
    history: duration.refine((ms) => ms >= 60_000 && ms <= 90 * 24 * 3_600_000, 'expected from 1m to 90 days (the history EC2 keeps)').default(6 * 3_600_000),
    instanceTypes: z.array(instanceType).min(1, 'expected at least one instance type').optional(),
    availabilityZones: z.array(z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+[a-z]$/, 'expected an Availability Zone such as us-east-1a')).min(1, 'expected at least one Availability Zone').optional(),
    /** The pools of the running spot instances carrying all these tags. */
    discover: z.strictObject({ tags: z.record(z.string().min(1), z.string()).refine((tags) => Object.keys(tags).length > 0, 'expected at least one tag') }).optional(),
    productDescription: z.string().min(1).default('Linux/UNIX'),
    /** A surge: the price above this many dollars per hour. */
    maxPrice: hourlyPrice.optional(),
    /** A surge: the price above this share of the instance type's on-demand price (`onDemandPrices`). */
    onDemandRatio: z.number().positive('expected a ratio above 0, such as 0.6').optional(),
    /** On-demand prices by instance type, from the AWS Price List, for `onDemandRatio`. */
    onDemandPrices: z.record(instanceType, hourlyPrice).default({}),
    /** A surge: the price above `ratio` times the median of the pool's prices over the `window` before it. */
    jump: z.strictObject({ ratio: z.number().gt(1, 'expected a ratio above 1, such as 1.5'), window: duration.refine((ms) => ms >= 60_000, 'expected at least 1m').default(3_600_000) }).optional(),
    /** A surge ends once the price is at or below its threshold × (1 − hysteresis). */
    hysteresis: z.number().min(0).lt(1, 'expected a fraction from 0 up to (not including) 1').default(0),
  })
  .superRefine((entry, ctx) => {
    const issue = (path: Array<string | number>, message: string): void => ctx.addIssue({ code: 'custom', path, message });
    if (entry.maxPrice === undefined && entry.onDemandRatio === undefined && entry.jump === undefined) issue([], 'expected at least one threshold: maxPrice, onDemandRatio or jump');
    const staticPools = entry.instanceTypes !== undefined || entry.availabilityZones !== undefined;
    if (staticPools && (entry.instanceTypes === undefined || entry.availabilityZones === undefined)) {
      issue([entry.instanceTypes === undefined ? 'instanceTypes' : 'availabilityZones'], 'instanceTypes and availabilityZones go together: the pools are every type in every zone');
    }
    if (!staticPools && entry.discover === undefined) issue([], 'expected the pools: instanceTypes and availabilityZones, or discover: {tags: ...}');
    // A region that is no region has its own problem; no zone is measured against it.
    const regionValid = awsRegion.safeParse(entry.region).success;
    for (const [i, zone] of regionValid ? (entry.availabilityZones ?? []).entries() : []) {
      // No value in the message: either may come from the environment (see ShownInput).
      if (!zone.startsWith(entry.region)) issue(['availabilityZones', i], 'this zone is not in the entry\'s region');
    }
    if (entry.onDemandRatio !== undefined) {
      for (const [i, type] of (entry.instanceTypes ?? []).entries()) {
        if (entry.onDemandPrices[type] === undefined) issue(['instanceTypes', i], 'no on-demand price for this instance type in onDemandPrices: onDemandRatio needs one per type (the AWS Price List has them)');
      }
    } else if (Object.keys(entry.onDemandPrices).length > 0) issue(['onDemandPrices'], 'only onDemandRatio uses on-demand prices; set it or remove these');
    if (entry.jump && entry.jump.window > entry.history) issue(['jump', 'window'], 'the jump window must fit in history (the window each poll reads)');
  });

/** A spot-price entry's name in metrics, logs and the status API. */
export function spotPriceSourceName(entry: { name?: string | undefined; region: string }): string {
  return entry.name ?? `spot-price-${entry.region}`;
}

/** Where events come from besides the HTTP receiver. */
const sources = z.strictObject({
  sqs: z
    .array(sqsQueue)
    .default([])
    .superRefine((queues, ctx) => {
      const seen = new Set<string>();
      for (const [i, queue] of queues.entries()) {
        const name = sqsQueueName(queue);
        // The name labels metrics and the status API: two queues of one name (in two regions or accounts) would share them.
        if (seen.has(name)) ctx.addIssue({ code: 'custom', path: [i, 'url'], message: 'another entry reads a queue of the same name; each queue name may appear once' });
        seen.add(name);
      }
    }),
  spotPrice: z
    .array(spotPriceEntry)
    .default([])
    .superRefine((entries, ctx) => {
      const seen = new Set<string>();
      for (const [i, entry] of entries.entries()) {
        const name = spotPriceSourceName(entry);
        if (seen.has(name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: 'another entry has the same name (by default spot-price-<region>); give each entry of one region its own name' });
        seen.add(name);
      }
    }),
});

export const configSchema = z.strictObject({
  state: state.default({ backend: 'memory', maxGroups: 250_000, maxQueuedBytes: 256 * 1024 * 1024 }),
  global: legacyGlobal.optional(),
  server: server.default({ listen: '127.0.0.1:9092', limits: defaultLimits, timeouts: defaultTimeouts, shutdownGracePeriod: 30_000 }),
  log: log.default({ level: 'info' }),
  plugins: z.record(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'plugin names use letters, digits, . _ -'), plugin).default({}),
  // Without a flow every alert is answered 200 and every SQS notice deleted, and nothing acts on any.
  flows: z.record(z.string().min(1), flow).refine((flows) => Object.keys(flows).length > 0, 'expected at least one flow: without one, every alert is answered 200 and every SQS notice deleted, and nothing acts on them'),
  sources: sources.default({ sqs: [], spotPrice: [] }),
});

/** The configuration after validation: durations are milliseconds, defaults filled in. */
export type Config = z.output<typeof configSchema>;
export type FlowConfig = Config['flows'][string];
export type PluginConfig = Config['plugins'][string];
export type GrpcPluginConfig = z.output<typeof grpcPlugin>;
export type FilterValue = z.output<typeof filterValue>;
export type RetryConfig = z.output<typeof retry>;
export type RunRetryConfig = z.output<typeof runRetry>;
export type ReceiverLimits = z.output<typeof limits>;
/** `server.timeouts`, in milliseconds: headers, body and idle. */
export type ReceiverTimeouts = z.output<typeof timeouts>;
export type AuthConfig = z.output<typeof auth>;
/** One entry of `sources.sqs`, durations in milliseconds. */
export type SqsQueueConfig = z.output<typeof sqsQueue>;
/** One entry of `sources.spotPrice`, durations in milliseconds. */
export type SpotPriceConfig = z.output<typeof spotPriceEntry>;
