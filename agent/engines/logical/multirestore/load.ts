import { createWriteStream } from 'node:fs';
import { dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { diskFullError, isDiskFull } from '../../../../core/disk-space.ts';
import { messageOf, StepbackError, VerificationError } from '../../../../core/errors.ts';
import type { TableDataFile, TableDefinition } from '../../../../core/manifest.ts';
import { createDecompressor } from '../../../../core/stream/compress.ts';
import { VerifyingStream } from '../../../../core/stream/verify.ts';
import { type Connection, qualifiedName, queryRows } from '../../../mysql/connection.ts';
import { columnCodec, DATA_FORMAT, dataColumns } from '../format.ts';
import { killableQuery } from '../killable.ts';
import { recordFile } from './ledger.ts';
import type { RestoreSource } from './sources.ts';

/** One data file of one source, to be loaded into its table. */
export interface FileJob {
  source: RestoreSource;
  file: TableDataFile;
  /** The table as the first source defines it (all sources agree). */
  table: TableDefinition;
}

export function jobLabel(job: FileJob): string {
  return `${job.source.dir}@${job.source.handle.name}/${job.file.name} (table ${JSON.stringify(job.table.name)})`;
}

/** LOAD DATA with the dump's options and an explicit column list (generated columns are computed). */
export function loadStatement(database: string, table: TableDefinition): string {
  const codecs = dataColumns(table.columns).map((column, i) => columnCodec(column, i));
  const sets = codecs.flatMap((codec) => (codec.set ? [codec.set] : []));
  return [
    `LOAD DATA INFILE ? INTO TABLE ${qualifiedName(database, table.name)} ${DATA_FORMAT}`,
    `(${codecs.map((codec) => codec.load).join(', ')})`,
    ...(sets.length > 0 ? [`SET ${sets.join(', ')}`] : []),
  ].join(' ');
}

/** Fetches a file into `path` (where the server may read it): verified, decompressed. */
export async function fetchFile(job: FileJob, path: string, signal: AbortSignal): Promise<void> {
  const stored = await job.source.handle.readFile(job.file.name, { signal });
  try {
    await pipeline(
      stored,
      new VerifyingStream(job.file),
      createDecompressor(job.source.manifest.compression),
      createWriteStream(path, { mode: 0o644, highWaterMark: 1024 * 1024 }),
      { signal },
    );
  } catch (error) {
    if (!isDiskFull(error)) throw error;
    throw await diskFullError(`fetching ${jobLabel(job)}`, dirname(path), job.file.rawSize, {
      cause: error,
      hint: 'free space in the work directory (secure_file_priv), or lower --fetch-concurrency',
    });
  }
}

export interface LoadFileOptions {
  connection: Connection;
  connect: () => Promise<Connection>;
  database: string;
  /** InnoDB: the rows and the ledger row commit together. */
  transactional: boolean;
  /** The fetched file, where the server may read it. */
  path: string;
  signal: AbortSignal;
}

/**
 * Loads one file and records it in the ledger. The server must report exactly the rows the manifest
 * lists and no warning, or nothing is committed (InnoDB) and the file stays unrecorded.
 */
export async function loadFile(job: FileJob, options: LoadFileOptions): Promise<void> {
  const { connection, database, transactional } = options;
  const entry = {
    sourceIndex: job.source.index,
    file: job.file.name,
    table: job.table.name,
    rows: job.file.rows,
  };
  const sql = loadStatement(database, job.table);
  const load = async () => {
    const [result] = await killableQuery(connection, options.connect, options.signal, () =>
      connection.query(sql, [options.path]),
    );
    const header = result as { affectedRows?: number; warningStatus?: number };
    if ((header.warningStatus ?? 0) > 0) {
      const warnings = await queryRows<{ Level: string; Code: number; Message: string }>(
        connection,
        'SHOW WARNINGS LIMIT 3',
      );
      throw new VerificationError(
        `loading ${jobLabel(job)} gave ${header.warningStatus} warnings: ${warnings.map((w) => `${w.Level} ${w.Code} ${w.Message}`).join('; ')}`,
      );
    }
    if (header.affectedRows !== job.file.rows) {
      throw new VerificationError(
        `loading ${jobLabel(job)} inserted ${header.affectedRows} rows, the manifest lists ${job.file.rows}`,
      );
    }
  };
  try {
    if (transactional) {
      await connection.query('START TRANSACTION');
      try {
        await load();
        await recordFile(connection, database, { ...entry, state: 'loaded' });
        await connection.query('COMMIT');
      } catch (error) {
        await connection.query('ROLLBACK').catch(() => {});
        throw error;
      }
    } else {
      await recordFile(connection, database, { ...entry, state: 'loading' });
      await load();
      await recordFile(connection, database, { ...entry, state: 'loaded' });
    }
  } catch (error) {
    if (error instanceof StepbackError || options.signal.aborted) throw error;
    throw new StepbackError(`cannot load ${jobLabel(job)}: ${messageOf(error)}`, { cause: error });
  }
}
