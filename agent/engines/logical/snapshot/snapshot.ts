import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { backupName } from '../../../../core/backups.ts';
import {
  keepFirstError,
  StepbackError,
  UsageError,
  VerificationError,
  withCleanup,
} from '../../../../core/errors.ts';
import { KeyRange } from '../../../../core/keyrange.ts';
import type { Logger } from '../../../../core/log.ts';
import type { Compression } from '../../../../core/manifest.ts';
import { snapshotAddress, snapshotDir } from '../../../../core/storage/layout.ts';
import type { BackupHandle, BackupStorage } from '../../../../core/storage/types.ts';
import { mapConcurrent } from '../../../../core/stream/concurrency.ts';
import { acquireInstance, registerRecoverer } from '../../../instance/lease.ts';
import { captureState, quiesce, restoreState } from '../../../instance/state.ts';
import { queryValue } from '../../../mysql/connection.ts';
import type { MysqlDaemon } from '../../../mysqld/daemon.ts';
import type { Progress } from '../../../report/reporter.ts';
import { type DumpedTable, type DumpTableOptions, dumpTable, outfilePrefix } from './dump.ts';
import { type KeyType, keyspaceIdRouter } from './keyspace-id.ts';
import { rangeManifest } from './manifest.ts';
import { checkKeyColumn, readSourceSchema, type SourceSchema } from './schema.ts';

export interface SnapshotOptions {
  daemon: MysqlDaemon;
  storage: BackupStorage;
  /** `keyspace/source`; each partial key range is written to `<dir>/<range>`, the full range to `<dir>`. */
  dir: string;
  database: string;
  /** Splitting by key range: the keyspace id column and its type. */
  keyColumn?: string | undefined;
  keyType?: KeyType | undefined;
  /** Default: the full range. */
  keyRanges?: readonly KeyRange[] | undefined;
  /** A vertical split: only these tables (and views). */
  tables?: readonly string[] | undefined;
  excludeTables?: readonly string[] | undefined;
  /** Raw bytes per data file before a new one starts. */
  maxFileBytes: number;
  /** Tables dumped at once. */
  concurrency: number;
  compression?: Compression | undefined;
  logger: Logger;
  signal?: AbortSignal | undefined;
  onProgress?: ((progress: Progress) => void) | undefined;
}

/** One key range's backup, as `stepback snapshot --json` lists it. */
export interface SnapshotEntry {
  keyRange: string;
  dir: string;
  name: string;
  rows: number;
  /** Stored bytes. */
  bytes: number;
}

export interface SnapshotResult {
  snapshots: SnapshotEntry[];
  database: string;
  role: 'primary' | 'replica';
  position: string;
  tables: number;
  views: number;
  seconds: number;
}

/** The address of one range (`shop/0/-80`): the full range is `dir` itself. */
export function rangeDir(dir: string, range: KeyRange): string {
  return snapshotAddress(dir, range);
}

/** Checks the combination of flags before anything touches the instance. */
export function checkSnapshotOptions(options: SnapshotOptions): KeyRange[] {
  const ranges =
    options.keyRanges && options.keyRanges.length > 0 ? [...options.keyRanges] : [KeyRange.full()];
  const partial = ranges.some((range) => !range.isFull());
  if (options.tables && options.tables.length > 0 && (ranges.length !== 1 || partial)) {
    throw new UsageError(
      '--tables copies whole tables (a vertical split): it takes one full key range only',
      {
        hint: 'drop --key-ranges/--shards, or drop --tables and split every table by key range',
      },
    );
  }
  if (partial && !options.keyColumn) {
    throw new UsageError('splitting by key range needs --key-column and --key-type');
  }
  if (options.keyColumn && !options.keyType)
    throw new UsageError('--key-column needs --key-type uint64 or bytes');
  if (options.dir.split('/').length !== 2) {
    throw new UsageError(`--dir ${options.dir}: a snapshot's source is KEYSPACE/SOURCE, e.g. shop/0`);
  }
  const dirs = new Set<string>();
  for (const range of ranges) {
    const dir = snapshotDir(rangeDir(options.dir, range));
    if (dirs.has(dir)) throw new UsageError(`key range ${range} is listed twice`);
    dirs.add(dir);
  }
  return ranges;
}

