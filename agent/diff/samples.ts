import type { Connection } from '../mysql/connection.ts';
import { quoteIdentifier } from '../mysql/connection.ts';
import type { Row, SampleKeeper } from './compare.ts';
import { canonicalDecimal, normaliseTemporal } from './keys.ts';
import type { RowLayout } from './layout.ts';
import { keyParts, type TablePlan } from './plan.ts';
import { type ConnectionPair, queryArrays } from './reader.ts';
import { type KeyPart, keyEqualsSql } from './sql.ts';
import type { DiffSamples, JsonValue, SampleRow } from './types.ts';

/** Longer values are cut in samples: a sample says where to look, it is not a copy of the row. */
const maxSampleChars = 200;

/** A value as it appears in a sample: bytes as `{ hex }`, long text cut with its full length. */
export function sampleValue(value: unknown): JsonValue {
  if (value === null || value === undefined) return null;
  if (Buffer.isBuffer(value)) {
    const shown = value.subarray(0, maxSampleChars / 2).toString('hex');
    return { hex: value.length > maxSampleChars / 2 ? `${shown}… (${value.length} bytes)` : shown };
  }
  if (typeof value === 'string') {
    return value.length > maxSampleChars
      ? `${value.slice(0, maxSampleChars)}… (${value.length} characters)`
      : value;
  }
  if (typeof value === 'number' || typeof value === 'boolean') return value;
  return JSON.parse(JSON.stringify(value)) as JsonValue;
}

export function sampleRow(names: string[], values: readonly unknown[]): SampleRow {
  return Object.fromEntries(names.map((name, i) => [name, sampleValue(values[i])]));
}

/** Equal after the normalisations the row encoding applies (1.50 = 1.500, DATE = DATETIME midnight). */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || a === undefined || b === undefined) return false;
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b)) {
    const x = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
    const y = Buffer.isBuffer(b) ? b : Buffer.from(String(b));
    return x.equals(y);
  }
  const x = String(a);
  const y = String(b);
  const number = /^-?\d+(\.\d+)?$/;
  if (number.test(x) && number.test(y)) return canonicalDecimal(x) === canonicalDecimal(y);
  const temporal = /^\d{4}-\d\d-\d\d( \d\d:\d\d:\d\d(\.\d+)?)?$/;
  if (temporal.test(x) && temporal.test(y)) return normaliseTemporal(x) === normaliseTemporal(y);
  if (typeof a === 'object' || typeof b === 'object') return JSON.stringify(a) === JSON.stringify(b);
  return x === y;
}

/** Reads one row by its primary key, or undefined when it is not there (any more). */
export async function readRowByKey(
  connection: Connection,
  table: string,
  plan: TablePlan,
  parts: KeyPart[],
  key: readonly unknown[],
): Promise<Row | undefined> {
  const columns = plan.columns.map(quoteIdentifier).join(', ');
  const [row] = await queryArrays(
    connection,
    `SELECT ${columns} FROM ${table} WHERE ${keyEqualsSql(parts, key)} LIMIT 1`,
  );
  return row;
}

/**
 * Turns the kept samples into reported rows. For a table with a primary key the streams carried
 * only keys and digests, so the rows are read back by key (at most 10 of each kind per side).
 */
export async function resolveSamples(
  plan: TablePlan,
  layout: RowLayout,
  pair: ConnectionPair,
  samples: {
    mismatched: SampleKeeper<{ left: Row; right: Row }>;
    extraLeft: SampleKeeper<Row>;
    extraRight: SampleKeeper<Row>;
  },
): Promise<DiffSamples> {
  const keyNames = plan.keyColumns.map((k) => k.name);
  if (keyNames.length === 0) {
    const full = (row: Row) => ({ key: null, row: sampleRow(plan.columns, row.slice(0, layout.keyLength)) });
    return {
      mismatched: [],
      extraLeft: samples.extraLeft.values().map(full),
      extraRight: samples.extraRight.values().map(full),
    };
  }
  const parts = keyParts(plan, 'lookup');
  const key = (row: Row) => row.slice(0, keyNames.length);
  const read = async (connection: Connection, table: string, row: Row) =>
    readRowByKey(connection, table, plan, parts, key(row));
  const mismatched = [];
  for (const { left, right } of samples.mismatched.values()) {
    const leftRow = await read(pair.left, plan.leftName, left);
    const rightRow = await read(pair.right, plan.rightName, right);
    mismatched.push({
      key: sampleRow(keyNames, key(left)),
      columns: plan.columns.filter((_, i) => !sameValue(leftRow?.[i], rightRow?.[i])),
      left: leftRow ? sampleRow(plan.columns, leftRow) : null,
      right: rightRow ? sampleRow(plan.columns, rightRow) : null,
    });
  }
  const extra = async (connection: Connection, table: string, rows: Row[]) => {
    const out = [];
    for (const row of rows) {
      const full = await read(connection, table, row);
      out.push({ key: sampleRow(keyNames, key(row)), row: full ? sampleRow(plan.columns, full) : null });
    }
    return out;
  };
  return {
    mismatched,
    extraLeft: await extra(pair.left, plan.leftName, samples.extraLeft.values()),
    extraRight: await extra(pair.right, plan.rightName, samples.extraRight.values()),
  };
}
