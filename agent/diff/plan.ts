import type { KeyRange } from '../../core/keyrange.ts';
import { qualifiedName, quoteIdentifier } from '../mysql/connection.ts';
import type { KeyKind } from './keys.ts';
import type { ColumnDefinition, TableDefinition } from './schema.ts';
import { type EncodedColumn, type KeyPart, keyRangeSql, type LiteralKind, rowEncodingSql } from './sql.ts';

/** How the left side is cut to one destination of a split. */
export interface LeftKeyRange {
  range: KeyRange;
  /** The keyspace id column. */
  column: string;
  type: 'uint64' | 'bytes';
}

export interface KeyColumnPlan {
  name: string;
  kind: KeyKind;
  /** What the server sorts the column by, selected next to it: the column, its weights or its index. */
  sortExpression: string;
  /** How chunk bounds on this column are written; undefined when chunks cannot be bounded by it. */
  bound: LiteralKind | undefined;
  /** How an equality on this column is written (to read a sample row back). */
  lookup: LiteralKind;
  /** Text keys: the collation whose weights are compared. */
  charset?: string | undefined;
  collation?: string | undefined;
}

/** Everything needed to compare one table, settled once from both schemas. */
export interface TablePlan {
  table: string;
  /** `db`.`table` on each side. */
  leftName: string;
  rightName: string;
  /** Columns in the left's order (samples list them this way). */
  columns: string[];
  /** The primary key; empty when the table has none and rows are ordered by their digest. */
  keyColumns: KeyColumnPlan[];
  /** The canonical row encoding, the same SQL on both sides. */
  encoding: string;
  /** Whether chunks can be bounded by key ranges (every key column has exact literals). */
  chunkable: boolean;
  /** The left-side filter of --left-key-range, if any. */
  leftFilter: string | undefined;
  /** With a key range: the left rows that have no keyspace id (NULL), in no range, counted apart. */
  leftWithoutKeyspaceId?: string | undefined;
  estimatedRows: number;
}

export interface PlanProblem {
  table: string;
  problem: string;
}

const keyKinds: Partial<Record<ColumnDefinition['kind'], KeyKind>> = {
  integer: 'number',
  decimal: 'number',
  enum: 'number',
  float: 'float',
  temporal: 'temporal',
  time: 'time',
  binary: 'binary',
  bit: 'binary',
  text: 'text',
};

const literals: Record<KeyKind, LiteralKind | undefined> = {
  number: 'number',
  float: undefined,
  temporal: 'temporal',
  time: 'temporal',
  binary: 'binary',
  text: 'text',
};

/**
 * Plans the comparison of a table present on both sides, or says why it cannot be compared:
 * the columns (by name) and the primary key must be the same; key columns must sort the same way
 * (same kind, same collation); other columns may differ in type and are compared after a cast to
 * a common type.
 */
