import fs from 'node:fs/promises';
import type { DrillDifference } from '../../core/drills.ts';
import { messageOf } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import { type BackupEvidence, EVIDENCE_METHOD } from '../../core/manifest.ts';
import { compareEvidence } from '../diff/table-checksum.ts';
import { instanceEvidence } from '../engines/evidence.ts';
import { userDatabasesWithTables } from '../instance/databases.ts';
import { type Connection, qualifiedName, queryRows } from '../mysql/connection.ts';
import type { MysqlDaemon } from '../mysqld/daemon.ts';
import type { Progress } from '../report/reporter.ts';

/** What a drill found on a restored copy. */
export interface DrillFindings {
  tablesChecked: number;
  tablesCheckedByServer: string[];
  differences: DrillDifference[];
  problems: string[];
}

export const noFindings = (): DrillFindings => ({
  tablesChecked: 0,
  tablesCheckedByServer: [],
  differences: [],
  problems: [],
});

/** Where the error log ends now, so that a drill reads only what the restored server wrote. */
export async function errorLogEnd(path: string | undefined): Promise<number> {
  if (!path) return 0;
  return (await fs.stat(path).catch(() => undefined))?.size ?? 0;
}

/**
 * The `[ERROR]` lines the server wrote to its error log since `from` (InnoDB recovery, a table it
 * could not open): a restored copy that starts with errors does not pass. At most 20, each cut.
 */
export async function errorLogErrors(path: string | undefined, from: number): Promise<string[]> {
  if (!path) return [];
  const handle = await fs.open(path, 'r').catch(() => undefined);
  if (!handle) return [];
  try {
    const found: string[] = [];
    const stream = handle.createReadStream({ start: from, encoding: 'utf8' });
    let rest = '';
    for await (const chunk of stream as AsyncIterable<string>) {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines)
        if (/\[ERROR\]/.test(line) && found.length < 20) found.push(line.slice(0, 500));
    }
    if (/\[ERROR\]/.test(rest) && found.length < 20) found.push(rest.slice(0, 500));
    return found;
  } finally {
    await handle.close();
  }
}

/** Up to `count` tables of every user database, chosen at random: which ones CHECK TABLE reads. */
async function sampleTables(connection: Connection, count: number): Promise<[string, string][]> {
  const tables: [string, string][] = [];
  for (const database of await userDatabasesWithTables(connection)) {
    const rows = await queryRows<{ name: string }>(
      connection,
      "SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE'",
      [database],
    );
    for (const row of rows) tables.push([database, String(row.name)]);
  }
  for (let i = tables.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [tables[i], tables[j]] = [tables[j]!, tables[i]!];
  }
  return tables.slice(0, count).sort();
}

/** CHECK TABLE on each table: any message that is not OK is a difference naming the table. */
async function checkTables(
  connection: Connection,
  tables: [string, string][],
  findings: DrillFindings,
): Promise<void> {
  for (const [database, table] of tables) {
    const rows = await queryRows<{ Msg_type: string; Msg_text: string }>(
      connection,
      `CHECK TABLE ${qualifiedName(database, table)}`,
    );
    findings.tablesCheckedByServer.push(`${database}.${table}`);
    const bad = rows.filter(
      (row) =>
        row.Msg_type?.toLowerCase() === 'error' ||
        (row.Msg_type?.toLowerCase() === 'status' &&
          !/^(OK|Table is already up to date)$/i.test(row.Msg_text)),
    );
    if (bad.length > 0) {
      findings.differences.push({
        database,
        table,
        problem: `CHECK TABLE: ${bad.map((row) => `${row.Msg_type}: ${row.Msg_text}`).join('; ')}`,
      });
    }
  }
}

export interface InspectOptions {
  daemon: MysqlDaemon;
  /** What the restored copy must hold: the backup's own evidence, or an earlier drill's. */
  evidence: BackupEvidence | undefined;
  /** Compute the evidence even when there is none to compare with (to record it). */
  takeEvidence: boolean;
  /** Where the error log ended before the restored server started. */
  errorLogFrom: number;
  checkTables: number;
  logger: Logger;
  progress: (update: Progress) => void;
  signal: AbortSignal;
}

/**
 * Looks at a restored copy running on the drill instance: its start left no errors in the error
 * log, CHECK TABLE passes on a sample, and every table's rows and checksum are those of
 * `options.evidence` (when there is any). Adds what it finds to `findings` and returns the evidence
 * it computed (undefined when it computed none); throws only when it cannot look.
 */
export async function inspectRestoredCopy(
  options: InspectOptions,
  findings: DrillFindings,
): Promise<BackupEvidence | undefined> {
  const { daemon, logger } = options;
  const errors = await errorLogErrors(daemon.config.logError, options.errorLogFrom);
  for (const line of errors) findings.problems.push(`error log: ${line}`);
  if (!daemon.config.logError)
    logger.warn('the drill instance has no log-error: its start is not checked in a log');

  await daemon.withConnection(async (connection) => {
    const sample = await sampleTables(connection, options.checkTables);
    logger.info(`CHECK TABLE on ${sample.length} tables`);
    await checkTables(connection, sample, findings);
  });

  const recorded = options.evidence;
  if (!recorded && !options.takeEvidence) {
    logger.warn('the backup recorded no evidence: its tables cannot be compared, only started and checked');
    return undefined;
  }
  if (recorded && recorded.method !== EVIDENCE_METHOD) {
    logger.warn(
      `the backup's evidence was computed by an older checksum (${recorded.method}): its tables cannot be compared, only started and checked`,
    );
    return undefined;
  }
  const unreadable = new Map<string, string>();
  const found = await instanceEvidence(daemon, {
    ...options,
    onUnreadable: (database, table, error) =>
      unreadable.set(JSON.stringify([database, table]), `cannot be read: ${messageOf(error)}`),
  });
  for (const [key, problem] of unreadable) {
    const [database, table] = JSON.parse(key) as [string, string];
    if (!recorded) findings.differences.push({ database, table, problem });
  }
  if (!recorded) return found;
  findings.tablesChecked = found.tables.length;
  for (const difference of compareEvidence(recorded.tables, found.tables)) {
    const readError = unreadable.get(JSON.stringify([difference.database, difference.table]));
    findings.differences.push(readError ? { ...difference, problem: readError } : difference);
  }
  return found;
}