/** Where the server writes OUTFILEs: secure_file_priv, or its tmpdir when that is unrestricted. */
async function workDirectory(daemon: MysqlDaemon): Promise<string> {
  const secure = daemon.config.secureFilePriv;
  if (secure === undefined) {
    throw new UsageError(
      'secure_file_priv is NULL on this instance: the server may not write files, so it cannot dump tables',
      {
        hint: 'set secure_file_priv to a directory (e.g. /var/lib/mysql-files) in my.cnf and restart mysqld',
      },
    );
  }
  if (secure !== '') return secure;
  const tmpdir = String(await daemon.withConnection((c) => queryValue(c, 'SELECT @@GLOBAL.tmpdir')));
  return tmpdir.split(':')[0] || os.tmpdir();
}

registerRecoverer('snapshot', async (_daemon, marker, logger) => {
  const workDir = marker.details?.workDir;
  if (typeof workDir !== 'string') return [];
  const prefix = outfilePrefix(marker.pid);
  const leftovers = (await fs.readdir(workDir).catch(() => [] as string[])).filter((name) =>
    name.startsWith(prefix),
  );
  for (const name of leftovers) await fs.rm(path.join(workDir, name), { force: true });
  if (leftovers.length > 0)
    logger.info(`removed ${leftovers.length} temporary dump files of the interrupted snapshot`);
  return leftovers.length > 0 ? [`removed ${leftovers.length} temporary dump files`] : [];
});

/**
 * A logical snapshot of one database, split by key range or restricted to a set of tables: the
 * instance is quiesced (a replica stops replicating, a primary turns read-only) so every table is
 * read at one position, tables are dumped `concurrency` at a time, the position is checked again,
 * and each range gets its own backup with its own manifest. The instance is always put back.
 */