export function planTable(
  leftDatabase: string,
  rightDatabase: string,
  left: TableDefinition,
  right: TableDefinition | undefined,
  keyRange: LeftKeyRange | undefined,
): TablePlan | PlanProblem {
  const table = left.name;
  const problem = (text: string): PlanProblem => ({ table, problem: text });
  if (!right) return problem('is missing on the right');
  const leftNames = left.columns.map((c) => c.name);
  const rightByName = new Map(right.columns.map((c) => [c.name, c]));
  const missing = leftNames.filter((name) => !rightByName.has(name));
  const extra = right.columns.map((c) => c.name).filter((name) => !leftNames.includes(name));
  if (missing.length || extra.length) {
    return problem(
      [
        missing.length ? `columns only on the left: ${missing.join(', ')}` : '',
        extra.length ? `columns only on the right: ${extra.join(', ')}` : '',
      ]
        .filter(Boolean)
        .join('; '),
    );
  }
  if (left.primaryKey.join(',') !== right.primaryKey.join(',')) {
    return problem(
      `primary keys differ: (${left.primaryKey.join(', ') || 'none'}) on the left, (${right.primaryKey.join(', ') || 'none'}) on the right`,
    );
  }

  const leftByName = new Map(left.columns.map((c) => [c.name, c]));
  const keyColumns: KeyColumnPlan[] = [];
  for (const name of left.primaryKey) {
    const l = leftByName.get(name)!;
    const r = rightByName.get(name)!;
    const kind = keyKinds[l.kind];
    if (!kind) return problem(`key column ${name} (${l.columnType}) cannot be compared as a key`);
    if (keyKinds[r.kind] !== kind) {
      return problem(`key column ${name} is ${l.columnType} on the left and ${r.columnType} on the right`);
    }
    if (kind === 'text' && l.collation !== r.collation) {
      return problem(
        `key column ${name} sorts by ${l.collation} on the left and ${r.collation} on the right; the rows would come in different orders`,
      );
    }
    if ((l.kind === 'enum' || r.kind === 'enum') && l.columnType !== r.columnType) {
      return problem(`key column ${name} is ${l.columnType} on the left and ${r.columnType} on the right`);
    }
    const quoted = quoteIdentifier(name);
    keyColumns.push({
      name,
      kind,
      sortExpression:
        kind === 'text' ? `WEIGHT_STRING(${quoted})` : l.kind === 'enum' ? `(${quoted} + 0)` : quoted,
      // ENUM sorts by index but compares with text by label: no range bounds on it.
      bound: l.kind === 'enum' ? undefined : literals[kind],
      lookup: l.kind === 'enum' ? 'text' : (literals[kind] ?? 'float'),
      charset: l.charset,
      collation: l.collation,
    });
  }

  const encoded: EncodedColumn[] = [];
  for (const name of leftNames) {
    const expression = commonExpression(leftByName.get(name)!, rightByName.get(name)!);
    if (typeof expression !== 'string') return problem(expression.problem);
    const l = leftByName.get(name)!;
    const r = rightByName.get(name)!;
    encoded.push({
      expression,
      bytes: isByteString(l) || isByteString(r),
      nullable: l.nullable || r.nullable,
      charset: expressionCharset(expression, l),
    });
  }

  let leftFilter: string | undefined;
  let leftWithoutKeyspaceId: string | undefined;
  if (keyRange) {
    const column = leftByName.get(keyRange.column);
    if (!column) return problem(`has no keyspace id column ${keyRange.column} on the left`);
    const fits =
      keyRange.type === 'uint64'
        ? column.kind === 'integer' && /unsigned/i.test(column.columnType)
        : column.kind === 'binary';
    if (!fits) {
      return problem(
        `keyspace id column ${keyRange.column} is ${column.columnType}; --key-type ${keyRange.type} needs ${keyRange.type === 'uint64' ? 'BIGINT UNSIGNED' : 'VARBINARY'}`,
      );
    }
    leftFilter = keyRangeSql(keyRange.range, keyRange.column, keyRange.type);
    leftWithoutKeyspaceId = `${quoteIdentifier(keyRange.column)} IS NULL`;
  }

  return {
    table,
    leftName: qualifiedName(leftDatabase, table),
    rightName: qualifiedName(rightDatabase, table),
    columns: leftNames,
    keyColumns,
    encoding: rowEncodingSql(encoded),
    chunkable: keyColumns.length > 0 && keyColumns.every((k) => k.bound !== undefined),
    leftFilter,
    ...(leftWithoutKeyspaceId ? { leftWithoutKeyspaceId } : {}),
    // With a key range the left is read only within it: the right (one destination of the split)
    // holds about those rows, where the left's estimate counts the whole table.
    estimatedRows: keyRange ? right.estimatedRows : left.estimatedRows,
  };
}

/**
 * The expression a column is read through on both sides: the column itself when both define it
 * alike, else a cast to a type that holds both (so DECIMAL(10,2) 1.50 and DECIMAL(10,3) 1.500, or
 * latin1 and utf8mb4 text, encode the same).
 */
export function commonExpression(left: ColumnDefinition, right: ColumnDefinition): string | PlanProblem {
  const column = quoteIdentifier(left.name);
  if (left.columnType === right.columnType && left.charset === right.charset) return column;
  const exact = (c: ColumnDefinition) => c.kind === 'integer' || c.kind === 'decimal';
  if (exact(left) && exact(right)) {
    const scale = Math.max(left.scale ?? 0, right.scale ?? 0);
    const digits = Math.max(integerDigits(left), integerDigits(right));
    if (digits + scale > 65) {
      return {
        table: '',
        problem: `column ${left.name} is ${left.columnType} on the left and ${right.columnType} on the right, too wide to compare`,
      };
    }
    return `CAST(${column} AS DECIMAL(65, ${scale}))`;
  }
  const numeric = (c: ColumnDefinition) => exact(c) || c.kind === 'float';
  if (numeric(left) && numeric(right)) return `CAST(${column} AS DOUBLE)`;
  if (left.kind === 'temporal' && right.kind === 'temporal') return `CAST(${column} AS DATETIME(6))`;
  if (left.kind === 'time' && right.kind === 'time') return `CAST(${column} AS TIME(6))`;
  if ((left.kind === 'binary' || left.kind === 'bit') && left.kind === right.kind) return column;
  return `CONVERT(${column} USING utf8mb4)`;
}

/** The character set of what `commonExpression` reads: its own, a conversion's, or binary. */
function expressionCharset(expression: string, left: ColumnDefinition): string | undefined {
  if (expression.startsWith('CONVERT(')) return 'utf8mb4';
  if (left.kind === 'binary' || left.kind === 'bit') return 'binary';
  return left.charset;
}

/** Text, binary, ENUM and anything else that is not a number or a date. */
function isByteString(column: ColumnDefinition): boolean {
  return !['integer', 'decimal', 'float', 'temporal', 'time'].includes(column.kind);
}

/** Digits before the point: from the precision, or the widest value of an integer type. */
function integerDigits(column: ColumnDefinition): number {
  if (column.kind === 'integer') return column.dataType === 'year' ? 4 : 20;
  return (column.precision ?? 65) - (column.scale ?? 0);
}

/** Key parts for chunk bounds (chunkable plans) or for equalities. */
export function keyParts(plan: TablePlan, purpose: 'bound' | 'lookup'): KeyPart[] {
  return plan.keyColumns.map((k) => ({
    column: quoteIdentifier(k.name),
    literal: purpose === 'bound' ? k.bound! : k.lookup,
  }));
}
