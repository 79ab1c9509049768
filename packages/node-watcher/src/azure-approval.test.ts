import { pluginLogger, systemClock } from '@hollowtrees/grpcplugin';
import { afterEach, describe, expect, it } from 'vitest';
import { AzureApprover } from './azure-approval.js';
import { CoreClient } from './core-client.js';
import { capturedLogger, Cleanups, startCore, startRecordingPlugin, until } from './test-support/watch-harness.js';

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

describe('AzureApprover', () => {
  it('says it gives up when the flow runs of the event have not all succeeded by maxWaitMs', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const plugin = cleanups.add(await startRecordingPlugin(() => held), (p) => p.close());
    const core = cleanups.add(await startCore(plugin.address), (c) => c.close());
    // Before core closes, which waits for the held run.
    cleanups.add(held, () => release());
    const event = { specversion: '1.0', id: 'ev-1', source: 'test', type: 'hollowtrees.node.azure.preempt', data: { labels: {} } };
    const posted = await fetch(`${core.url}/api/v1/events`, { method: 'POST', headers: { 'content-type': 'application/cloudevents+json' }, body: JSON.stringify(event) });
    expect(posted.status).toBe(200);
    await until('the run started', () => plugin.events.length === 1);
    const client = cleanups.add(new CoreClient({ coreUrl: core.url }), (c) => c.close());
    const { logger, lines } = capturedLogger();
    const approvals: string[] = [];
    const approver = cleanups.add(
      new AzureApprover({
        runsOf: (id, s) => client.runsOf(id, s),
        groupsOf: (id, s) => client.groupsOf(id, s),
        approve: (id) => {
          approvals.push(id);
          return Promise.resolve('approved');
        },
        intervalMs: 20,
        maxWaitMs: 300,
        clock: systemClock,
        logger: pluginLogger(logger),
      }),
      (a) => a.close(),
    );

    approver.track('ev-1');
    const gaveUp = (): Record<string, unknown> | undefined => lines.find((l) => l.event_id === 'ev-1' && String(l.msg).startsWith('not approving the Azure event: its flow runs did not all succeed in time'));
    await until('the approver gave up', () => gaveUp() !== undefined);
    expect(gaveUp()).toMatchObject({ level: 'warn', waited_ms: 300 });
    expect(approvals).toEqual([]);
  });
});
