import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Registry } from 'prom-client';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load-config.js';
import { compileTypePatterns } from '../../src/flow/event-matcher.js';
import { CoreMetrics } from '../../src/metrics.js';
import { REJECT_REASONS } from '../../src/receiver/http-error.js';
import { DELETE_REASONS } from '../../src/sources/sqs/sqs-metrics.js';
import { ruleMetricProblems, type AlertRule } from '@hollowtrees/testkit';
import { describeWithBinaries } from '../e2e/real-binaries.js';

const examples = fileURLToPath(new URL('../../../../examples/', import.meta.url));
const run = promisify(execFile);

const rules = (parse(readFileSync(`${examples}prometheus/hollowtrees-rules.yml`, 'utf8')) as { groups: Array<{ name: string; rules: AlertRule[] }> }).groups.find((g) => g.name === 'hollowtrees')!.rules;
const ruleNamed = (alert: string): AlertRule => rules.find((r) => r.alert === alert)!;
/** The reasons a rule's `reason=~"a|b"` matcher names. */
const reasonsOf = (alert: string): string[] => /reason=~"([^"]+)"/.exec(ruleNamed(alert).expr)![1]!.split('|');
// Rejections no alert is for: probes and scanners (not_found, method_not_allowed, a malformed
// request line or query, a GET without credentials: unauthorized_read), a slow client (timeout),
// a rollout (shutting_down).
const NOT_ALERTED = ['not_found', 'method_not_allowed', 'bad_request', 'unauthorized_read', 'timeout', 'shutting_down'];
// SQS messages deleted with nothing lost: acted on, or with nothing to do (a plugin's NOT_FOUND is logged as a warning).
const DELETED_NOT_ALERTED = ['acted', 'not_found', 'deduplicated', 'unmatched', 'ignored'];

describeWithBinaries('examples/prometheus/hollowtrees-rules.yml', [{ command: 'promtool', debianPackage: 'prometheus' }, { command: 'amtool', debianPackage: 'prometheus-alertmanager' }], (paths) => {
  it('is valid with prometheus.yml, the Alertmanager example routes it, and it passes its promtool unit tests', async () => {
    await run(paths['promtool']!, ['check', 'config', 'prometheus.yml'], { cwd: `${examples}prometheus` });
    const { stdout } = await run(paths['promtool']!, ['test', 'rules', 'hollowtrees-rules.test.yml'], { cwd: `${examples}prometheus` });
    expect(stdout).toContain('SUCCESS');
    await run(paths['amtool']!, ['check-config', 'alertmanager.yml'], { cwd: `${examples}alertmanager` });
  });

  it('routes each alert of the example rules that a flow of examples/config.yaml takes to Hollowtrees, and every other one to a person', async () => {
    const { config } = parseConfig(readFileSync(`${examples}config.yaml`, 'utf8'), `${examples}config.yaml`, {});
    const taken = compileTypePatterns(Object.values(config.flows).flatMap((flow) => flow.allowedEvents));
    const names = ['spot-rules.yml', 'spot-price-rules.yml', 'hollowtrees-rules.yml'].flatMap((file) =>
      (parse(readFileSync(`${examples}prometheus/${file}`, 'utf8')) as { groups: Array<{ rules: AlertRule[] }> }).groups.flatMap((g) => g.rules.flatMap((r) => (r.alert ? [r.alert] : []))),
    );
    const routed = async (alertname: string): Promise<string> =>
      (await run(paths['amtool']!, ['config', 'routes', 'test', '--config.file=alertmanager.yml', `alertname=${alertname}`], { cwd: `${examples}alertmanager` })).stdout.trim();
    const receivers = Object.fromEntries(await Promise.all(names.map(async (name) => [name, await routed(name)] as const)));
    // An alert no flow takes is answered 200 and counted as unmatched: sent to Hollowtrees, nobody would ever see it.
    expect(receivers).toEqual(Object.fromEntries(names.map((name) => [name, taken(`prometheus.server.alert.${name}`) ? 'hollowtrees' : 'on-call'])));
  }, 60_000);
});

describe("examples/prometheus/hollowtrees-rules.yml against core's metrics", () => {
  it('names only metrics and labels core exports, and every counter it takes increase() of exists at zero from the start', async () => {
    const metrics = new CoreMetrics(new Registry());
    metrics.engine.initFlows(['spot']);
    metrics.sqs.initQueue('interruptions');
    metrics.spotPrice.initSource('spot-price-us-east-1');
    expect(rules.length).toBeGreaterThanOrEqual(9);
    expect(ruleMetricProblems(rules, await metrics.registry.getMetricsAsJSON())).toEqual([]);
  });

  it('decides for every rejection reason core counts: alerted as lost (4xx), as refused for now (503), or left alone', () => {
    const lost = reasonsOf('HollowtreesSenderRefused');
    const refusedForNow = reasonsOf('HollowtreesOverloaded');
    expect([...lost, ...refusedForNow, ...NOT_ALERTED].sort()).toEqual([...REJECT_REASONS].sort());
  });

  it('decides for every reason the SQS source deletes a message: alerted as a notice lost, or left alone', () => {
    expect([...reasonsOf('HollowtreesNoticeUnreadable'), ...DELETED_NOT_ALERTED].sort()).toEqual([...DELETE_REASONS].sort());
  });
});
