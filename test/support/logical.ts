import type { KeyRange } from '../../core/keyrange.ts';
import type { TestInstance } from './mariadb.ts';

/** Every row of a table, ordered by all its columns so two copies compare equal row for row. */
export async function tableRows(instance: TestInstance, database: string, table: string): Promise<unknown[]> {
  const columns = await instance.query<{ name: string }[]>(
    'SELECT COLUMN_NAME AS name FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION',
    [database, table],
  );
  const order = columns.map((c) => `\`${c.name.replace(/`/g, '``')}\``).join(', ');
  return instance.query(`SELECT * FROM \`${database}\`.\`${table.replace(/`/g, '``')}\` ORDER BY ${order}`);
}

/** Names of the base tables and views of a database. */
export async function objectNames(instance: TestInstance, database: string): Promise<string[]> {
  const rows = await instance.query<{ name: string }[]>(
    'SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME',
    [database],
  );
  return rows.map((row) => row.name);
}

/** A SQL condition selecting the rows whose keyspace id `column` lies in `range`, as the server compares. */
export function rangeCondition(column: string, range: KeyRange, type: 'uint64' | 'bytes'): string {
  const bound = (bytes: Buffer) =>
    type === 'uint64'
      ? Buffer.concat([bytes, Buffer.alloc(8)])
          .subarray(0, 8)
          .readBigUInt64BE()
          .toString()
      : `X'${bytes.toString('hex')}'`;
  const parts = ['1 = 1'];
  if (range.start.length > 0) parts.push(`${column} >= ${bound(range.start)}`);
  if (range.end.length > 0) parts.push(`${column} < ${bound(range.end)}`);
  return parts.join(' AND ');
}
