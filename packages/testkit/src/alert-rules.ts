/** A Prometheus alerting rule, as a rules file holds it. */
export interface AlertRule {
  alert: string;
  expr: string;
}

/** A metric as prom-client's `registry.getMetricsAsJSON()` gives it. */
export interface ExportedMetric {
  name: string;
  values: ReadonlyArray<{ labels: Readonly<Record<string, unknown>> }>;
}

/**
 * What is wrong with alerting rules against the metrics a process exports: a `hollowtrees_*`
 * metric it does not export, a matcher on a label the metric's series lack, or a metric taken
 * `increase()` of that has no series before its first increment (increase() cannot see a
 * series' first sample, so the first failure would go unseen). Empty when all is well.
 */
export function ruleMetricProblems(rules: readonly AlertRule[], exported: readonly ExportedMetric[]): string[] {
  const byName = new Map(exported.map((m) => [m.name, m]));
  const problems: string[] = [];
  for (const rule of rules) {
    for (const [, name, matchers = ''] of rule.expr.matchAll(/\b(hollowtrees_\w+)(\{[^}]*\})?/g)) {
      const metric = byName.get(name!);
      if (!metric) {
        problems.push(`${rule.alert}: ${name} is not exported`);
        continue;
      }
      const labels = new Set(metric.values.flatMap((v) => Object.keys(v.labels)));
      for (const [, label] of matchers.matchAll(/(\w+)\s*(?:=~|!~|!=|=)/g)) {
        if (!labels.has(label!)) problems.push(`${rule.alert}: ${name} has no label ${label}`);
      }
      if (rule.expr.includes(`increase(${name}`) && metric.values.length === 0) problems.push(`${rule.alert}: ${name} has no series before its first increment`);
    }
  }
  return problems;
}
