import { readFileSync } from 'node:fs';
import { ruleMetricProblems, type AlertRule } from '@hollowtrees/testkit';
import { Registry } from 'prom-client';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { WatcherMetrics } from './watcher-metrics.js';

const RULES = new URL('../../../examples/prometheus/hollowtrees-rules.yml', import.meta.url);

describe("the node watcher's alerts in examples/prometheus/hollowtrees-rules.yml", () => {
  it('name only metrics and labels the node watcher exports, each counter they take increase() of at zero from the start', async () => {
    const groups = (parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ name: string; rules: AlertRule[] }> }).groups;
    const rules = groups.find((g) => g.name === 'hollowtrees-node-watcher')!.rules;
    expect(rules.length).toBeGreaterThanOrEqual(4);
    expect(ruleMetricProblems(rules, await new WatcherMetrics(new Registry()).registry.getMetricsAsJSON())).toEqual([]);
  });
});
