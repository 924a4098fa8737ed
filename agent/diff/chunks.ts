import type { Connection } from '../mysql/connection.ts';
import type { Row } from './compare.ts';
import { keyParts, type TablePlan } from './plan.ts';
import { queryArrays } from './reader.ts';
import { keyAfterSql, keyAtMostSql } from './sql.ts';

/** A slice of a table by primary key. */
export interface Chunk {
  index: number;
  /** Exclusive lower bound (the previous chunk's last key); undefined for the first chunk. */
  lower: Row | undefined;
  /** Inclusive upper bound; undefined for the last chunk. */
  upper: Row | undefined;
}

/**
 * The chunks of a table, bounded by the keys of every `chunkRows`-th row of the left (read as they
 * are needed, so bounds are found while earlier chunks are compared). A table that cannot be cut by
 * key is one chunk.
 */
export async function* chunkSource(
  plan: TablePlan,
  connection: Connection,
  chunkRows: number,
): AsyncGenerator<Chunk> {
  if (!plan.chunkable) {
    yield { index: 0, lower: undefined, upper: undefined };
    return;
  }
  const parts = keyParts(plan, 'bound');
  const keys = parts.map((part) => part.column).join(', ');
  let lower: Row | undefined;
  for (let index = 0; ; index++) {
    const where = joinConditions([lower ? keyAfterSql(parts, lower) : undefined, plan.leftFilter]);
    const [upper] = await queryArrays(
      connection,
      `SELECT ${keys} FROM ${plan.leftName}${where ? ` WHERE ${where}` : ''} ORDER BY ${keys} LIMIT 1 OFFSET ${chunkRows - 1}`,
    );
    yield { index, lower, upper };
    if (!upper) return;
    lower = upper;
  }
}

export function chunkBoundsSql(plan: TablePlan, chunk: Chunk): string[] {
  if (!plan.chunkable) return [];
  const parts = keyParts(plan, 'bound');
  return [
    ...(chunk.lower ? [keyAfterSql(parts, chunk.lower)] : []),
    ...(chunk.upper ? [keyAtMostSql(parts, chunk.upper)] : []),
  ];
}

export function joinConditions(conditions: Array<string | undefined>): string | undefined {
  const present = conditions.filter((c): c is string => Boolean(c));
  return present.length ? present.join(' AND ') : undefined;
}

export async function readChecksum(
  connection: Connection,
  sql: string,
): Promise<{ count: string; sum: string }> {
  const [row] = await queryArrays(connection, sql);
  return { count: String(row?.[0] ?? '0'), sum: String(row?.[1] ?? '') };
}
