/**
 * Helpers for end-to-end tests that drive the real Prometheus and Alertmanager
 * binaries (Debian packages `prometheus`, `prometheus-alertmanager`): finding
 * them, starting Prometheus, and reading what core saw. The e2e tests skip
 * loudly when a binary is missing, and fail when `CI=true`. Spawning, ports,
 * readiness and cleanup are `@hollowtrees/testkit`'s, shared with the bench.
 */
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { startOnFreePort, type Spawned } from '@hollowtrees/testkit';
import { describe } from 'vitest';
import type { RecordedCall } from '../support/recording-plugin.js';
import type { TestCore } from '../support/start-core.js';
import type { AlertEventData } from '../../src/receiver/alert-to-event.js';

/** A binary an e2e test needs, and the Debian package that provides it. */
export interface RequiredBinary {
  command: string;
  debianPackage: string;
}

export const PROMETHEUS: RequiredBinary = { command: 'prometheus', debianPackage: 'prometheus' };
export const ALERTMANAGER: RequiredBinary = { command: 'prometheus-alertmanager', debianPackage: 'prometheus-alertmanager' };

/** Looks a command up on PATH as `which` does; undefined when it is not there. */
export function findBinary(command: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, command);
    try {
      accessSync(candidate, fsConstants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * `describe` when every binary is on PATH, with their absolute paths.
 * When one is missing: under `CI=true` the file fails (a missing binary is a
 * broken CI image, not a reason to skip); elsewhere the suite is skipped with a
 * loud warning saying what to install.
 */
export function describeWithBinaries(
  title: string,
  binaries: readonly RequiredBinary[],
  body: (paths: Record<string, string>) => void,
): void {
  const paths: Record<string, string> = {};
  const missing: RequiredBinary[] = [];
  for (const binary of binaries) {
    const found = findBinary(binary.command);
    if (found) paths[binary.command] = found;
    else missing.push(binary);
  }
  if (missing.length === 0) {
    describe(title, () => body(paths));
    return;
  }
  const message =
    `${missing.map((b) => `"${b.command}"`).join(' and ')} not found on PATH. ` +
    `Install with: apt-get install ${missing.map((b) => b.debianPackage).join(' ')} ` +
    `(every end-to-end test: apt-get install ${PROMETHEUS.debianPackage} ${ALERTMANAGER.debianPackage})`;
  if (process.env.CI === 'true') {
    throw new Error(`CI=true and a required binary is missing, so "${title}" cannot run: ${message}`);
  }
  const bar = '!'.repeat(100);
  console.warn(`\n${bar}\n!!! SKIPPING end-to-end tests "${title}":\n!!! ${message}\n!!! Under CI=true this is a failure.\n${bar}\n`);
  describe.skip(title, () => body(paths));
}

/**
 * Writes `prometheus.yml` and `rules.yml` into `dir` and starts Prometheus on
 * them (data in `dir/prometheus-data`) on a free port, re-sending firing alerts
 * once a second (`--rules.alert.resend-delay=1s`); resolves once `/-/ready` answers.
 */
export async function startPrometheus(
  command: string,
  dir: string,
  config: { prometheusYml: string; rulesYml: string },
): Promise<{ proc: Spawned; port: number }> {
  await writeFile(join(dir, 'prometheus.yml'), config.prometheusYml);
  await writeFile(join(dir, 'rules.yml'), config.rulesYml);
  return startOnFreePort(
    'prometheus',
    command,
    (port) => [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'prometheus-data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      `--web.external-url=http://127.0.0.1:${port}/`,
      '--rules.alert.resend-delay=1s',
    ],
    '/-/ready',
  );
}


// ---- core-side helpers shared by the e2e tests ----
/** Sum of a core counter's values whose labels match `labels`. */
export async function counterSum(
  counter: { get(): Promise<{ values: Array<{ value: number; labels: Record<string, string | number | undefined> }> }> },
  labels: Record<string, string>,
): Promise<number> {
  const { values } = await counter.get();
  return values.filter((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want)).reduce((sum, v) => sum + v.value, 0);
}

/**
 * An RFC 3339 time to epoch milliseconds, truncating sub-millisecond digits
 * (Prometheus' API prints nanoseconds; what it sends to an alertmanager has
 * milliseconds, truncated).
 */
export function epochMs(rfc3339: string): number {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/i.exec(rfc3339);
  if (!m) throw new Error(`not an RFC 3339 time: ${rfc3339}`);
  const fraction = (m[2] ?? '').slice(0, 3).padEnd(3, '0');
  return Date.parse(`${m[1]}.${fraction}${m[3]}`);
}

/** The data of an alert event a plugin received. */
export function alertData(call: RecordedCall): AlertEventData {
  return call.event.data as AlertEventData;
}

/** A compact description of what core and the plugin saw, for failure messages. */
export async function coreState(core: TestCore | undefined, calls: readonly RecordedCall[]): Promise<string> {
  if (!core) return 'core not started';
  const received = (await core.metrics.receiver.eventsReceived.get()).values.map((v) => `${String(v.labels.source)} ${String(v.labels.type)}=${v.value}`);
  const dedup = (await core.metrics.engine.eventsDeduplicated.get()).values.map((v) => `${String(v.labels.flow)}=${v.value}`);
  const rejected = (await core.metrics.receiver.requestsRejected.get()).values.map((v) => `${String(v.labels.reason)}=${v.value}`);
  return [
    `received: [${received.join(', ')}]`,
    `deduplicated: [${dedup.join(', ')}]`,
    `rejected: [${rejected.join(', ')}]`,
    `plugin calls: ${JSON.stringify(calls.map((c) => ({ flow: c.flow, type: c.event.type, id: c.event.id, time: c.event.time })))}`,
  ].join('; ');
}

/** The last core log lines, for a failure report. */
export function coreLogTail(core: TestCore | undefined, lines = 40): string {
  if (!core) return '';
  return `----- core logs (last ${lines}) -----\n${core.logs.slice(-lines).map((l) => JSON.stringify(l)).join('\n')}\n----- end of core logs -----`;
}
