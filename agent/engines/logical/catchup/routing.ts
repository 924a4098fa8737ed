import { type KeyRange, uint64KeyspaceId } from '../../../../core/keyrange.ts';
import type { DestinationTable, RowChange } from './destination.ts';
import type { Row, SourceEvent } from './stream.ts';

/** Which source rows belong to the destination: its key range by a keyspace id column, or every row. */
export interface RowFilter {
  range: KeyRange;
  column: string;
  type: 'uint64' | 'bytes';
}

/** The keyspace id of a row as bytes; undefined when it is NULL (such a row is in no key range). */
function keyspaceId(value: unknown, type: 'uint64' | 'bytes'): Buffer | undefined {
  if (value === null || value === undefined) return undefined;
  if (type === 'bytes') return Buffer.isBuffer(value) ? value : Buffer.from(String(value), 'binary');
  return uint64KeyspaceId(String(value));
}

/** Whether an update kept the row's primary key (a table without one: never, the row is replaced). */
function samePrimaryKey(table: DestinationTable, a: Row, b: Row): boolean {
  if (table.primaryKey.length === 0) return false;
  return table.primaryKey.every((column) => {
    const x = a[column];
    const y = b[column];
    if (Buffer.isBuffer(x) && Buffer.isBuffer(y)) return x.equals(y);
    return String(x) === String(y);
  });
}

/**
 * Turns the row events of the source into changes of the destination. With a key range: an insert
 * or delete counts when its row's keyspace id is in range; an update is judged on both images, so a
 * row that moves into the range is written, one that moves out is deleted, and one whose primary key
 * changed is deleted under its old key before it is written under the new one.
 */
export class RowRouter {
  readonly #tables: Map<string, DestinationTable>;
  readonly #filter: RowFilter | undefined;

  constructor(tables: readonly DestinationTable[], filter: RowFilter | undefined) {
    this.#tables = new Map(tables.map((table) => [table.name, table]));
    this.#filter = filter;
  }

  /** Whether `table` is one the destination holds (and so one whose DDL stops a catch-up). */
  holds(table: string): boolean {
    return this.#tables.has(table);
  }

  get tableNames(): string[] {
    return [...this.#tables.keys()];
  }

  /** The tables with an AUTO_INCREMENT column. */
  get autoIncrementTables(): string[] {
    return [...this.#tables.values()].filter((table) => table.autoIncrement).map((table) => table.name);
  }

  #inRange(row: Row): boolean {
    const filter = this.#filter;
    if (!filter) return true;
    const id = keyspaceId(row[filter.column], filter.type);
    return id !== undefined && filter.range.contains(id);
  }

  /** Appends to `out` what `event` changes in the destination. */
  route(event: Extract<SourceEvent, { type: 'insert' | 'delete' | 'update' }>, out: RowChange[]): void {
    const table = this.#tables.get(event.table);
    if (!table) return;
    if (event.type === 'update') {
      for (const { before, after } of event.rows) {
        const was = this.#inRange(before);
        const is = this.#inRange(after);
        if (was && (!is || !samePrimaryKey(table, before, after)))
          out.push({ kind: 'delete', table, row: before });
        if (is) out.push({ kind: 'upsert', table, row: after });
      }
      return;
    }
    const kind = event.type === 'insert' ? 'upsert' : 'delete';
    for (const row of event.rows) if (this.#inRange(row)) out.push({ kind, table, row });
  }
}
