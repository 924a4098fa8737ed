import type { TableEvidence } from '../../core/manifest.ts';
import type { Connection } from '../mysql/connection.ts';
import { readChecksum } from './chunks.ts';
import type { LeftKeyRange } from './plan.ts';
import { planTable } from './plan.ts';
import { readTableDefinitions } from './schema.ts';
import { checksumSql } from './sql.ts';

export interface ChecksumTablesOptions {
  /** Only these tables (default: every base table of the database). */
  tables?: readonly string[] | undefined;
  /** Only the rows of this key range (one range of a logical snapshot). */
  keyRange?: LeftKeyRange | undefined;
  signal?: AbortSignal | undefined;
  /** Called after each table, with how many are done. */
  onTable?: ((done: number, total: number) => void) | undefined;
  /**
   * A table that cannot be read (a corrupt page) is passed here and left out, instead of ending the
   * run: a drill names every such table.
   */
  onUnreadable?: ((table: string, error: unknown) => void) | undefined;
}

/**
 * The rows and checksum of every table of a database, one table at a time: the diff's chunk
 * checksum over the whole table (the same row encoding and sum), so a number recorded at backup time
 * and one recomputed on a restored copy are equal exactly when the diff would find the tables equal.
 * TIMESTAMP columns are read in UTC so the server's time zone does not enter the checksum.
 */
export async function checksumTables(
  connection: Connection,
  database: string,
  options: ChecksumTablesOptions = {},
): Promise<TableEvidence[]> {
  await connection.query("SET SESSION time_zone = '+00:00'");
  const definitions = await readTableDefinitions(connection, database);
  const names = (options.tables ?? [...definitions.keys()]).filter((name) => definitions.has(name));
  const evidence: TableEvidence[] = [];
  for (const name of names) {
    options.signal?.throwIfAborted();
    const definition = definitions.get(name)!;
    const plan = planTable(database, database, definition, definition, options.keyRange);
    if ('problem' in plan) throw new Error(`cannot checksum ${database}.${name}: ${plan.problem}`);
    let checksum: { count: string; sum: string };
    try {
      checksum = await readChecksum(connection, checksumSql(plan.leftName, plan.encoding, plan.leftFilter));
    } catch (error) {
      if (!options.onUnreadable) throw error;
      options.onUnreadable(name, error);
      continue;
    }
    // SUM over no rows is NULL: an empty table's checksum is 0.
    const { count, sum } = checksum;
    evidence.push({ database, table: name, rows: Number(count), checksum: sum === '' ? '0' : sum });
    options.onTable?.(evidence.length, names.length);
  }
  return evidence;
}

/** A table whose recomputed evidence differs from the recorded one, and how. */
export interface EvidenceDifference {
  database: string;
  table: string;
  problem: string;
}

/** Compares recomputed evidence with what a backup recorded: every table, both ways. */
export function compareEvidence(
  recorded: readonly TableEvidence[],
  found: readonly TableEvidence[],
): EvidenceDifference[] {
  const key = (t: { database: string; table: string }) => JSON.stringify([t.database, t.table]);
  const foundByKey = new Map(found.map((t) => [key(t), t]));
  const differences: EvidenceDifference[] = [];
  for (const expected of recorded) {
    const actual = foundByKey.get(key(expected));
    foundByKey.delete(key(expected));
    const where = { database: expected.database, table: expected.table };
    if (!actual) differences.push({ ...where, problem: 'missing from the restored copy' });
    else if (actual.rows !== expected.rows) {
      differences.push({ ...where, problem: `${actual.rows} rows, the backup recorded ${expected.rows}` });
    } else if (actual.checksum !== expected.checksum) {
      differences.push({
        ...where,
        problem: `checksum ${actual.checksum}, the backup recorded ${expected.checksum} (same row count, different rows)`,
      });
    }
  }
  for (const extra of foundByKey.values()) {
    differences.push({
      database: extra.database,
      table: extra.table,
      problem: 'in the restored copy but not in the backup',
    });
  }
  return differences;
}
