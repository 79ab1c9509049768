/**
 * End to end with a real Prometheus (Debian package `prometheus`): Prometheus
 * evaluates a rule that fires at once and sends the alert to core as its
 * alertmanager (`POST /api/v2/alerts`), re-sending it every ~1.25 s
 * (`--rules.alert.resend-delay=1s`). Prometheus loads its alertmanager list
 * about 5 s after start (its discovery updates are throttled to 5 s), so the
 * first alert core sees comes ~5 s in. Core runs the flow into a real gRPC plugin.
 */
import { afterAll, beforeAll, expect, it, onTestFailed } from 'vitest';
import { closeEach, outputReport, pollUntil, tempDir, type Spawned } from '@hollowtrees/testkit';
import type { AlertEventData } from '../../src/receiver/alert-to-event.js';
import { startRecordingPlugin, type RecordedCall, type RecordingPlugin } from '../support/recording-plugin.js';
import { startTestCore, type TestCore } from '../support/start-core.js';
import { PROMETHEUS, coreLogTail, coreState, counterSum, describeWithBinaries, startPrometheus } from './real-binaries.js';
import { FLAPPING_RESOLVED_TYPE, OVERSIZED, SPOT_TYPE, coreConfig, expectOneSpotRun, expectResolvedRuns, expectSpotEvent, prometheusYml, rulesYml, waitForSpotRepeats } from './spot-scenario.js';

const SPOT_LABELS = { instance_id: 'i-0e2e000000000001', node: 'ip-10-0-9-9.eu-west-1.compute.internal', cluster_name: 'e2e', severity: 'critical' };
const FLAPPING_LABELS = { instance_id: 'i-0e2e000000000002', cluster_name: 'e2e' };

describeWithBinaries('core with a real Prometheus sending alerts to it', [PROMETHEUS], (bins) => {
  let rec: RecordingPlugin | undefined;
  let core: TestCore | undefined;
  let prom: Spawned | undefined;
  let promPort = 0;
  let dir: Awaited<ReturnType<typeof tempDir>> | undefined;

  const report = async (): Promise<string> => `${await coreState(core, rec?.calls ?? [])}\n${coreLogTail(core)}\n${outputReport([prom])}`;

  beforeAll(async () => {
    rec = await startRecordingPlugin();
    core = await startTestCore(`${coreConfig(rec.address)}  oversized:\n    allowedEvents: [prometheus.server.alert.${OVERSIZED}]\n    cooldown: 10m\n    plugins: [rec]\n`);
    dir = await tempDir('prometheus-e2e');
    const started = await startPrometheus(bins[PROMETHEUS.command]!, dir.path, {
      // Core itself is Prometheus' alertmanager.
      prometheusYml: prometheusYml(core.port),
      rulesYml: rulesYml(SPOT_LABELS, FLAPPING_LABELS, { oversized: true }),
    });
    prom = started.proc;
    promPort = started.port;
  });

  // Each step runs even when an earlier one (or beforeAll) failed.
  afterAll(() => closeEach([() => prom?.kill(), () => core?.close(), () => rec?.close(), () => dir?.remove()]));

  it('repeated re-sends of one firing alert within the cooldown start exactly one plugin run, with the alert as a CloudEvent', async () => {
    onTestFailed(async () => console.error(await report()));
    // The first send plus at least three re-sends, all deduplicated into the first run.
    await waitForSpotRepeats(core!, { source: 'api_v2', received: 4, deduplicated: 3 }, report);
    const spotCall = await expectOneSpotRun(core!, rec!.calls);
    await expectSpotEvent(spotCall, { source: `http://127.0.0.1:${promPort}`, promPort, labels: SPOT_LABELS });

    // The metrics endpoint tells the same story.
    const metrics = await (await fetch(`${core!.url}/metrics`)).text();
    expect(metrics).toMatch(/hollowtrees_events_received_total\{source="api_v2",type="prometheus\.server\.alert\.\*"\} ([4-9]|\d\d+)\b/);
    expect(metrics).toMatch(/hollowtrees_events_deduplicated_total\{flow="spot"\} ([3-9]|\d\d+)\b/);
  });

  it('an alert core refuses costs the rest of its batch nothing: the other alert runs, the 400 names the refused one', async () => {
    onTestFailed(async () => console.error(await report()));
    const oversized = (): RecordedCall[] => rec!.calls.filter((c) => c.event.type === `prometheus.server.alert.${OVERSIZED}`);
    await pollUntil(async () => oversized().length > 0 && (await counterSum(core!.metrics.receiver.requestsRejected, { reason: 'bad_data' })) >= 2, 15_000, report);
    expect(oversized().map((c) => Object.keys((c.event.data as AlertEventData).labels).sort())).toEqual([['alertname']]);
    const [source] = (await (await fetch(`${core!.url}/api/v1/status/sources`)).json()) as Array<{ lastError?: { message: string } }>;
    expect(source!.lastError!.message).toMatch(/^400 bad_data: alerts\[\d\]\.labels\.blob: longer than the limit of 4096 characters \(1 of \d alerts refused; the other \d were accepted\)$/);
  });

  it('an alert that resolves reaches a flow of prometheus.server.alert.*.resolved once per occurrence', async () => {
    onTestFailed(async () => console.error(await report()));
    // Prometheus re-sends the resolution every second: wait for a re-send as well.
    await pollUntil(
      async () => rec!.calls.some((c) => c.flow === 'resolved') && (await counterSum(core!.metrics.receiver.eventsReceived, { type: 'prometheus.server.alert.*.resolved' })) >= 2,
      15_000,
      report,
    );
    expectResolvedRuns(rec!.calls, { source: `http://127.0.0.1:${promPort}`, labels: FLAPPING_LABELS });
  });
});
