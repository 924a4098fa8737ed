import fs from 'node:fs/promises';
import path from 'node:path';
import { diskFullError, isDiskFull } from '../../../../core/disk-space.ts';
import { messageOf, StepbackError } from '../../../../core/errors.ts';
import type { Logger } from '../../../../core/log.ts';
import type { Compression, TableDataFile, TableDefinition } from '../../../../core/manifest.ts';
import type { BackupHandle } from '../../../../core/storage/types.ts';
import { type Connection, qualifiedName, quoteIdentifier } from '../../../mysql/connection.ts';
import { columnCodec, DATA_FORMAT, dataColumns } from '../format.ts';
import { killableQuery } from '../killable.ts';
import type { LentConnection } from './consistent-read.ts';
import { followGrowingFile } from './follow.ts';
import type { KeyspaceIdRouter, KeyType } from './keyspace-id.ts';
import { outfilePrefix } from './recovery.ts';
import { RowError, RowSplitter } from './row-splitter.ts';
import { TableFiles } from './table-files.ts';

/** Rows are handed to the compressors in batches of about this size. */
const BATCH_BYTES = 256 * 1024;
/** Read size of the OUTFILE. */
const READ_BYTES = 1024 * 1024;

export interface DumpTableOptions {
  /** Opens a connection to the source (one for the OUTFILE statement, one to kill it on abort). */
  connect: () => Promise<Connection>;
  /**
   * The connection that runs the OUTFILE statement: a consistent-snapshot session when the snapshot
   * reads through them. Default: a new connection of `connect`, closed after.
   */
  lend?: (() => Promise<LentConnection>) | undefined;
  database: string;
  table: TableDefinition;
  tableIndex: number;
  /** A directory the server may write OUTFILEs to and this process may read and delete them in. */
  workDir: string;
  /** Splitting: the keyspace id column and its router. Absent: every row goes to the one backup. */
  split?: { keyColumn: string; keyType: KeyType; router: KeyspaceIdRouter } | undefined;
  /** One backup per key range, in the router's order (one when not splitting). */
  handles: readonly BackupHandle[];
  compression: Compression;
  maxFileBytes: number;
  signal: AbortSignal;
  logger: Logger;
  /** Called with the number of rows read as they are read. */
  onRows?: (rows: number) => void;
}

export interface DumpedTable {
  /** Per backup (range): the data files and the row count. */
  ranges: { files: TableDataFile[]; rows: number }[];
  /** Rows read from the source. */
  rows: number;
}

/**
 * Dumps one table: SELECT [keyspace id,] columns INTO OUTFILE, then streams the file through the row
 * splitter into each range's files (chunked, compressed, hashed). The OUTFILE is always deleted.
 */