export async function createSnapshot(options: SnapshotOptions): Promise<SnapshotResult> {
  const ranges = checkSnapshotOptions(options);
  const { daemon, storage, logger, database } = options;
  const signal = options.signal ?? new AbortController().signal;
  const compression = options.compression ?? 'zstd';
  const started = new Date();
  const split =
    options.keyColumn && options.keyType && !(ranges.length === 1 && ranges[0]!.isFull())
      ? {
          keyColumn: options.keyColumn,
          keyType: options.keyType,
          router: keyspaceIdRouter(options.keyType, ranges),
        }
      : undefined;

  const readSchema = async (): Promise<SourceSchema> => {
    const connection = await daemon.connect({ database });
    try {
      const schema = await readSourceSchema(connection, database, options);
      if (split) checkKeyColumn(schema.tables, split.keyColumn, split.keyType);
      if (schema.tables.length === 0 && schema.views.length === 0) {
        throw new UsageError(`database ${JSON.stringify(database)} has no tables to snapshot`);
      }
      return schema;
    } finally {
      await connection.end().catch(() => connection.destroy());
    }
  };

  const lease = await acquireInstance(daemon, 'snapshot', logger);
  let putBack = true;
  try {
    const original = await captureState(daemon);
    if (!original.running) {
      throw new StepbackError('mysqld is not running: a snapshot reads from the running server', {
        hint: 'start mysqld, then run the snapshot again',
      });
    }
    const workDir = await workDirectory(daemon);
    // Checked before the instance is quiesced, so a typo costs nothing; read again once writes stopped.
    await readSchema();
    await lease.record({ original, details: { workDir } });
    return await withCleanup(
      logger,
      async () => {
        const quiesced = await quiesce(daemon, original, logger);
        const schema = await readSchema();
        const name = backupName(started, os.hostname());
        const handles: BackupHandle[] = [];
        try {
          for (const range of ranges)
            handles.push(await storage.startBackup(snapshotDir(rangeDir(options.dir, range)), name));
          const dumped = await dumpTables(schema, handles, {
            ...options,
            workDir,
            split,
            compression,
            signal,
          });
          const position = await daemon.withConnection((c) => daemon.flavor.executedPosition(c));
          if (position !== quiesced.position) {
            throw new VerificationError(
              `the position moved during the snapshot, from ${quiesced.position} to ${position}: the data is not from one point in time`,
              {
                hint: 'something wrote to the instance while it was quiesced (a user with SUPER?); run the snapshot again',
              },
            );
          }
          const serverVersion = await daemon.serverVersion();
          const serverUuid =
            daemon.flavor.name === 'mysql'
              ? String(await daemon.withConnection((c) => queryValue(c, 'SELECT @@GLOBAL.server_uuid')))
              : undefined;
          const finished = new Date();
          const snapshots: SnapshotEntry[] = [];
          for (const [rangeIndex, range] of ranges.entries()) {
            const handle = handles[rangeIndex]!;
            const manifest = rangeManifest({
              daemon,
              serverVersion,
              serverUuid,
              name,
              dir: rangeDir(options.dir, range),
              range,
              rangeIndex,
              database,
              schema,
              dumped,
              quiesced,
              compression,
              split:
                options.keyColumn && options.keyType
                  ? { keyColumn: options.keyColumn, keyType: options.keyType }
                  : undefined,
              started,
              finished,
            });
            await handle.endBackup(manifest);
            snapshots.push({
              keyRange: manifest.keyRange,
              dir: manifest.dir,
              name,
              rows: manifest.files.reduce((sum, file) => sum + file.rows, 0),
              bytes: manifest.bytes.stored,
            });
          }
          return {
            snapshots,
            database,
            role: quiesced.role,
            position: quiesced.position,
            tables: schema.tables.length,
            views: schema.views.length,
            seconds: (Date.now() - started.getTime()) / 1000,
          };
        } catch (error) {
          for (const handle of handles) {
            await handle
              .abortBackup()
              .catch((abortError: unknown) => keepFirstError(logger, error, abortError));
          }
          throw error;
        }
      },
      async () => {
        try {
          await restoreState(daemon, original, logger);
        } catch (error) {
          putBack = false;
          throw error;
        }
      },
    );
  } finally {
    if (putBack) await lease.release();
    else
      logger.error(
        'the instance could not be put back as it was; the next stepback command on it tries again',
      );
  }
}

interface DumpTablesOptions extends SnapshotOptions {
  workDir: string;
  split: DumpTableOptions['split'];
  compression: Compression;
  signal: AbortSignal;
}

/**
 * Dumps every table, `concurrency` at a time, the biggest first (the server's estimate) so the last
 * one to finish is a small one. Returns what each table index wrote.
 */
async function dumpTables(
  schema: SourceSchema,
  handles: readonly BackupHandle[],
  options: DumpTablesOptions,
): Promise<Map<number, DumpedTable>> {
  const { daemon, database, logger, signal } = options;
  const tables = [...schema.tables.entries()].sort(
    ([, a], [, b]) => (schema.dataLength.get(b.name) ?? 0) - (schema.dataLength.get(a.name) ?? 0),
  );
  let rowsDone = 0;
  let tablesDone = 0;
  const report = () =>
    options.onProgress?.({
      phase: `dumping ${database}`,
      rowsDone,
      itemsDone: tablesDone,
      itemsTotal: tables.length,
    });
  report();
  const dumped = new Map<number, DumpedTable>();
  await mapConcurrent(
    tables,
    options.concurrency,
    async ([tableIndex, table], _i, tableSignal) => {
      const result = await dumpTable({
        connect: () => daemon.connect(),
        database,
        table,
        tableIndex,
        workDir: options.workDir,
        split: options.split,
        handles,
        compression: options.compression,
        maxFileBytes: options.maxFileBytes,
        signal: AbortSignal.any([tableSignal, signal]),
        logger,
        onRows: (rows) => {
          rowsDone += rows;
          report();
        },
      });
      dumped.set(tableIndex, result);
      tablesDone++;
      report();
      logger.debug(`dumped ${table.name}`, { rows: result.rows });
    },
    { signal, logger },
  );
  return dumped;
}
