import { describe, expect, it } from 'vitest';
import { ruleMetricProblems } from './alert-rules.js';

describe('ruleMetricProblems', () => {
  const exported = [
    { name: 'hollowtrees_calls_total', values: [{ labels: { plugin: 'drain', code: 'OK' } }] },
    { name: 'hollowtrees_errors_total', values: [] },
  ];

  it('finds a metric not exported, a label its series lack, and a counter without series taken increase() of', () => {
    const rules = [
      { alert: 'Fine', expr: 'sum by (plugin) (increase(hollowtrees_calls_total{code!="OK", plugin=~"d.*"}[5m])) > 0' },
      { alert: 'Renamed', expr: 'hollowtrees_call_total > 0' },
      { alert: 'NoSuchLabel', expr: 'hollowtrees_calls_total{flow="spot"} > 0' },
      { alert: 'FirstUnseen', expr: 'increase(hollowtrees_errors_total[5m]) > 0' },
    ];
    expect(ruleMetricProblems(rules, exported)).toEqual([
      'Renamed: hollowtrees_call_total is not exported',
      'NoSuchLabel: hollowtrees_calls_total has no label flow',
      'FirstUnseen: hollowtrees_errors_total has no series before its first increment',
    ]);
  });
});
