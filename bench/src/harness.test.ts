import { describe, expect, it } from 'vitest';
import { alertsBody } from './alerts.js';
import { percentile, summarize } from './stats.js';
import { renderBarChart } from './svg-chart.js';

describe('percentile', () => {
  it('uses the nearest rank', () => {
    const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(sorted, 50)).toBe(50);
    expect(percentile(sorted, 99)).toBe(99);
    expect(percentile(sorted, 100)).toBe(100);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
  });

  it('summarises unsorted samples without changing them', () => {
    const samples = [5, 1, 3, 2, 4];
    expect(summarize(samples)).toEqual({ count: 5, min: 1, p50: 3, p99: 5, max: 5, mean: 3 });
    expect(samples).toEqual([5, 1, 3, 2, 4]);
  });
});

describe('renderBarChart', () => {
  it('writes one bar per value, scaled within its panel, with escaped labels', () => {
    const svg = renderBarChart('A & B', [{ title: 'ingest', unit: 'alerts/s', bars: [{ label: 'x<y', value: 200 }, { label: 'z', value: 100 }] }]);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('A &amp; B');
    expect(svg).toContain('x&lt;y');
    const widths = [...svg.matchAll(/<rect x="\d+" y="\d+" width="([\d.]+)"/g)].map((m) => Number(m[1]));
    expect(widths).toHaveLength(2);
    expect(widths[0]! / widths[1]!).toBeCloseTo(2, 5);
  });
});

describe('alertsBody', () => {
  it('is a JSON array of distinct instances', () => {
    const alerts = JSON.parse(alertsBody('i-', 10, 3)) as Array<{ labels: Record<string, string> }>;
    expect(alerts.map((a) => a.labels.instance_id)).toEqual(['i-10', 'i-11', 'i-12']);
  });
});
