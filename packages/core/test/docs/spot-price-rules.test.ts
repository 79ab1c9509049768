import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { expect, it } from 'vitest';
import { describeWithBinaries } from '../e2e/real-binaries.js';

const examples = fileURLToPath(new URL('../../../../examples/prometheus/', import.meta.url));
const run = promisify(execFile);

interface Rule {
  alert?: string;
  expr: string;
  labels?: Record<string, string>;
}

describeWithBinaries('examples/prometheus/spot-price-rules.yml', [{ command: 'promtool', debianPackage: 'prometheus' }], (paths) => {
  const promtool = paths['promtool']!;

  it('is valid, with prometheus.yml, and passes its promtool unit test (fires after 5m on the surging pool only, resolves after keep_firing_for)', async () => {
    await run(promtool, ['check', 'config', 'prometheus.yml'], { cwd: examples });
    const { stdout } = await run(promtool, ['test', 'rules', 'spot-price-rules.test.yml'], { cwd: examples });
    expect(stdout).toContain('SUCCESS');
  });

  it('SpotPriceSurge keeps the pool labels core sends and fixed threshold labels; the price is only an annotation', () => {
    const rules = (parse(readFileSync(`${examples}spot-price-rules.yml`, 'utf8')) as { groups: Array<{ rules: Rule[] }> }).groups.flatMap((g) => g.rules);
    const surge = rules.filter((r) => r.alert === 'SpotPriceSurge');
    expect(surge.length).toBeGreaterThan(0);
    for (const rule of surge) {
      expect(rule.expr).toContain('by (region, availability_zone, instance_type, product_description)');
      expect(rule.labels).toMatchObject({ threshold: expect.stringMatching(/^\d+\.\d+$/) as string, threshold_kind: expect.stringMatching(/^(absolute|on-demand-ratio|jump)$/) as string });
      expect(rule.labels).not.toHaveProperty('price');
    }
  });
});
