import { UsageError } from '../../core/errors.ts';
import { type Connection, queryRows } from '../mysql/connection.ts';

/** What a column holds, as far as comparing it is concerned. */
export type ValueKind =
  | 'integer'
  | 'decimal'
  | 'float'
  | 'temporal'
  | 'time'
  | 'text'
  | 'enum'
  | 'binary'
  | 'bit'
  | 'other';

export interface ColumnDefinition {
  name: string;
  /** DATA_TYPE, lower case: `int`, `varchar`, `datetime`. */
  dataType: string;
  /** COLUMN_TYPE: `int(10) unsigned`, `enum('a','b')`, `decimal(10,2)`. */
  columnType: string;
  kind: ValueKind;
  nullable: boolean;
  collation: string | undefined;
  charset: string | undefined;
  precision: number | undefined;
  scale: number | undefined;
}

export interface TableDefinition {
  name: string;
  columns: ColumnDefinition[];
  /** Primary key columns in index order; empty when the table has none. */
  primaryKey: string[];
  /** The server's estimate, for progress lines only. */
  estimatedRows: number;
}

const kinds: Record<string, ValueKind> = {
  tinyint: 'integer',
  smallint: 'integer',
  mediumint: 'integer',
  int: 'integer',
  integer: 'integer',
  bigint: 'integer',
  year: 'integer',
  decimal: 'decimal',
  numeric: 'decimal',
  float: 'float',
  double: 'float',
  real: 'float',
  date: 'temporal',
  datetime: 'temporal',
  timestamp: 'temporal',
  time: 'time',
  char: 'text',
  varchar: 'text',
  tinytext: 'text',
  text: 'text',
  mediumtext: 'text',
  longtext: 'text',
  json: 'text',
  enum: 'enum',
  set: 'enum',
  binary: 'binary',
  varbinary: 'binary',
  tinyblob: 'binary',
  blob: 'binary',
  mediumblob: 'binary',
  longblob: 'binary',
  bit: 'bit',
};

export function valueKind(dataType: string): ValueKind {
  return kinds[dataType.toLowerCase()] ?? 'other';
}

interface ColumnRow {
  table_name: string;
  column_name: string;
  data_type: string;
  column_type: string;
  is_nullable: string;
  collation_name: string | null;
  character_set_name: string | null;
  numeric_precision: number | string | null;
  numeric_scale: number | string | null;
  datetime_precision: number | string | null;
}

/**
 * The base tables of `database` with their columns and primary keys, read from
 * information_schema (MariaDB's system-versioned tables count as base tables; views and
 * sequences do not).
 */
export async function readTableDefinitions(
  connection: Connection,
  database: string,
): Promise<Map<string, TableDefinition>> {
  const tables = await queryRows<{ table_name: string; table_rows: number | string | null }>(
    connection,
    `SELECT TABLE_NAME AS table_name, TABLE_ROWS AS table_rows FROM information_schema.TABLES
      WHERE TABLE_SCHEMA = ? AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY TABLE_NAME`,
    [database],
  );
  const definitions = new Map<string, TableDefinition>();
  for (const table of tables) {
    definitions.set(table.table_name, {
      name: table.table_name,
      columns: [],
      primaryKey: [],
      estimatedRows: Number(table.table_rows ?? 0),
    });
  }
  const columns = await queryRows<ColumnRow>(
    connection,
    `SELECT TABLE_NAME AS table_name, COLUMN_NAME AS column_name, DATA_TYPE AS data_type,
            COLUMN_TYPE AS column_type, IS_NULLABLE AS is_nullable, COLLATION_NAME AS collation_name,
            CHARACTER_SET_NAME AS character_set_name, NUMERIC_PRECISION AS numeric_precision,
            NUMERIC_SCALE AS numeric_scale, DATETIME_PRECISION AS datetime_precision
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION`,
    [database],
  );
  for (const column of columns) {
    const table = definitions.get(column.table_name);
    if (!table) continue;
    const kind = valueKind(column.data_type);
    table.columns.push({
      name: column.column_name,
      dataType: column.data_type.toLowerCase(),
      columnType: column.column_type,
      kind,
      nullable: column.is_nullable === 'YES',
      collation: column.collation_name ?? undefined,
      charset: column.character_set_name ?? undefined,
      precision: numberOrUndefined(kind === 'temporal' || kind === 'time' ? null : column.numeric_precision),
      scale: numberOrUndefined(
        kind === 'temporal' || kind === 'time' ? column.datetime_precision : column.numeric_scale,
      ),
    });
  }
  const keys = await queryRows<{ table_name: string; column_name: string }>(
    connection,
    `SELECT TABLE_NAME AS table_name, COLUMN_NAME AS column_name FROM information_schema.STATISTICS
      WHERE TABLE_SCHEMA = ? AND INDEX_NAME = 'PRIMARY' ORDER BY TABLE_NAME, SEQ_IN_INDEX`,
    [database],
  );
  for (const key of keys) definitions.get(key.table_name)?.primaryKey.push(key.column_name);
  return definitions;
}

function numberOrUndefined(value: number | string | null): number | undefined {
  return value === null || value === undefined ? undefined : Number(value);
}

/** Whether a collation pads with spaces, and the weight of a space: asked of the server. */
export interface CollationOrder {
  padSpace: boolean;
  spaceWeight: Buffer;
}

export async function readCollationOrder(
  connection: Connection,
  charset: string,
  collation: string,
): Promise<CollationOrder> {
  if (!/^[A-Za-z0-9_]+$/.test(charset) || !/^[A-Za-z0-9_]+$/.test(collation))
    throw new UsageError(`unexpected collation name ${charset}/${collation}`);
  const [row] = await queryRows<{ pad: number | string; weight: Buffer }>(
    connection,
    `SELECT CONVERT('a' USING ${charset}) COLLATE ${collation} = CONVERT('a ' USING ${charset}) AS pad,
            WEIGHT_STRING(CONVERT(' ' USING ${charset}) COLLATE ${collation}) AS weight`,
  );
  return { padSpace: Number(row?.pad) === 1, spaceWeight: Buffer.from(row?.weight ?? []) };
}
