/**
 * Core acts first, then acknowledges: the plugin call an alert starts leaves
 * core before the sender's 200 does, so the action does not wait behind the
 * acknowledgement's write (or behind the sender's handling of it).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTcpRelay } from '@hollowtrees/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { startRecordingPlugin } from '../../test/support/recording-plugin.js';
import { spotFlowConfig, startTestCore } from '../../test/support/start-core.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** POSTs one alert and notes in `seen` when the response's headers are read. */
function postAlert(url: string, instance: string, seen: string[]): Promise<number> {
  const body = JSON.stringify([{ labels: { alertname: 'SpotInstanceTerminating', instance_id: instance } }]);
  return new Promise((resolve, reject) => {
    const req = request(`${url}/api/v2/alerts`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      seen.push('acknowledgement');
      res.resume().on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject).end(body);
  });
}

describe('an accepted alert', () => {
  it.each([
    { transport: 'stream', journal: false },
    { transport: 'unary', journal: false },
    { transport: 'stream', journal: true },
  ])("reaches the plugin's connection before its 200 reaches the sender: $transport calls, state journal $journal", async ({ transport, journal }) => {
    const plugin = await startRecordingPlugin();
    cleanups.push(() => plugin.close());
    const seen: string[] = [];
    // Core, the relay and the test's HTTP client share this process's event loop, so what core wrote first is read here first.
    const relay = await startTcpRelay(plugin.server.port, { onClientBytes: () => seen.push('plugin call') });
    cleanups.push(() => relay.close());
    const dir = mkdtempSync(join(tmpdir(), 'hollowtrees-act-first-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const core = await startTestCore(`${journal ? `state: { file: ${join(dir, 'state.journal')} }\n` : ''}${spotFlowConfig(`127.0.0.1:${relay.port}`, `transport: ${transport}`)}`);
    cleanups.push(() => core.close());
    // The first alert opens the stream; the ones after find it open and idle, as in steady operation: its run ended, so
    // core has the plugin's answer, and the stream's headers before it (until they come, a call waits for the one before).
    expect(await postAlert(core.url, 'i-warm', [])).toBe(200);
    await plugin.waitForCalls(1);
    while (!(await (await fetch(`${core.url}/metrics`)).text()).includes('hollowtrees_flow_runs_total{flow="spot",outcome="succeeded"} 1')) await new Promise((r) => setTimeout(r, 10));
    for (let i = 1; i <= 5; i++) {
      seen.length = 0;
      expect(await postAlert(core.url, `i-${i}`, seen)).toBe(200);
      await plugin.waitForCalls(1 + i);
      expect(seen[0], `alert ${i}: ${seen.join(', ')}`).toBe('plugin call');
    }
  });
});
