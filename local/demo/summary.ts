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
  /** Bytes the execution copied: raw (as on the instance, when known) and as stored (compressed). */
  bytes?: { raw?: number | undefined; stored: number };
  /** What moved per second, with what was counted and over which time. */
  throughput?: Throughput;
  /** The execution's error code and cause when it failed. */
  error?: string;
  checks: Check[];
}

/** A rate whose numerator and denominator are both named: `11.2 MiB/s = raw 34.7 MiB / agent 3.1s`. */
export interface Throughput {
  unit: 'bytes' | 'rows';
  amount: number;
  /** What was counted: `raw`, `rows loaded`. */
  counted: string;
  seconds: number;
  /** Over which time: `agent backup`, `execution`. */
  during: string;
}

export function describeThroughput(throughput: Throughput | undefined): string {
  if (!throughput || throughput.seconds <= 0) return '-';
  const { unit, amount, counted, seconds, during } = throughput;
  const rate =
    unit === 'bytes'
      ? `${formatBytes(amount / seconds)}/s`
      : `${formatCount(Math.round(amount / seconds))} rows/s`;
  const numerator =
    unit === 'bytes' ? `${counted} ${formatBytes(amount)}` : `${formatCount(amount)} ${counted}`;
  return `${rate} = ${numerator} / ${during} ${formatSeconds(seconds)}`;
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
      report.bytes?.raw === undefined ? '-' : formatBytes(report.bytes.raw),
      report.bytes === undefined ? '-' : formatBytes(report.bytes.stored),
      describeThroughput(report.throughput),
      verdict(checks[0]),
    ]);
    for (const check of checks.slice(1)) rows.push(['', '', '', '', '', '', verdict(check)]);
  }
  return renderTable(['EXECUTION', 'STATUS', 'TIME', 'RAW', 'STORED', 'THROUGHPUT', 'VERIFICATION'], rows);
}
