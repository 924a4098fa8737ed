import { appendFileSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';

/**
 * What each fault case measured, for `npm run faults`: every case appends one JSON line to the
 * file named by STEPBACK_FAULTS_RESULTS (set by the runner; unset under `npm test`, where nothing
 * is written), and the runner folds the lines into one table row per fault.
 */

/** FAULTS_FULL=1 (the runner): many more generated cases per property. */
export const faultsFull = process.env.FAULTS_FULL === '1';

/** `fast` runs in `npm test`, `full` under `npm run faults`. */
export function runs(fast: number, full: number): number {
  return faultsFull ? full : fast;
}

export interface FaultRecord {
  /** The row of the table: what was injected. */
  fault: string;
  /** Cases run (generated inputs, or restores). */
  cases: number;
  /** Cases where the system did what it must (refused cleanly, kept every row). */
  survived: number;
  /** Rows missing afterwards, measured; null where no database is involved. */
  rowsLost: number | null;
  /** Files left behind afterwards (outside targets, staging, temp files), measured; null where none can be. */
  filesLeft: number | null;
  /** Why the fault was not injected (e.g. no privilege to mount a filesystem). */
  skipped?: string;
}

export function recordFault(record: FaultRecord): void {
  const file = process.env.STEPBACK_FAULTS_RESULTS;
  if (file) appendFileSync(file, `${JSON.stringify(record)}\n`);
}

export function readFaultRecords(file: string): FaultRecord[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as FaultRecord);
}

const addMeasured = (a: number | null, b: number | null) =>
  a === null && b === null ? null : (a ?? 0) + (b ?? 0);

/** One row per fault, sorted by fault: counts and measures summed. */
export function summarizeFaults(records: readonly FaultRecord[]): FaultRecord[] {
  const rows = new Map<string, FaultRecord>();
  for (const record of records) {
    const row = rows.get(record.fault);
    if (!row) {
      rows.set(record.fault, { ...record });
      continue;
    }
    row.cases += record.cases;
    row.survived += record.survived;
    row.rowsLost = addMeasured(row.rowsLost, record.rowsLost);
    row.filesLeft = addMeasured(row.filesLeft, record.filesLeft);
    if (record.skipped) row.skipped = record.skipped;
  }
  return [...rows.values()].sort((a, b) => (a.fault < b.fault ? -1 : a.fault > b.fault ? 1 : 0));
}

/** The Markdown table `npm run faults` prints and docs/reliability.md shows. */
export function formatFaultTable(rows: readonly FaultRecord[]): string {
  const cell = (value: number | null) => (value === null ? '–' : String(value));
  const lines = [
    '| fault | cases | survived | rows lost | files left behind |',
    '| --- | ---: | ---: | ---: | ---: |',
  ];
  for (const row of rows) {
    lines.push(
      row.skipped
        ? `| ${row.fault} | skipped: ${row.skipped} | | | |`
        : `| ${row.fault} | ${row.cases} | ${row.survived} | ${cell(row.rowsLost)} | ${cell(row.filesLeft)} |`,
    );
  }
  return lines.join('\n');
}

/** Every path under `dir` (files and directories, relative, sorted); empty when it does not exist. */
export async function treeOf(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name))).sort();
}

/** How many paths `after` has that `before` did not. */
export function newPaths(before: readonly string[], after: readonly string[]): string[] {
  const known = new Set(before);
  return after.filter((entry) => !known.has(entry));
}

/**
 * Checks a fast-check property and records it as a fault row: the cases run, and all but the
 * failing one survived. Throws fast-check's report (the shrunk counterexample) when one fails.
 */
export async function checkProperty<T>(
  fault: string,
  property: fc.IProperty<T> | fc.IAsyncProperty<T>,
  parameters: fc.Parameters<T>,
): Promise<void> {
  const details = await fc.check(property, parameters);
  recordFault({
    fault,
    cases: details.numRuns,
    survived: details.numRuns - (details.failed ? 1 : 0),
    rowsLost: null,
    filesLeft: null,
  });
  if (details.failed) throw new Error(fc.defaultReportMessage(details));
}
