import { UsageError } from '../../../../core/errors.ts';
import type { StoredProgramDefinition, TableDefinition, ViewDefinition } from '../../../../core/manifest.ts';
import { type Connection, qualifiedName, queryRows, quoteIdentifier } from '../../../mysql/connection.ts';
import type { KeyType } from './keyspace-id.ts';
import { readStoredPrograms } from './programs.ts';

/**
 * What a snapshot carries of a database's schema: base tables (with their data), views, triggers,
 * routines and events, and the database's defaults.
 */
export interface SourceSchema {
  tables: TableDefinition[];
  views: ViewDefinition[];
  programs: StoredProgramDefinition[];
  charset: string;
  collation: string;
  /** Bytes of data per table as the server estimates them, to dump the big ones first. */
  dataLength: Map<string, number>;
}

export interface SchemaFilter {
  /** Only these tables and views (a vertical split); default every one. */
  tables?: readonly string[] | undefined;
  excludeTables?: readonly string[] | undefined;
}

function listed(names: readonly string[]): string {
  return names.map((name) => JSON.stringify(name)).join(', ');
}

/**
 * Reads the schema of `database`: each table's CREATE statement, columns (generated ones marked: they
 * carry no data), primary key; each view's definition; its triggers (of the tables taken), and unless
 * only some tables are asked for, its routines and events. The connection's current database must be
 * `database`, so view definitions name its tables without the database.
 */
export async function readSourceSchema(
  connection: Connection,
  database: string,
  filter: SchemaFilter = {},
): Promise<SourceSchema> {
  const [exists] = await queryRows<{ charset: string; collation: string }>(
    connection,
    'SELECT DEFAULT_CHARACTER_SET_NAME AS charset, DEFAULT_COLLATION_NAME AS collation FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?',
    [database],
  );
  if (!exists) throw new UsageError(`database ${JSON.stringify(database)} does not exist on this instance`);
  // SHOW CREATE VIEW names tables of the current database without their database: the checker expects that.
  await connection.query(`USE ${quoteIdentifier(database)}`);
  // SHOW CREATE output follows the session's sql_mode (ANSI_QUOTES would change the quoting).
  await connection.query(
    "SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION', SESSION sql_quote_show_create = 1",
  );

  const objects = await queryRows<{ name: string; type: string; dataLength: string | null }>(
    connection,
    'SELECT TABLE_NAME AS name, TABLE_TYPE AS type, DATA_LENGTH AS dataLength FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME',
    [database],
  );
  const known = new Set(objects.map((o) => o.name));
  for (const [flag, names] of [
    ['--tables', filter.tables],
    ['--exclude-tables', filter.excludeTables],
  ] as const) {
    const missing = (names ?? []).filter((name) => !known.has(name));
    if (missing.length > 0) {
      throw new UsageError(`${flag} names ${listed(missing)}, not in database ${JSON.stringify(database)}`, {
        hint: 'table names are case-sensitive; list them with SHOW FULL TABLES',
      });
    }
  }
  const wanted = objects.filter(
    (o) => (!filter.tables || filter.tables.includes(o.name)) && !filter.excludeTables?.includes(o.name),
  );
  const unsupported = wanted.filter((o) => o.type !== 'BASE TABLE' && o.type !== 'VIEW');
  if (unsupported.length > 0) {
    throw new UsageError(
      `snapshots carry base tables and views only; ${unsupported.map((o) => `${JSON.stringify(o.name)} is a ${o.type}`).join(', ')}`,
      {
        hint: 'leave them out with --exclude-tables (system-versioned history and sequences are not copied)',
      },
    );
  }

  const columnRows = await queryRows<{ table: string; name: string; type: string; extra: string }>(
    connection,
    'SELECT TABLE_NAME AS `table`, COLUMN_NAME AS name, COLUMN_TYPE AS type, EXTRA AS extra FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION',
    [database],
  );
  const keyRows = await queryRows<{ table: string; name: string }>(
    connection,
    "SELECT TABLE_NAME AS `table`, COLUMN_NAME AS name FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY TABLE_NAME, ORDINAL_POSITION",
    [database],
  );

  const tables: TableDefinition[] = [];
  const views: ViewDefinition[] = [];
  const dataLength = new Map<string, number>();
  for (const object of wanted) {
    if (object.type === 'VIEW') {
      const [row] = await queryRows<Record<string, string>>(
        connection,
        `SHOW CREATE VIEW ${qualifiedName(database, object.name)}`,
      );
      views.push({ name: object.name, type: 'view', create: String(row?.['Create View']) });
      continue;
    }
    const [row] = await queryRows<Record<string, string>>(
      connection,
      `SHOW CREATE TABLE ${qualifiedName(database, object.name)}`,
    );
    tables.push({
      name: object.name,
      type: 'table',
      create: String(row?.['Create Table']),
      columns: columnRows
        .filter((c) => c.table === object.name)
        .map((c) => ({ name: c.name, type: c.type, generated: isGeneratedColumn(c.extra) })),
      primaryKey: keyRows.filter((k) => k.table === object.name).map((k) => k.name),
      rows: 0,
    });
    dataLength.set(object.name, Number(object.dataLength ?? 0));
  }
  const programs = await readStoredPrograms(connection, database, {
    tables: new Set(tables.map((table) => table.name)),
    routinesAndEvents: !filter.tables,
  });
  return { tables, views, programs, charset: exists.charset, collation: exists.collation, dataLength };
}

/**
 * Whether information_schema.COLUMNS.EXTRA names a generated (VIRTUAL / STORED / PERSISTENT)
 * column, whose values the server computes and a dump leaves out. MySQL also writes
 * DEFAULT_GENERATED for a column with an expression default (`DEFAULT CURRENT_TIMESTAMP`): an
 * ordinary column whose values must be copied.
 */
export function isGeneratedColumn(extra: string | null | undefined): boolean {
  return /\b(VIRTUAL|STORED|PERSISTENT) GENERATED\b/i.test(extra ?? '');
}

const integerType = /^(tinyint|smallint|mediumint|int|integer|bigint)\b/i;
const bytesType = /^(binary|varbinary|tinyblob|blob|mediumblob|longblob|char|varchar)\b/i;

/**
 * Every table of a split must hold the keyspace id column, of a type that fits `keyType`.
 * Throws a UsageError naming each table that does not.
 */
export function checkKeyColumn(
  tables: readonly TableDefinition[],
  keyColumn: string,
  keyType: KeyType,
): void {
  const problems: string[] = [];
  for (const table of tables) {
    const column = table.columns.find((c) => c.name === keyColumn);
    if (!column) problems.push(`${JSON.stringify(table.name)} has no column ${JSON.stringify(keyColumn)}`);
    else if (keyType === 'uint64' && !integerType.test(column.type)) {
      problems.push(`${JSON.stringify(table.name)}.${keyColumn} is ${column.type}, not an integer`);
    } else if (keyType === 'bytes' && !bytesType.test(column.type)) {
      problems.push(`${JSON.stringify(table.name)}.${keyColumn} is ${column.type}, not a binary string`);
    }
  }
  if (problems.length > 0) {
    throw new UsageError(`cannot split by ${keyColumn} (${keyType}): ${problems.join('; ')}`, {
      hint: 'leave tables without a keyspace id out with --exclude-tables, or check --key-column and --key-type',
    });
  }
}
