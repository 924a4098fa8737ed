import { formatCount, renderTable } from '../report/format.ts';
import { type DiffOutcome, hasDifferences, type SampleRow } from './types.ts';

function describeKey(key: SampleRow | null, row: SampleRow | null): string {
  const shown = key ?? row ?? {};
  return Object.entries(shown)
    .map(([name, value]) => `${name}=${JSON.stringify(value)}`)
    .join(',');
}

/** The diff for people: a table of counts, notes, the first samples, and the verdict. */
export function renderDiff(outcome: DiffOutcome): string {
  const { result, notes, subset } = outcome;
  const rate = (rows: number, seconds: number) =>
    seconds > 0 ? formatCount(Math.round(rows / seconds)) : '-';
  const rows = result.tables.map((t) => [
    t.table,
    formatCount(t.processed),
    formatCount(t.matching),
    formatCount(t.mismatched),
    formatCount(t.extraLeft),
    formatCount(t.extraRight),
    rate(t.processed, t.seconds),
    t.seconds.toFixed(2),
  ]);
  const seconds = result.tables.reduce((sum, t) => sum + t.seconds, 0);
  const { total } = result;
  rows.push([
    'TOTAL',
    formatCount(total.processed),
    formatCount(total.matching),
    formatCount(total.mismatched),
    formatCount(total.extraLeft),
    formatCount(total.extraRight),
    rate(total.processed, seconds),
    seconds.toFixed(2),
  ]);
  const lines = [
    renderTable(
      ['TABLE', 'ROWS', 'MATCHING', 'MISMATCHED', 'EXTRA LEFT', 'EXTRA RIGHT', 'ROWS/S', 'SECONDS'],
      rows,
    ),
  ];
  for (const note of notes) {
    if (note.orderedBy === 'row digest')
      lines.push(
        `${note.table}: no primary key; compared by full-row order (a changed row shows as one extra on each side)`,
      );
  }
  for (const table of result.tables) {
    for (const s of table.samples.mismatched)
      lines.push(
        `${table.table}: mismatched ${describeKey(s.key, null)} (${s.columns.join(', ') || 'values'})`,
      );
    for (const s of table.samples.extraLeft)
      lines.push(`${table.table}: only on the left ${describeKey(s.key, s.row)}`);
    for (const s of table.samples.extraRight)
      lines.push(`${table.table}: only on the right ${describeKey(s.key, s.row)}`);
  }
  if (subset) lines.push('subset mode: rows only on the left are allowed');
  for (const table of result.tables) {
    if (table.withoutKeyspaceId)
      lines.push(
        `${table.table}: ${formatCount(table.withoutKeyspaceId)} left rows have no keyspace id (NULL): no key range holds them`,
      );
  }
  lines.push(
    hasDifferences(result, subset)
      ? `DIFFERENT: ${formatCount(total.mismatched)} mismatched, ${formatCount(total.extraLeft)} only on the left, ${formatCount(total.extraRight)} only on the right${total.withoutKeyspaceId ? `, ${formatCount(total.withoutKeyspaceId)} without a keyspace id` : ''}`
      : subset
        ? `the right is a subset of the left: ${formatCount(total.matching)} rows match, ${formatCount(total.extraLeft)} only on the left`
        : `identical: ${formatCount(total.matching)} rows match`,
  );
  return lines.join('\n');
}
