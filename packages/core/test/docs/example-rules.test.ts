import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';

const read = (path: string): string => readFileSync(new URL(`../../../../${path}`, import.meta.url), 'utf8');
const EXPORTER = 'https://github.com/banzaicloud/spot-termination-exporter';

interface Rules {
  groups: Array<{ rules: Array<{ alert?: string; labels?: Record<string, string>; annotations?: Record<string, string> }> }>;
}

describe('examples/prometheus/spot-rules.yml and the README', () => {
  const rulesText = read('examples/prometheus/spot-rules.yml');
  const rules = (parse(rulesText) as Rules).groups.flatMap((g) => g.rules);

  it('no alert label is templated: a label that changes between evaluations makes a new alert every time', () => {
    for (const rule of rules) for (const value of Object.values(rule.labels ?? {})) expect(value, `${rule.alert}`).not.toContain('{{');
  });

  it('name and link the exporter whose metrics the rules use, and agree that no termination_time label comes from it', () => {
    const readme = read('README.md');
    expect(rulesText).toContain(EXPORTER);
    expect(readme).toContain(`(${EXPORTER})`);
    expect(rules.some((r) => 'termination_time' in (r.labels ?? {}))).toBe(false);
    expect(readme).toContain('so those rules set\nno `termination_time`');
  });
});
