import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Registry } from 'prom-client';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { CoreMetrics } from '../../src/metrics.js';
import { REJECT_REASONS } from '../../src/receiver/http-error.js';
import { describeWithBinaries } from '../e2e/real-binaries.js';

const examples = fileURLToPath(new URL('../../../../examples/', import.meta.url));
const run = promisify(execFile);

interface Rule {
  alert: string;
  expr: string;
}
const rules = (parse(readFileSync(`${examples}prometheus/hollowtrees-rules.yml`, 'utf8')) as { groups: Array<{ rules: Rule[] }> }).groups.flatMap((g) => g.rules);
const ruleNamed = (alert: string): Rule => rules.find((r) => r.alert === alert)!;
/** The reasons a rule's `reason=~"a|b"` matcher names. */
const reasonsOf = (alert: string): string[] => /reason=~"([^"]+)"/.exec(ruleNamed(alert).expr)![1]!.split('|');
// Rejections no alert is for: probes and scanners (not_found, method_not_allowed, a malformed
// request line or query), a slow client (timeout), a rollout (shutting_down).
const NOT_ALERTED = ['not_found', 'method_not_allowed', 'bad_request', 'timeout', 'shutting_down'];

describeWithBinaries('examples/prometheus/hollowtrees-rules.yml', [{ command: 'promtool', debianPackage: 'prometheus' }, { command: 'amtool', debianPackage: 'prometheus-alertmanager' }], (paths) => {
  it('is valid with prometheus.yml, the Alertmanager example routes it, and it passes its promtool unit tests', async () => {
    await run(paths['promtool']!, ['check', 'config', 'prometheus.yml'], { cwd: `${examples}prometheus` });
    const { stdout } = await run(paths['promtool']!, ['test', 'rules', 'hollowtrees-rules.test.yml'], { cwd: `${examples}prometheus` });
    expect(stdout).toContain('SUCCESS');
    await run(paths['amtool']!, ['check-config', 'alertmanager.yml'], { cwd: `${examples}alertmanager` });
  });
});

describe("examples/prometheus/hollowtrees-rules.yml against core's metrics", () => {
  it('names only metrics and labels core exports, and every counter it takes increase() of exists at zero from the start', async () => {
    const metrics = new CoreMetrics(new Registry());
    metrics.engine.initFlows(['spot']);
    metrics.sqs.initQueue('interruptions');
    metrics.spotPrice.initSource('spot-price-us-east-1');
    const exported = new Map((await metrics.registry.getMetricsAsJSON()).map((m) => [m.name, m]));
    const used = rules.flatMap((r) => [...r.expr.matchAll(/\b(hollowtrees_\w+)(\{[^}]*\})?/g)].map((m) => ({ alert: r.alert, name: m[1]!, matchers: m[2] ?? '', expr: r.expr })));
    expect(used.length).toBeGreaterThanOrEqual(8);
    for (const { alert, name, matchers, expr } of used) {
      const metric = exported.get(name);
      expect(metric, `${alert}: ${name}`).toBeDefined();
      const labels = new Set(metric!.values.flatMap((v) => Object.keys(v.labels)));
      const named = [...matchers.matchAll(/(\w+)\s*(=~|!=|=)/g)].map((m) => m[1]!);
      for (const label of named) expect(labels, `${alert}: ${name} has no label ${label}`).toContain(label);
      // A series that appears at 1 has no earlier sample: increase() would miss the first failure.
      if (expr.includes(`increase(${name}`)) expect(metric!.values.length, `${alert}: ${name} has no series before its first increment`).toBeGreaterThan(0);
    }
  });

  it('decides for every rejection reason core counts: alerted as lost (4xx), as refused for now (503), or left alone', () => {
    const lost = reasonsOf('HollowtreesSenderRefused');
    const refusedForNow = reasonsOf('HollowtreesOverloaded');
    expect([...lost, ...refusedForNow, ...NOT_ALERTED].sort()).toEqual([...REJECT_REASONS].sort());
  });
});
