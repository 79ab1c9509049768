/**
 * The scenario both end-to-end tests run, and the checks on what the plugin
 * received: Prometheus' config and rules, with an alert that fires at once and
 * stays firing (`SpotTerminationNotice`) and one that also resolves
 * (`SpotRebalanceFlapping`), and core with a `spot` flow for the first and a
 * `resolved` flow for every resolution, both into one recording plugin. Each
 * test keeps its own labels, its own source URL and the checks only its path
 * allows.
 */
import { expect } from 'vitest';
import { pollUntil } from '@hollowtrees/testkit';
import type { AlertEventData } from '../../src/receiver/alert-to-event.js';
import type { RecordedCall } from '../support/recording-plugin.js';
import type { TestCore } from '../support/start-core.js';
import { alertData, counterSum, epochMs } from './real-binaries.js';

export const SPOT = 'SpotTerminationNotice';
export const FLAPPING = 'SpotRebalanceFlapping';
/** The event type of the firing spot alert. */
export const SPOT_TYPE = `prometheus.server.alert.${SPOT}`;
/** The event type of the flapping alert's resolution. */
export const FLAPPING_RESOLVED_TYPE = `prometheus.server.alert.${FLAPPING}.resolved`;

/**
 * Core's config: the `spot` flow (grouped by instance) and the `resolved` flow,
 * each with a 10m cooldown, into plugin `rec` (call timeout `timeout`, default
 * 5s); `spotLimits` sets the spot flow's concurrency and queue size.
 */
export const coreConfig = (pluginAddress: string, options: { timeout?: string; spotLimits?: { concurrency: number; queueSize: number } } = {}): string => `
plugins:
  rec: { type: grpc, address: ${pluginAddress}, timeout: ${options.timeout ?? '5s'} }
flows:
  spot:
    allowedEvents: [${SPOT_TYPE}]
    groupBy: [instance_id]
    cooldown: 10m
${options.spotLimits ? `    concurrency: ${options.spotLimits.concurrency}\n    queueSize: ${options.spotLimits.queueSize}\n` : ''}    plugins: [rec]
  resolved:
    allowedEvents: [prometheus.server.alert.*.resolved]
    cooldown: 10m
    plugins: [rec]
`;

/** Prometheus' config: the rules in `rules.yml`, evaluated every 250 ms, and alerts sent to the alertmanager on `alertmanagerPort` (API v2). */
export const prometheusYml = (alertmanagerPort: number): string => `
global:
  # Prometheus re-sends an alert once resend-delay (1s) has passed since the
  # last send, strictly: with 1s evaluations that is every 2s, with 250ms every 1.25s.
  evaluation_interval: 250ms
  scrape_interval: 1m
rule_files: [rules.yml]
alerting:
  alertmanagers:
    - api_version: v2
      static_configs:
        - targets: ['127.0.0.1:${alertmanagerPort}']
`;

/** A rule with two alerts, always sent in one batch: one core takes, and one it refuses (a label longer than the default `maxLabelLength`, 4,096). */
export const OVERSIZED = 'OversizedLabelAlert';

/**
 * Prometheus' rules: SpotTerminationNotice fires at once and stays firing.
 * SpotRebalanceFlapping fires for 3 s out of every 6 s, so within the test it
 * also resolves. With `oversized`, OversizedLabelAlert fires two alerts, one
 * with a label core refuses: Prometheus sends a rule's alerts in one batch.
 */
export const rulesYml = (spotLabels: Record<string, string>, flappingLabels: Record<string, string>, options: { oversized?: boolean } = {}): string => `
groups:
  - name: e2e
    rules:
      - alert: ${SPOT}
        expr: vector(1)
        labels: ${JSON.stringify(spotLabels)}
        annotations: { summary: "${spotSummary(spotLabels)}" }
      - alert: ${FLAPPING}
        expr: vector(1) and on() (vector(time() % 6) < 3)
        labels: ${JSON.stringify(flappingLabels)}
${options.oversized ? `      - alert: ${OVERSIZED}\n        expr: vector(1) or label_replace(vector(1), "blob", "${'x'.repeat(5_000)}", "", "")\n` : ''}`;

const spotSummary = (spotLabels: Record<string, string>): string => `Spot instance ${spotLabels.instance_id} will be reclaimed`;

/**
 * Waits (up to 15 s) until core has received the spot alert at least
 * `received` times from `source` (a receiver path) and deduplicated it at
 * least `deduplicated` times in the `spot` flow; throws `report()` otherwise.
 */
