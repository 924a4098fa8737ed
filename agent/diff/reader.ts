import type { Connection as CallbackConnection } from 'mysql2';
import { type Connection, type ConnectionTarget, connect } from '../mysql/connection.ts';
import type { Row } from './compare.ts';

/** One connection to each side. */
export interface ConnectionPair {
  left: Connection;
  right: Connection;
}

/**
 * A connection set up for diffing: read-only, timestamps in UTC on both sides (so a TIMESTAMP
 * reads the same whatever the servers' zones), and a long write timeout, because the merge may
 * leave one side's stream paused while it works through a run of the other's rows.
 */
export async function openDiffConnection(target: ConnectionTarget): Promise<Connection> {
  const connection = await connect(target);
  // A connection that dies between queries reports it to the next query; without a listener the
  // event would end the process.
  connection.on('error', () => {});
  try {
    await connection.query("SET SESSION time_zone = '+00:00'");
    await connection.query('SET SESSION TRANSACTION READ ONLY');
    await connection.query('SET SESSION net_write_timeout = 3600');
  } catch (error) {
    connection.destroy();
    throw error;
  }
  return connection;
}

/** Rows of a query as arrays. */
export async function queryArrays(connection: Connection, sql: string): Promise<Row[]> {
  const [rows] = await connection.query({ sql, rowsAsArray: true });
  return rows as unknown as Row[];
}

/**
 * Streams a query's rows as arrays, in batches. At most `maxBatches` wait for the consumer; then
 * the connection stops reading the socket, so the server waits and memory stays flat whatever
 * the table's size.
 */
export function streamRows(
  connection: Connection,
  sql: string,
  options: { batchSize?: number; maxBatches?: number } = {},
): AsyncIterator<Row[]> {
  const batchSize = options.batchSize ?? 1024;
  const maxBatches = options.maxBatches ?? 4;
  // The promise wrapper keeps the callback connection, which streams rows as they arrive.
  const raw = (connection as unknown as { connection: CallbackConnection }).connection;
  const ready: Row[][] = [];
  let filling: Row[] = [];
  let ended = false;
  let failure: Error | undefined;
  let paused = false;
  let wake: (() => void) | undefined;

  const notify = () => {
    const resume = wake;
    wake = undefined;
    resume?.();
  };
  const query = raw.query({ sql, rowsAsArray: true });
  query.on('result', (row: unknown) => {
    filling.push(row as Row);
    if (filling.length >= batchSize) {
      ready.push(filling);
      filling = [];
      if (ready.length >= maxBatches && !paused) {
        paused = true;
        raw.pause();
      }
      notify();
    }
  });
  query.on('error', (error: Error) => {
    failure = error;
    notify();
  });
  query.on('end', () => {
    if (filling.length > 0) ready.push(filling);
    filling = [];
    ended = true;
    notify();
  });

  return {
    async next(): Promise<IteratorResult<Row[]>> {
      for (;;) {
        const batch = ready.shift();
        if (batch) {
          if (paused && ready.length < maxBatches) {
            paused = false;
            raw.resume();
          }
          return { done: false, value: batch };
        }
        if (failure) throw failure;
        if (ended) return { done: true, value: undefined };
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    },
  };
}
