import { uint64KeyspaceId } from '../../core/keyrange.ts';
import { quoteIdentifier } from '../mysql/connection.ts';
import type { Row } from './compare.ts';
import { type KeyColumnOrder, normalisedRowKey, rowKeyComparator } from './keys.ts';
import type { LeftKeyRange, TablePlan } from './plan.ts';
import { rowDigestSql } from './sql.ts';

/**
 * What a streamed row holds and where: the select list for each side and the positions the merge
 * reads. A table with a primary key streams `key…, sort values…, digest`; one without streams
 * every column and the digest, ordered by the digest (full-row order, duplicates side by side).
 */
export interface RowLayout {
  leftSelect: (where: string | undefined) => string;
  rightSelect: (where: string | undefined) => string;
  /** Key values (PK tables) or all columns (no PK) sit at 0…keyLength-1. */
  keyLength: number;
  digestIndex: number;
  compareKeys: (a: Row, b: Row) => number;
  normalisedKey: ((row: Row) => string) | undefined;
  keepLeft: ((row: Row) => boolean) | undefined;
}

export function rowLayout(
  plan: TablePlan,
  keyRange: LeftKeyRange | undefined,
  padWeights: Map<string, Buffer | undefined>,
): RowLayout {
  const digest = rowDigestSql(plan.encoding);
  const quotedColumns = plan.columns.map(quoteIdentifier);
  const where = (filter: string | undefined) => (filter ? ` WHERE ${filter}` : '');

  if (plan.keyColumns.length === 0) {
    const digestIndex = plan.columns.length;
    const keyspaceIndex = keyRange ? plan.columns.indexOf(keyRange.column) : -1;
    const select = (table: string) => (filter: string | undefined) =>
      `SELECT ${[...quotedColumns, digest].join(', ')} FROM ${table}${where(filter)} ORDER BY ${digestIndex + 1}`;
    return {
      leftSelect: select(plan.leftName),
      rightSelect: select(plan.rightName),
      keyLength: plan.columns.length,
      digestIndex,
      compareKeys: (a, b) => {
        const x = a[digestIndex] as string;
        const y = b[digestIndex] as string;
        return x < y ? -1 : x > y ? 1 : 0;
      },
      normalisedKey: undefined,
      keepLeft: keyRange ? keyspaceFilter(keyRange, keyspaceIndex) : undefined,
    };
  }

  const keys = plan.keyColumns.map((k) => quoteIdentifier(k.name));
  const extras: string[] = [];
  const sortIndexes = plan.keyColumns.map((k, i) => {
    if (k.sortExpression === keys[i]) return i;
    extras.push(k.sortExpression);
    return keys.length + extras.length - 1;
  });
  const orders: KeyColumnOrder[] = plan.keyColumns.map((k) => ({
    kind: k.kind,
    padWeight: k.kind === 'text' ? padWeights.get(`${k.charset}/${k.collation}`) : undefined,
  }));
  const digestIndex = keys.length + extras.length;
  const base = [...keys, ...extras, digest];
  const orderBy = ` ORDER BY ${keys.join(', ')}`;
  return {
    leftSelect: (filter) =>
      `SELECT ${[...base, ...(keyRange ? [quoteIdentifier(keyRange.column)] : [])].join(', ')} FROM ${plan.leftName}${where(filter)}${orderBy}`,
    rightSelect: (filter) => `SELECT ${base.join(', ')} FROM ${plan.rightName}${where(filter)}${orderBy}`,
    keyLength: keys.length,
    digestIndex,
    compareKeys: rowKeyComparator(orders, sortIndexes),
    normalisedKey: (row) => normalisedRowKey(orders, sortIndexes, row),
    keepLeft: keyRange ? keyspaceFilter(keyRange, digestIndex + 1) : undefined,
  };
}

/** Keeps rows whose keyspace id (at `index`) is in the range, compared as `KeyRange.contains` does. */
export function keyspaceFilter(keyRange: LeftKeyRange, index: number): (row: Row) => boolean {
  const { range, type } = keyRange;
  return (row) => {
    const value = row[index];
    if (value === null || value === undefined) return false;
    if (type === 'bytes') return range.contains(Buffer.isBuffer(value) ? value : Buffer.from(String(value)));
    try {
      return range.contains(uint64KeyspaceId(String(value)));
    } catch {
      return false;
    }
  };
}