export async function waitForSpotRepeats(
  core: TestCore,
  expected: { source: string; received: number; deduplicated: number },
  report: () => Promise<string>,
): Promise<void> {
  await pollUntil(
    async () =>
      (await counterSum(core.metrics.receiver.eventsReceived, { source: expected.source, type: 'prometheus.server.alert.*' })) >= expected.received &&
      (await counterSum(core.metrics.engine.eventsDeduplicated, { flow: 'spot' })) >= expected.deduplicated,
    15_000,
    report,
  );
}

/**
 * Exactly one run of the `spot` flow: one plugin call, one recent run that
 * succeeded on the spot alert, and a flow-run counter of 1. Returns that call.
 */
export async function expectOneSpotRun(core: TestCore, calls: readonly RecordedCall[]): Promise<RecordedCall> {
  const spotCalls = calls.filter((c) => c.flow === 'spot');
  expect(spotCalls).toHaveLength(1);
  expect(core.engine.recentRuns().filter((r) => r.flow === 'spot')).toMatchObject([{ outcome: 'succeeded', eventType: SPOT_TYPE }]);
  expect(await counterSum(core.metrics.engine.flowRuns, { flow: 'spot' })).toBe(1);
  return spotCalls[0]!;
}

/**
 * The spot call carries the firing alert as a CloudEvent: its type, spec
 * version, `source`, a 32-hex-digit id, the rule's labels and annotation,
 * status firing, a generatorURL on Prometheus (`promPort`), and a time equal to
 * startsAt and to when Prometheus' own API says the alert became active.
 * Returns the event's data for the checks only one path allows.
 */
export async function expectSpotEvent(
  call: RecordedCall,
  expected: { source: string; promPort: number; labels: Record<string, string> },
): Promise<AlertEventData> {
  const { event } = call;
  const data = alertData(call);
  expect(event.type).toBe(SPOT_TYPE);
  expect(event.specversion).toBe('1.0');
  expect(event.source).toBe(expected.source);
  expect(event.id).toMatch(/^[0-9a-f]{32}$/);
  expect(data.labels).toEqual({ alertname: SPOT, ...expected.labels });
  expect(data.annotations).toEqual({ summary: spotSummary(expected.labels) });
  expect(data.status).toBe('firing');
  expect(data.generatorURL).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${expected.promPort}/graph\\?g0\\.expr=vector%281%29`));
  // time = startsAt, which is when Prometheus' own API says the alert became active.
  expect(event.time).toBe(data.startsAt);
  const res = await fetch(`http://127.0.0.1:${expected.promPort}/api/v1/alerts`);
  const active = ((await res.json()) as { data: { alerts: Array<{ labels: Record<string, string>; activeAt: string; state: string }> } }).data.alerts;
  const spotAlert = active.find((a) => a.labels.alertname === SPOT);
  expect(spotAlert).toMatchObject({ state: 'firing' });
  expect(epochMs(event.time!)).toBe(epochMs(spotAlert!.activeAt));
  return data;
}

/**
 * Every call of the `resolved` flow is the flapping alert's resolution from
 * `source`, with time = startsAt and an endsAt after it; each occurrence
 * (startsAt) ran once, under its own id; and the `spot` flow never saw the
 * resolution, nor the flapping alert.
 */
export function expectResolvedRuns(calls: readonly RecordedCall[], expected: { source: string; labels: Record<string, string> }): void {
  const resolvedCalls = calls.filter((c) => c.flow === 'resolved');
  for (const call of resolvedCalls) {
    expect(call.event.type).toBe(FLAPPING_RESOLVED_TYPE);
    expect(call.event.source).toBe(expected.source);
    expect(alertData(call)).toMatchObject({ status: 'resolved', labels: { alertname: FLAPPING, ...expected.labels } });
    expect(call.event.time).toBe(alertData(call).startsAt);
    // A resolved alert's endsAt is when it resolved: after it started.
    expect(epochMs(alertData(call).endsAt)).toBeGreaterThan(epochMs(alertData(call).startsAt));
  }
  // The resolution is re-sent again and again; each occurrence (startsAt) ran once.
  const occurrences = new Set(resolvedCalls.map((c) => alertData(c).startsAt));
  expect(resolvedCalls).toHaveLength(occurrences.size);
  expect(new Set(resolvedCalls.map((c) => c.event.id)).size).toBe(resolvedCalls.length);
  // The firing flow never saw the resolution, nor the flapping alert.
  expect(calls.filter((c) => c.flow === 'spot').map((c) => c.event.type)).toEqual([SPOT_TYPE]);
}
