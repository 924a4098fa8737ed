import { formatBytes, renderTable } from '../agent/report/format.ts';
import type { ComparisonResult } from './harness.ts';

/** The stdout table: one block per comparison, stepback first, ratios side by side. */
export function renderResults(results: ComparisonResult[]): string {
  const rows: string[][] = [];
  for (const comparison of results) {
    for (const c of comparison.contenders) {
      rows.push([
        comparison.name,
        `${c.name}${c.role === 'limit' ? ' (limit)' : ''}`,
        c.seconds ? `${c.seconds.median.toFixed(2)}` : '-',
        c.seconds ? `${c.seconds.min.toFixed(2)}–${c.seconds.max.toFixed(2)}` : '-',
        c.ratioToStepback !== undefined ? `${c.ratioToStepback.toFixed(2)}×` : '-',
        c.mbPerSecond !== undefined ? c.mbPerSecond.toFixed(1) : '-',
        c.rowsPerSecond !== undefined ? Math.round(c.rowsPerSecond).toLocaleString('en-US') : '-',
        c.storedBytes !== undefined ? formatBytes(c.storedBytes) : '-',
        c.peakRssMb !== undefined ? c.peakRssMb.toFixed(0) : '-',
        c.skipped ??
          Object.entries(c.phases ?? {})
            .map(([phase, seconds]) => `${phase} ${seconds.toFixed(2)} s`)
            .join(', '),
      ]);
    }
  }
  return renderTable(
    [
      'COMPARISON',
      'TOOL',
      'MEDIAN S',
      'MIN–MAX S',
      'VS STEPBACK',
      'MB/S',
      'ROWS/S',
      'STORED',
      'PEAK RSS MB',
      'NOTE',
    ],
    rows,
  );
}

const escapeXml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * A bar chart of each tool's median time relative to stepback's (1.0 = as fast as stepback;
 * longer bars are slower), one group per comparison.
 */
export function renderChart(results: ComparisonResult[], title: string): string {
  const bars = results.flatMap((comparison) =>
    comparison.contenders
      .filter((c) => c.ratioToStepback !== undefined)
      .map((c) => ({ group: comparison.name, label: c.name, role: c.role, ratio: c.ratioToStepback! })),
  );
  const maxRatio = Math.max(2, ...bars.map((b) => b.ratio));
  const left = 330;
  const width = 900;
  const barHeight = 18;
  const scale = (width - left - 60) / maxRatio;
  const colors = { stepback: '#2b6cb0', peer: '#c05621', limit: '#718096' };
  let y = 50;
  let previousGroup = '';
  const parts: string[] = [];
  for (const bar of bars) {
    if (bar.group !== previousGroup) {
      y += 14;
      parts.push(`<text x="10" y="${y}" font-weight="bold">${escapeXml(bar.group)}</text>`);
      y += 8;
      previousGroup = bar.group;
    }
    parts.push(
      `<text x="20" y="${y + 13}">${escapeXml(bar.label)}${bar.role === 'limit' ? ' (limit)' : ''}</text>`,
      `<rect x="${left}" y="${y}" width="${(bar.ratio * scale).toFixed(1)}" height="${barHeight - 4}" fill="${colors[bar.role]}"/>`,
      `<text x="${left + bar.ratio * scale + 6}" y="${y + 12}">${bar.ratio.toFixed(2)}×</text>`,
    );
    y += barHeight;
  }
  const height = y + 30;
  const one = left + scale;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="24" font-size="15" font-weight="bold">${escapeXml(title)}</text>`,
    `<text x="10" y="42" fill="#555">median time relative to stepback (1.0× = stepback; longer is slower)</text>`,
    ...parts,
    `<line x1="${one}" y1="50" x2="${one}" y2="${y + 4}" stroke="#2b6cb0" stroke-dasharray="4 3"/>`,
    '</svg>',
    '',
  ].join('\n');
}
