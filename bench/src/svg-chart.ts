/** One bar of a chart panel. */
export interface ChartBar {
  label: string;
  value: number;
  /** Fill colour; default by position. */
  color?: string;
}

/** One panel: bars sharing a unit and a scale. */
export interface ChartPanel {
  title: string;
  unit: string;
  bars: ChartBar[];
}

const PALETTE = ['#2f7d32', '#c0392b', '#7f8c8d', '#1f618d', '#b9770e', '#6c3483'];
const WIDTH = 760;
const LABEL_WIDTH = 230;
const VALUE_WIDTH = 130;
const BAR_HEIGHT = 20;
const BAR_GAP = 6;
const PANEL_TITLE = 26;
const PANEL_GAP = 18;

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** A value as the chart prints it: integers grouped, small values with 2 decimals. */
function formatValue(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US');
  return value.toFixed(2);
}

/**
 * Renders panels of horizontal bars as a standalone SVG document. Each panel
 * has its own linear scale from zero, so bars compare within a panel only.
 */
export function renderBarChart(title: string, panels: readonly ChartPanel[], subtitle = ''): string {
  const plotWidth = WIDTH - LABEL_WIDTH - VALUE_WIDTH - 20;
  const parts: string[] = [];
  let y = 30;
  parts.push(`<text x="10" y="${y}" font-size="16" font-weight="bold">${escapeXml(title)}</text>`);
  if (subtitle) {
    y += 18;
    parts.push(`<text x="10" y="${y}" font-size="11" fill="#555">${escapeXml(subtitle)}</text>`);
  }
  y += 14;
  for (const panel of panels) {
    y += PANEL_TITLE;
    parts.push(`<text x="10" y="${y - 8}" font-size="13" font-weight="bold">${escapeXml(`${panel.title} (${panel.unit})`)}</text>`);
    const max = Math.max(0, ...panel.bars.map((b) => (Number.isFinite(b.value) ? b.value : 0)));
    panel.bars.forEach((bar, i) => {
      const value = Number.isFinite(bar.value) ? Math.max(0, bar.value) : 0;
      const width = max > 0 ? Math.max(1, (value / max) * plotWidth) : 1;
      const color = bar.color ?? PALETTE[i % PALETTE.length]!;
      parts.push(
        `<text x="${LABEL_WIDTH - 8}" y="${y + BAR_HEIGHT - 6}" font-size="12" text-anchor="end">${escapeXml(bar.label)}</text>`,
        `<rect x="${LABEL_WIDTH}" y="${y}" width="${width.toFixed(1)}" height="${BAR_HEIGHT}" fill="${color}"/>`,
        `<text x="${(LABEL_WIDTH + width + 6).toFixed(1)}" y="${y + BAR_HEIGHT - 6}" font-size="12">${escapeXml(`${formatValue(bar.value)} ${panel.unit}`)}</text>`,
      );
      y += BAR_HEIGHT + BAR_GAP;
    });
    y += PANEL_GAP;
  }
  const height = y + 10;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="Helvetica, Arial, sans-serif">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
