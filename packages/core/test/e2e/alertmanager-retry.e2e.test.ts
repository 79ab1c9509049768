/**
 * End to end with a real Alertmanager (Debian package `prometheus-alertmanager`)
 * in front of a flow that has no room: core answers the webhook it cannot
 * queue with 503, and Alertmanager delivers it again. Alertmanager's
 * `group_interval` and `repeat_interval` are 1h, so nothing but its retry of a
 * failed notification can bring the alert back within the test: a 200 for the
 * dropped alert would lose it for an hour.
 */
import { labelsOf } from '@hollowtrees/grpcplugin';
import { afterAll, beforeAll, expect, it, onTestFailed } from 'vitest';
import { closeEach, outputReport, pollUntil, startAlertmanager, tempDir, type Spawned } from '@hollowtrees/testkit';
import { startRecordingPlugin, type RecordingPlugin } from '../support/recording-plugin.js';
import { startTestCore, type TestCore } from '../support/start-core.js';
import { ALERTMANAGER, coreLogTail, coreState, counterSum, describeWithBinaries } from './real-binaries.js';
import { SPOT, coreConfig } from './spot-scenario.js';

const RUNNING = 'i-0e2e0000000000b1';
const REFUSED = 'i-0e2e0000000000b2';

const alertmanagerYml = (corePort: number): string => `
route:
  receiver: hollowtrees
  group_by: [instance_id]
  group_wait: 0s
  group_interval: 1h
  repeat_interval: 1h
receivers:
  - name: hollowtrees
    webhook_configs:
      - url: http://127.0.0.1:${corePort}/webhook/alertmanager
`;

/** Posts one firing alert to Alertmanager's API, as Prometheus would. */
async function fire(alertmanagerPort: number, instanceId: string): Promise<void> {
  const now = Date.now();
  const res = await fetch(`http://127.0.0.1:${alertmanagerPort}/api/v2/alerts`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify([{ labels: { alertname: SPOT, instance_id: instanceId }, startsAt: new Date(now).toISOString(), endsAt: new Date(now + 3_600_000).toISOString() }]),
  });
  if (res.status !== 200) throw new Error(`Alertmanager refused the alert: HTTP ${res.status} ${await res.text()}`);
}

describeWithBinaries('a flow with no room behind a real Alertmanager', [ALERTMANAGER], (bins) => {
  let release: () => void = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  let rec: RecordingPlugin | undefined;
  let core: TestCore | undefined;
  let am: Spawned | undefined;
  let amPort = 0;
  let dir: Awaited<ReturnType<typeof tempDir>> | undefined;

  const report = async (): Promise<string> => `${await coreState(core, rec?.calls ?? [])}\n${coreLogTail(core)}\n${outputReport([am])}`;
  const instancesCalled = (): string[] => (rec?.calls ?? []).map((call) => labelsOf(call.event).instance_id ?? '');

  beforeAll(async () => {
    rec = await startRecordingPlugin((event) => (labelsOf(event).instance_id === RUNNING ? held : undefined));
    // One run at a time and no queue: while the first run is held in the plugin, a second alert has no room.
    core = await startTestCore(coreConfig(rec.address, { timeout: '30s', spotLimits: { concurrency: 1, queueSize: 0 } }));
    dir = await tempDir('alertmanager-retry-e2e');
    const started = await startAlertmanager(bins[ALERTMANAGER.command]!, dir.path, alertmanagerYml(core.port));
    am = started.proc;
    amPort = started.port;
  });

  afterAll(() => closeEach([async () => release(), () => am?.kill(), () => core?.close(), () => rec?.close(), () => dir?.remove()]));

  it('answers the alert it cannot queue with 503, and runs it once when Alertmanager delivers it again', async () => {
    onTestFailed(async () => console.error(await report()));
    await fire(amPort, RUNNING);
    await pollUntil(() => instancesCalled().includes(RUNNING), 10_000, report);

    await fire(amPort, REFUSED);
    await pollUntil(async () => (await counterSum(core!.metrics.receiver.requestsRejected, { reason: 'queue_full' })) >= 1, 10_000, report);
    expect(instancesCalled()).toEqual([RUNNING]);

    // Room again: Alertmanager's retry of the failed notification runs the alert.
    release();
    await pollUntil(() => instancesCalled().includes(REFUSED), 20_000, report);
    await pollUntil(() => core!.engine.flowStatus().every((flow) => flow.running + flow.queued === 0), 5_000, report);
    expect(instancesCalled()).toEqual([RUNNING, REFUSED]);
    expect(await counterSum(core!.metrics.engine.eventsDropped, { reason: 'queue_full' })).toBeGreaterThanOrEqual(1);
  });
});
