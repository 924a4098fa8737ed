import { formatBytes, formatCount, formatSeconds, renderTable } from '../../agent/report/format.ts';

/** One thing the demo verified, in the operator's words. */
export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

/** One state machine execution of the demo and what was verified after it. */
export interface ExecutionReport {
  machine: string;
  status: 'SUCCEEDED' | 'FAILED' | 'NOT RUN';
  seconds: number;
  /** Bytes the execution stored (backup, snapshots) or restored. */
  bytes?: number;
  /** What moved per second: bytes (backup, restore) or rows (reshard). */
  throughput?: string;
  /** The execution's error code and cause when it failed. */
  error?: string;
  checks: Check[];
}

export function bytesPerSecond(bytes: number, seconds: number): string {
  return seconds > 0 ? `${formatBytes(bytes / seconds)}/s` : '-';
}

export function rowsPerSecond(rows: number, seconds: number): string {
  return seconds > 0 ? `${formatCount(Math.round(rows / seconds))} rows/s` : '-';
}

/** Every execution succeeded and every check passed. */
export function allPassed(reports: ExecutionReport[]): boolean {
  return (
    reports.length > 0 &&
    reports.every((report) => report.status === 'SUCCEEDED' && report.checks.every((check) => check.ok))
  );
}

/** The table the demo ends with: one row per execution, then one row per further check. */
export function renderSummary(reports: ExecutionReport[]): string {
  const rows: string[][] = [];
  for (const report of reports) {
    const checks = report.error
      ? [{ name: 'execution', ok: false, detail: report.error }, ...report.checks]
      : report.checks;
    const verdict = (check: Check | undefined) =>
      check ? `${check.ok ? 'PASS' : 'FAIL'} ${check.name}: ${check.detail}` : '-';
    rows.push([
      report.machine,
      report.status,
      report.status === 'NOT RUN' ? '-' : formatSeconds(report.seconds),
      report.bytes === undefined ? '-' : formatBytes(report.bytes),
      report.throughput ?? '-',
      verdict(checks[0]),
    ]);
    for (const check of checks.slice(1)) rows.push(['', '', '', '', '', verdict(check)]);
  }
  return renderTable(['EXECUTION', 'STATUS', 'TIME', 'BYTES', 'THROUGHPUT', 'VERIFICATION'], rows);
}
