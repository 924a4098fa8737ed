import { type Connection, queryRows, quoteIdentifier } from '../../../mysql/connection.ts';

/**
 * The load ledger: which data files of which sources are in a destination database. It lives in the
 * `_stepback` database of the destination instance, so the restored database holds only its own
 * tables. For InnoDB tables a file's rows and its ledger row commit in one transaction: after a crash
 * a file is either wholly loaded and recorded, or neither.
 */

export const LEDGER_DATABASE = '_stepback';

const ledgerTables = [
  `CREATE TABLE IF NOT EXISTS \`${LEDGER_DATABASE}\`.\`multirestore_run\` (
  db_name VARCHAR(64) NOT NULL,
  sources TEXT NOT NULL,
  started_at DATETIME(6) NOT NULL,
  finished_at DATETIME(6) NULL,
  PRIMARY KEY (db_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
  `CREATE TABLE IF NOT EXISTS \`${LEDGER_DATABASE}\`.\`multirestore_ledger\` (
  db_name VARCHAR(64) NOT NULL,
  source_index INT UNSIGNED NOT NULL,
  file_name VARCHAR(200) NOT NULL,
  table_name VARCHAR(64) NOT NULL,
  row_count BIGINT UNSIGNED NOT NULL,
  state ENUM('loading','loaded') NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  PRIMARY KEY (db_name, source_index, file_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
];

/** What filtered replication resumes from: one row per source (Vitess's blp_checkpoint). */
const checkpointTable = `CREATE TABLE IF NOT EXISTS \`${LEDGER_DATABASE}\`.\`checkpoint\` (
  db_name VARCHAR(64) NOT NULL,
  source_index INT UNSIGNED NOT NULL,
  source VARCHAR(720) NOT NULL,
  position TEXT NOT NULL,
  time_updated BIGINT UNSIGNED NOT NULL,
  flags VARCHAR(250) NOT NULL DEFAULT '',
  PRIMARY KEY (db_name, source_index)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`;

export async function ensureLedger(connection: Connection): Promise<void> {
  await connection.query(`CREATE DATABASE IF NOT EXISTS ${quoteIdentifier(LEDGER_DATABASE)}`);
  for (const statement of ledgerTables) await connection.query(statement);
}

export interface RunRecord {
  sources: string[];
  finished: boolean;
}

/** The multirestore that last loaded `database`, if any. */
export async function readRun(connection: Connection, database: string): Promise<RunRecord | undefined> {
  const [row] = await queryRows<{ sources: string; finished_at: string | null }>(
    connection,
    `SELECT sources, finished_at FROM \`${LEDGER_DATABASE}\`.multirestore_run WHERE db_name = ?`,
    [database],
  );
  if (!row) return undefined;
  let sources: string[] = [];
  try {
    const parsed: unknown = JSON.parse(row.sources);
    if (Array.isArray(parsed)) sources = parsed.map(String);
  } catch {}
  return { sources, finished: row.finished_at !== null };
}

/** Starts a new run for `database`, forgetting every file an earlier run recorded. */
export async function startRun(
  connection: Connection,
  database: string,
  sources: readonly string[],
): Promise<void> {
  await connection.query(`DELETE FROM \`${LEDGER_DATABASE}\`.multirestore_ledger WHERE db_name = ?`, [
    database,
  ]);
  await connection.query(
    `REPLACE INTO \`${LEDGER_DATABASE}\`.multirestore_run (db_name, sources, started_at, finished_at) VALUES (?, ?, NOW(6), NULL)`,
    [database, JSON.stringify(sources)],
  );
}

export async function finishRun(connection: Connection, database: string): Promise<void> {
  await connection.query(
    `UPDATE \`${LEDGER_DATABASE}\`.multirestore_run SET finished_at = NOW(6) WHERE db_name = ?`,
    [database],
  );
}

export interface LedgerEntry {
  sourceIndex: number;
  file: string;
  table: string;
  state: 'loading' | 'loaded';
}

export async function readLedger(connection: Connection, database: string): Promise<LedgerEntry[]> {
  const rows = await queryRows<{
    source_index: number;
    file_name: string;
    table_name: string;
    state: 'loading' | 'loaded';
  }>(
    connection,
    `SELECT source_index, file_name, table_name, state FROM \`${LEDGER_DATABASE}\`.multirestore_ledger WHERE db_name = ?`,
    [database],
  );
  return rows.map((row) => ({
    sourceIndex: Number(row.source_index),
    file: row.file_name,
    table: row.table_name,
    state: row.state,
  }));
}

/** Records a file's state; inside the load's transaction for InnoDB tables. */
export async function recordFile(
  connection: Connection,
  database: string,
  entry: LedgerEntry & { rows: number },
): Promise<void> {
  await connection.query(
    `REPLACE INTO \`${LEDGER_DATABASE}\`.multirestore_ledger (db_name, source_index, file_name, table_name, row_count, state, updated_at) VALUES (?, ?, ?, ?, ?, ?, NOW(6))`,
    [database, entry.sourceIndex, entry.file, entry.table, entry.rows, entry.state],
  );
}

/** Forgets a table's files (after a non-transactional table was emptied to be loaded again). */
export async function forgetTable(connection: Connection, database: string, table: string): Promise<void> {
  await connection.query(
    `DELETE FROM \`${LEDGER_DATABASE}\`.multirestore_ledger WHERE db_name = ? AND table_name = ?`,
    [database, table],
  );
}

export interface CheckpointRow {
  sourceIndex: number;
  source: string;
  position: string;
  flags: string;
}

/** Writes one checkpoint row per source, replacing those of an earlier run. */
export async function writeCheckpoints(
  connection: Connection,
  database: string,
  rows: readonly CheckpointRow[],
): Promise<void> {
  await connection.query(checkpointTable);
  await connection.query(`DELETE FROM \`${LEDGER_DATABASE}\`.checkpoint WHERE db_name = ?`, [database]);
  for (const row of rows) {
    await connection.query(
      `INSERT INTO \`${LEDGER_DATABASE}\`.checkpoint (db_name, source_index, source, position, time_updated, flags) VALUES (?, ?, ?, ?, UNIX_TIMESTAMP(), ?)`,
      [database, row.sourceIndex, row.source, row.position, row.flags],
    );
  }
}