export async function dumpTable(options: DumpTableOptions): Promise<DumpedTable> {
  const { database, table, split, signal } = options;
  const outfile = path.join(options.workDir, `${outfilePrefix()}${options.tableIndex}.csv`);
  await fs.rm(outfile, { force: true });
  const expressions = dataColumns(table.columns).map((column, i) => columnCodec(column, i).select);
  if (split) {
    const key = quoteIdentifier(split.keyColumn);
    expressions.unshift(split.keyType === 'uint64' ? key : `HEX(${key})`);
  }
  const writers = options.handles.map(
    (handle) =>
      new TableFiles({
        handle,
        table: table.name,
        tableIndex: options.tableIndex,
        compression: options.compression,
        maxFileBytes: options.maxFileBytes,
        signal,
      }),
  );
  // The OUTFILE is read while the server writes it; a failure on this side stops the statement.
  const stopQuery = new AbortController();
  let finished: Promise<void> | undefined;
  try {
    signal.throwIfAborted();
    const sql = `SELECT ${expressions.join(', ')} INTO OUTFILE ? ${DATA_FORMAT} FROM ${qualifiedName(database, table.name)}`;
    finished = selectIntoOutfile(
      options.connect,
      options.lend ?? (async () => lendNew(await options.connect())),
      sql,
      [outfile],
      AbortSignal.any([signal, stopQuery.signal]),
      { dir: options.workDir, file: outfile, database, table: table.name },
    );
    finished.catch(() => {});
    const splitter = new RowSplitter({
      router: split?.router,
      batchBytes: Math.min(BATCH_BYTES, options.maxFileBytes),
    });
    let seen = 0;
    try {
      for await (const chunk of followGrowingFile(outfile, finished, { chunkBytes: READ_BYTES, signal })) {
        for (const batch of splitter.push(chunk)) await writers[batch.target]!.write(batch.data, batch.rows);
        if (options.onRows && splitter.rows > seen) {
          options.onRows(splitter.rows - seen);
          seen = splitter.rows;
        }
      }
      for (const batch of splitter.end()) await writers[batch.target]!.write(batch.data, batch.rows);
    } catch (error) {
      if (!(error instanceof RowError)) throw error;
      const what = split ? ` (keyspace id column ${split.keyColumn})` : '';
      throw new StepbackError(`table ${JSON.stringify(table.name)}${what}: ${error.message}`, {
        cause: error,
        hint: split
          ? 'every row needs a keyspace id to be placed in a key range: fill the column, or leave the table out with --exclude-tables'
          : undefined,
      });
    }
    options.onRows?.(splitter.rows - seen);
    const ranges = [];
    for (const writer of writers) ranges.push({ files: await writer.finish(), rows: writer.rows });
    return { ranges, rows: splitter.rows };
  } catch (error) {
    stopQuery.abort(error);
    await finished?.catch(() => {});
    await Promise.all(writers.map((writer) => writer.abort(error as Error)));
    throw error;
  } finally {
    await fs.rm(outfile, { force: true }).catch((error: unknown) => {
      options.logger.warn(`cannot remove ${outfile}: ${messageOf(error)}`);
    });
  }
}

function lendNew(connection: Connection): LentConnection {
  return { connection, giveBack: () => connection.end().catch(() => connection.destroy()) };
}

/** Runs the OUTFILE statement on a connection of its own; an abort kills it on the server. */
async function selectIntoOutfile(
  connect: () => Promise<Connection>,
  lend: () => Promise<LentConnection>,
  sql: string,
  values: unknown[],
  signal: AbortSignal,
  target: { dir: string; file: string; database: string; table: string },
): Promise<void> {
  const lent = await lend();
  const { connection } = lent;
  try {
    // TIMESTAMP values are written in the session time zone; UTC on both sides keeps them exact.
    await connection.query("SET SESSION time_zone = '+00:00'");
    await killableQuery(connection, connect, signal, () => connection.query(sql, values));
  } catch (error) {
    if (signal.aborted) throw error;
    if (isDiskFull(error)) {
      throw await diskFullError(
        `SELECT … INTO OUTFILE of table ${JSON.stringify(target.table)}`,
        target.dir,
        // The server's estimate, or what the OUTFILE had reached when its statistics are behind.
        Math.max(
          await tableBytes(connect, target.database, target.table),
          (await fs.stat(target.file).catch(() => undefined))?.size ?? 0,
        ),
        {
          cause: error,
          hint: 'free space there: each table being dumped needs about its size on disk in the work directory (secure_file_priv) while it is read',
        },
      );
    }
    const code = (error as { errno?: number }).errno;
    throw new StepbackError(`SELECT … INTO OUTFILE failed: ${messageOf(error)}`, {
      cause: error,
      hint:
        code === 1290 || code === 1086 || code === 1
          ? 'the server must be able to write to the work directory (secure_file_priv, else tmpdir) and this agent to read it'
          : undefined,
    });
  } finally {
    await lent.giveBack();
  }
}

/** The server's estimate of a table's size (data and indexes), 0 when it cannot be read. */
async function tableBytes(
  connect: () => Promise<Connection>,
  database: string,
  table: string,
): Promise<number> {
  try {
    const connection = await connect();
    try {
      const [rows] = await connection.query(
        'SELECT DATA_LENGTH + INDEX_LENGTH AS bytes FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
        [database, table],
      );
      return Number((rows as { bytes: unknown }[])[0]?.bytes ?? 0);
    } finally {
      await connection.end().catch(() => connection.destroy());
    }
  } catch {
    return 0;
  }
}
