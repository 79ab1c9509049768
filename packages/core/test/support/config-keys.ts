import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTestCertificates } from '@hollowtrees/testkit';
import { z } from 'zod';
import { configSchema } from '../../src/config/schema.js';
import { formatPath } from '../../src/validation-issues.js';

interface JsonSchema {
  /** One type, or several for a union of primitives (`["string", "number"]`). */
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
}

/** Stands for any key of a map in a key pattern. */
const ANY_KEY = '*';
/** Stands for any index of a list in a key pattern. */
const ANY_INDEX = '[]';

function walk(schema: JsonSchema, path: string, found: Set<string>): void {
  const branches = schema.anyOf ?? schema.oneOf;
  if (branches) {
    for (const branch of branches) walk(branch, path, found);
  } else if (Array.isArray(schema.type)) {
    for (const type of schema.type) walk({ type }, path, found);
  } else if (schema.type === 'string') {
    found.add(path);
  } else if (schema.type === 'object') {
    for (const [key, value] of Object.entries(schema.properties ?? {})) walk(value, path ? `${path}.${key}` : key, found);
    if (typeof schema.additionalProperties === 'object') walk(schema.additionalProperties, `${path}.${ANY_KEY}`, found);
  } else if (schema.type === 'array') {
    walk(schema.items!, `${path}${ANY_INDEX}`, found);
  } else if (!['number', 'integer', 'boolean'].includes(schema.type ?? '')) {
    // A key the JSON Schema cannot describe (e.g. a $ref or `any`) could hide a string: fail, do not skip it.
    throw new Error(`${path}: cannot tell whether this key takes a string: ${JSON.stringify(schema)}`);
  }
}

/**
 * Every key of the configuration schema that takes a string, derived from the
 * schema itself (so a key added later is listed too), as a pattern: `*` for any
 * map key, `[]` for any list index, e.g. `flows.*.allowedEvents[]`.
 */
export function stringKeyPatterns(): string[] {
  const found = new Set<string>();
  walk(z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema, '', found);
  return [...found];
}

/** Whether a path such as `flows.spot.allowedEvents[0]` is one of a pattern's keys. */
export function matchesPattern(pattern: string, path: string): boolean {
  const source = pattern
    .split(/(\*|\[\])/)
    .map((part) => (part === ANY_KEY ? '[^.[]+' : part === ANY_INDEX ? '\\[\\d+\\]' : part.replace(/[.[\]]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`).test(path);
}

/** One string value in a configuration object. */
export interface StringLeaf {
  keys: PropertyKey[];
  /** `flows.spot.allowedEvents[0]`, as error messages write it. */
  path: string;
}

/** Every string value of a configuration object. */
export function stringLeaves(value: unknown, keys: PropertyKey[] = []): StringLeaf[] {
  if (typeof value === 'string') return [{ keys, path: formatPath(keys) }];
  if (Array.isArray(value)) return value.flatMap((item, i) => stringLeaves(item, [...keys, i]));
  if (value !== null && typeof value === 'object') return Object.entries(value).flatMap(([key, item]) => stringLeaves(item, [...keys, key]));
  return [];
}

/** A deep copy of `config` with each of `leaves` set to `text`. */
export function withLeaves(config: object, leaves: readonly StringLeaf[], text: string): object {
  const copy = structuredClone(config) as Record<PropertyKey, unknown>;
  for (const { keys } of leaves) {
    const parent = keys.slice(0, -1).reduce<Record<PropertyKey, unknown>>((node, key) => node[key] as Record<PropertyKey, unknown>, copy);
    parent[keys.at(-1)!] = text;
  }
  return copy;
}

/**
 * Two valid configurations that between them give every string key of the
 * schema a value (bearer token and password inline in one, in files in the
 * other, as the schema allows only one of each; the file state backend in one,
 * the kubernetes one in the other). The files they name (TLS
 * material, secrets) are written to `dir`; `state.file` is relative.
 */
export function completeConfigs(dir: string): object[] {
  const certs = makeTestCertificates();
  const file = (name: string, text: string): string => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  // A function, not one object: an object used twice would become a YAML alias, and one marked value two.
  const retry = () => ({ initialBackoff: '10ms', maxBackoff: '20ms' });
  const base = {
    state: { file: 'runs.jsonl', maxQueuedBytes: '256MiB' },
    global: { bindAddr: '127.0.0.1:0' },
    server: {
      listen: '127.0.0.1:0',
      tls: { cert: file('server.pem', certs.server.cert), key: file('server-key.pem', certs.server.key), refresh: '1m' },
      shutdownGracePeriod: '1s',
      timeouts: { headers: '5s', body: '5s', idle: '10s' },
      limits: { maxBodyBytes: '1MiB' },
    },
    log: { level: 'info' },
    plugins: {
      g: {
        type: 'grpc',
        address: '127.0.0.1:1',
        timeout: '1s',
        retry: retry(),
        tls: { ca: file('ca.pem', certs.ca.cert), cert: file('client.pem', certs.client.cert), key: file('client-key.pem', certs.client.key), serverName: 'localhost', refresh: '1m' },
        transport: 'stream',
        keepalive: { time: '30s', timeout: '10s' },
      },
      l: { type: 'log', timeout: '1s', retry: retry() },
    },
    flows: {
      spot: {
        description: 'every kind of string value',
        allowedEvents: ['prometheus.server.alert.*'],
        filters: { s: 'x', l: ['x'], n: { not: 'x' }, nl: { not: ['x'] }, r: { regex: 'x' } },
        groupBy: ['instance_id'],
        cooldown: '1m',
        queueBytes: '64Mi',
        runRetry: retry(),
        plugins: ['g', { plugin: 'l', config: { mode: 'pool', maxUnavailable: 2, dryRun: false } }],
      },
    },
    // Nothing listens there: the queue's receives fail and are retried, as with SQS unreachable.
    sources: {
      sqs: [{ url: 'http://127.0.0.1:1/000000000000/notices', region: 'us-east-1', endpoint: 'http://127.0.0.1:1', visibilityTimeout: '30s', callTimeout: '10s' }],
      spotPrice: [
        {
          name: 'prices',
          region: 'us-east-1',
          endpoint: 'http://127.0.0.1:1',
          interval: '5m',
          callTimeout: '30s',
          history: '6h',
          instanceTypes: ['m5.large'],
          availabilityZones: ['us-east-1a'],
          discover: { tags: { cluster: 'prod' } },
          productDescription: 'Linux/UNIX',
          maxPrice: 0.2,
          jump: { ratio: 2, window: '1h' },
        },
      ],
    },
  };
  const withAuth = (auth: object): object => ({ ...base, server: { ...base.server, auth } });
  // Nothing listens there either: the store makes no call before the first event.
  const kubeconfig = file('kubeconfig', JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [{ name: 'c', cluster: { server: 'http://127.0.0.1:1', 'insecure-skip-tls-verify': true } }], users: [{ name: 'u', user: {} }], contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }], 'current-context': 'x' }));
  const kubernetesState = { backend: 'kubernetes', maxQueuedBytes: '1GiB', kubernetes: { namespace: 'ops', leasePrefix: 'ht-', leaseDuration: '30s', renewInterval: '10s', maxInFlight: 16, kubeconfig } };
  return [
    withAuth({ bearerTokenFile: file('token', 'token\n'), basic: { username: 'prometheus', passwordFile: file('password', 'password\n') } }),
    { ...withAuth({ bearerToken: 'token', basic: { username: 'prometheus', password: 'password' } }), state: kubernetesState },
  ];
}
