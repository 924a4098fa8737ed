import { StepbackError } from '../../../../core/errors.ts';
import { type Connection, qualifiedName, queryRows, quoteIdentifier } from '../../../mysql/connection.ts';
import { LEDGER_DATABASE } from '../multirestore/ledger.ts';
import type { Row } from './stream.ts';

/** A destination table as catch-up writes it: the columns it sets and the primary key it finds rows by. */
export interface DestinationTable {
  name: string;
  /** Columns written (generated columns are computed by the destination). */
  columns: string[];
  /** Empty for a table without one: its rows are found by all their columns. */
  primaryKey: string[];
  /** It has an AUTO_INCREMENT column: after a split each destination allocates its ids on its own. */
  autoIncrement: boolean;
}

/** A change to apply: a row written whole, or a row removed by its primary key. */
export type RowChange =
  | { kind: 'upsert'; table: DestinationTable; row: Row }
  | { kind: 'delete'; table: DestinationTable; row: Row };

/**
 * The base tables of the destination database: catch-up applies changes to these only. Each needs
 * InnoDB (the rows and the position commit together).
 */
export async function destinationTables(
  connection: Connection,
  database: string,
): Promise<DestinationTable[]> {
  const tables = await queryRows<{ name: string; engine: string | null }>(
    connection,
    "SELECT TABLE_NAME AS name, ENGINE AS engine FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
    [database],
  );
  const columns = await queryRows<{ table: string; name: string; extra: string }>(
    connection,
    'SELECT TABLE_NAME AS `table`, COLUMN_NAME AS name, EXTRA AS extra FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION',
    [database],
  );
  const keys = await queryRows<{ table: string; name: string }>(
    connection,
    "SELECT TABLE_NAME AS `table`, COLUMN_NAME AS name FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY TABLE_NAME, ORDINAL_POSITION",
    [database],
  );
  const result: DestinationTable[] = [];
  for (const table of tables) {
    if (table.engine?.toLowerCase() !== 'innodb') {
      throw new StepbackError(
        `${database}.${table.name} is ${table.engine ?? 'not a stored table'}: catch-up stores its position in the same transaction as the rows, which needs InnoDB`,
        {
          hint: `convert it (ALTER TABLE ${qualifiedName(database, table.name)} ENGINE=InnoDB) on the source and take a new snapshot`,
        },
      );
    }
    const primaryKey = keys.filter((k) => k.table === table.name).map((k) => k.name);
    result.push({
      name: table.name,
      columns: columns
        .filter((c) => c.table === table.name && !/\b(VIRTUAL|STORED|PERSISTENT)\b/i.test(c.extra))
        .map((c) => c.name),
      primaryKey,
      autoIncrement: columns.some((c) => c.table === table.name && /\bauto_increment\b/i.test(c.extra)),
    });
  }
  return result;
}

/** A binlog value as a statement parameter: JSON documents decoded to objects go back to text. */
function parameter(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (Buffer.isBuffer(value) || typeof value !== 'object') return value;
  return JSON.stringify(value);
}

function columnValue(table: DestinationTable, row: Row, column: string): unknown {
  if (!(column in row)) {
    throw new StepbackError(
      `the source's row of ${table.name} has no column ${column}: the source's table differs from the destination's`,
      { hint: 'the table was altered after the snapshot; take a new snapshot and load it again' },
    );
  }
  return parameter(row[column]);
}

const ROWS_PER_STATEMENT = 500;

async function applyWithoutKey(
  connection: Connection,
  name: string,
  table: DestinationTable,
  change: RowChange,
): Promise<void> {
  const values = table.columns.map((c) => columnValue(table, change.row, c));
  if (change.kind === 'upsert') {
    await connection.query(
      `INSERT INTO ${name} (${table.columns.map(quoteIdentifier).join(', ')}) VALUES (${values.map(() => '?').join(', ')})`,
      values,
    );
  } else {
    await connection.query(
      `DELETE FROM ${name} WHERE ${table.columns.map((c) => `${quoteIdentifier(c)} <=> ?`).join(' AND ')} LIMIT 1`,
      values,
    );
  }
}

/**
 * Applies changes in order on `connection` (inside the caller's transaction): runs of upserts into
 * one table become one REPLACE, runs of deletes one DELETE … IN. Both are idempotent by primary key,
 * so a transaction applied twice leaves the same rows. Returns the rows the statements touched.
 */
export async function applyChanges(
  connection: Connection,
  database: string,
  changes: readonly RowChange[],
): Promise<void> {
  let i = 0;
  while (i < changes.length) {
    const first = changes[i]!;
    let j = i + 1;
    while (
      j < changes.length &&
      j - i < ROWS_PER_STATEMENT &&
      changes[j]!.kind === first.kind &&
      changes[j]!.table === first.table
    )
      j++;
    const run = changes.slice(i, j);
    const table = first.table;
    const name = qualifiedName(database, table.name);
    if (table.primaryKey.length === 0) {
      // Without a primary key a row is found by all its columns, one row at a time; exactness comes
      // from the position committed with the rows, not from the statements.
      for (const change of run) await applyWithoutKey(connection, name, table, change);
    } else if (first.kind === 'upsert') {
      const columns = table.columns.map(quoteIdentifier).join(', ');
      const tuple = `(${table.columns.map(() => '?').join(', ')})`;
      const values = run.flatMap((change) => table.columns.map((c) => columnValue(table, change.row, c)));
      await connection.query(
        `REPLACE INTO ${name} (${columns}) VALUES ${run.map(() => tuple).join(', ')}`,
        values,
      );
    } else {
      const key = `(${table.primaryKey.map(quoteIdentifier).join(', ')})`;
      const tuple = `(${table.primaryKey.map(() => '?').join(', ')})`;
      const values = run.flatMap((change) => table.primaryKey.map((c) => columnValue(table, change.row, c)));
      await connection.query(
        `DELETE FROM ${name} WHERE ${key} IN (${run.map(() => tuple).join(', ')})`,
        values,
      );
    }
    i = j;
  }
}

export interface Checkpoint {
  sourceIndex: number;
  source: string;
  position: string;
  flags: string;
}

/** The checkpoint rows multirestore wrote for `database` (none when it ran without checkpoints). */
export async function readCheckpoints(connection: Connection, database: string): Promise<Checkpoint[]> {
  const exists = await queryRows(
    connection,
    "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'checkpoint'",
    [LEDGER_DATABASE],
  );
  if (exists.length === 0) return [];
  const rows = await queryRows<{ source_index: number; source: string; position: string; flags: string }>(
    connection,
    `SELECT source_index, source, position, flags FROM ${qualifiedName(LEDGER_DATABASE, 'checkpoint')} WHERE db_name = ? ORDER BY source_index`,
    [database],
  );
  return rows.map((row) => ({
    sourceIndex: Number(row.source_index),
    source: row.source,
    position: row.position,
    flags: row.flags,
  }));
}

/** Moves the checkpoint: inside the transaction that applied the rows up to `position`. */
export async function storePosition(
  connection: Connection,
  database: string,
  sourceIndex: number,
  position: string,
): Promise<void> {
  await connection.query(
    `UPDATE ${qualifiedName(LEDGER_DATABASE, 'checkpoint')} SET position = ?, time_updated = UNIX_TIMESTAMP() WHERE db_name = ? AND source_index = ?`,
    [position, database, sourceIndex],
  );
}
