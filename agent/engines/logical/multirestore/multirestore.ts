import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { keepFirstError, StepbackError, UsageError } from '../../../../core/errors.ts';
import type { Logger } from '../../../../core/log.ts';
import type { BackupStorage } from '../../../../core/storage/types.ts';
import { mapConcurrent, Semaphore } from '../../../../core/stream/concurrency.ts';
import { acquireInstance, registerRecoverer } from '../../../instance/lease.ts';
import { type Connection, qualifiedName, queryValue } from '../../../mysql/connection.ts';
import type { MysqlDaemon } from '../../../mysqld/daemon.ts';
import type { Progress } from '../../../report/reporter.ts';
import { pendingFiles, prepareDestination } from './destination.ts';
import { finishRun, writeCheckpoints } from './ledger.ts';
import { type FileJob, fetchFile, loadFile } from './load.ts';
import { planRestore, type RestorePlan, sourceKey } from './plan.ts';
import { prepareSession, SessionPool } from './sessions.ts';
import { chooseSources, type SourceSpec } from './sources.ts';

export interface MultirestoreOptions {
  daemon: MysqlDaemon;
  storage: BackupStorage;
  sources: readonly SourceSpec[];
  database: string;
  /** Files fetched (read, verified, decompressed) at once. */
  fetchConcurrency: number;
  /** LOAD DATA statements at once. */
  insertConcurrency: number;
  /** LOAD DATA statements into one table at once. */
  tableConcurrency: number;
  /** Write the load to the binary log (default: off for the session). */
  writeBinlogs?: boolean | undefined;
  /** Write one checkpoint row per source, for filtered replication to resume from. */
  checkpoints?: boolean | undefined;
  /** Flag the checkpoint rows so that replication is not started from them automatically. */
  dontStartReplication?: boolean | undefined;
  /** Replace the tables and views the snapshots hold when the database already has tables. */
  force?: boolean | undefined;
  logger: Logger;
  signal?: AbortSignal | undefined;
  onProgress?: ((progress: Progress) => void) | undefined;
}

export interface MultirestoreResult {
  database: string;
  sources: { dir: string; name: string; keyRange: string; position: string; rows: number }[];
  tables: number;
  views: number;
  files: { total: number; loaded: number; alreadyLoaded: number };
  /** Rows loaded by this run. */
  rows: number;
  /** Stored bytes fetched by this run. */
  bytes: number;
  /** An interrupted run of the same sources was continued. */
  resumed: boolean;
  checkpoints: boolean;
  seconds: number;
}

const FLAG_DONT_START = 'dont-start';

function fetchDirPrefix(pid: number = process.pid): string {
  return `stepback-multirestore-${pid}`;
}

registerRecoverer('multirestore', async (_daemon, marker) => {
  const workDir = marker.details?.workDir;
  if (typeof workDir !== 'string') return [];
  const dir = path.join(workDir, fetchDirPrefix(marker.pid));
  const existed = await fs.stat(dir).then(
    () => true,
    () => false,
  );
  await fs.rm(dir, { recursive: true, force: true });
  return existed ? ['removed the files fetched by the interrupted multirestore'] : [];
});

/** Directory the server may read files from: secure_file_priv, or its tmpdir when unrestricted. */
async function serverReadableDir(daemon: MysqlDaemon): Promise<string> {
  const secure = daemon.config.secureFilePriv;
  if (secure === undefined) {
    throw new UsageError(
      'secure_file_priv is NULL on this instance: the server may not read files for LOAD DATA',
      {
        hint: 'set secure_file_priv to a directory (e.g. /var/lib/mysql-files) in my.cnf and restart mysqld',
      },
    );
  }
  if (secure !== '') return secure;
  const tmpdir = String(await daemon.withConnection((c) => queryValue(c, 'SELECT @@GLOBAL.tmpdir')));
  return tmpdir.split(':')[0] || os.tmpdir();
}

/**
 * Loads one or more logical snapshots into one database: a merge of several sources, one range of
 * a horizontal split, or the tables of a vertical split. Resumable: a per-file ledger in the
 * destination makes a re-run after a crash load only what is missing, never a row twice.
 */
export async function multirestore(options: MultirestoreOptions): Promise<MultirestoreResult> {
  const started = Date.now();
  const { daemon, logger, database } = options;
  const signal = options.signal ?? new AbortController().signal;
  if (options.dontStartReplication && !options.checkpoints) {
    throw new UsageError('--dont-start-replication flags the checkpoint rows: it needs --checkpoints');
  }
  const plan = planRestore(await chooseSources(options.storage, options.sources, logger));

  const lease = await acquireInstance(daemon, 'multirestore', logger);
  const connections: Connection[] = [];
  const connect = async (db?: string) => {
    const connection = await daemon.connect(db ? { database: db } : {});
    connections.push(connection);
    return connection;
  };
  const session = { writeBinlogs: Boolean(options.writeBinlogs) };
  const pool = new SessionPool(options.insertConcurrency, async () => {
    const connection = await connect(database);
    await prepareSession(connection, session);
    return connection;
  });
  let fetchDir: string | undefined;
  let failure: unknown;
  let result: MultirestoreResult | undefined;
  try {
    if (!(await daemon.isRunning())) {
      throw new StepbackError('mysqld is not running: multirestore loads into the running server', {
        hint: 'start mysqld, then run multirestore again',
      });
    }
    // Files are fetched (verified, decompressed) where the server may read them, then loaded with
    // LOAD DATA INFILE. Streaming them with LOAD DATA LOCAL measured no faster here, would load rows
    // before their hash is checked, and needs local_infile (off by default on MySQL 8).
    const workDir = await serverReadableDir(daemon);
    await lease.record({ details: { workDir } });
    fetchDir = path.join(workDir, fetchDirPrefix());
    await fs.rm(fetchDir, { recursive: true, force: true });
    await fs.mkdir(fetchDir, { mode: 0o755 });

    const admin = await connect();
    await prepareSession(admin, session);
    const resumed = await prepareDestination(admin, plan, {
      database,
      force: Boolean(options.force),
      logger,
    });
    const { jobs, transactional } = await pendingFiles(admin, database, plan, logger);
    if (resumed)
      logger.info(`${plan.files.length - jobs.length} of ${plan.files.length} files are already loaded`);
    const loaded = await loadFiles(jobs, plan, {
      ...options,
      signal,
      fetchDir,
      pool,
      transactional,
      connect: () => daemon.connect(),
    });

    if (options.checkpoints) {
      await writeCheckpoints(
        admin,
        database,
        plan.sources.map((source) => ({
          sourceIndex: source.index,
          source: sourceKey(source),
          position: source.manifest.position,
          flags: options.dontStartReplication ? FLAG_DONT_START : '',
        })),
      );
    }
    await finishRun(admin, database);
    result = {
      database,
      sources: plan.sources.map((source) => ({
        dir: source.dir,
        name: source.handle.name,
        keyRange: source.manifest.keyRange,
        position: source.manifest.position,
        rows: source.manifest.files.reduce((sum, file) => sum + file.rows, 0),
      })),
      tables: plan.tables.length,
      views: plan.views.length,
      files: {
        total: plan.files.length,
        loaded: jobs.length,
        alreadyLoaded: plan.files.length - jobs.length,
      },
      rows: loaded.rows,
      bytes: loaded.bytes,
      resumed,
      checkpoints: Boolean(options.checkpoints),
      seconds: (Date.now() - started) / 1000,
    };
  } catch (error) {
    failure = error;
  }
  const cleanups: (() => Promise<void>)[] = [
    () => pool.close(),
    async () => {
      await Promise.all(connections.map((c) => c.end().catch(() => c.destroy())));
    },
    async () => {
      if (fetchDir) await fs.rm(fetchDir, { recursive: true, force: true });
    },
    () => lease.release(),
  ];
  for (const cleanup of cleanups) {
    try {
      await cleanup();
    } catch (error) {
      failure = keepFirstError(logger, failure, error);
    }
  }
  if (failure !== undefined) throw failure;
  return result!;
}

interface LoadFilesOptions extends MultirestoreOptions {
  signal: AbortSignal;
  fetchDir: string;
  pool: SessionPool;
  transactional: (table: string) => boolean;
  /** A connection for KILL QUERY when a load is aborted. */
  connect: () => Promise<Connection>;
}

/**
 * Fetches and loads `jobs`: `fetchConcurrency` fetches, `insertConcurrency` loads and
 * `tableConcurrency` loads per table at once. After a table's last file its AUTO_INCREMENT is put
 * back (at once for tables with nothing left to load). Returns the rows and stored bytes loaded.
 */
async function loadFiles(
  jobs: readonly FileJob[],
  plan: RestorePlan,
  options: LoadFilesOptions,
): Promise<{ rows: number; bytes: number }> {
  const { database, pool, signal } = options;
  const remaining = new Map<string, number>(plan.tables.map((table) => [table.name, 0]));
  for (const job of jobs) remaining.set(job.table.name, (remaining.get(job.table.name) ?? 0) + 1);
  const restoreAutoIncrement = async (table: string) => {
    const value = plan.autoIncrement.get(table);
    if (value === undefined) return;
    await pool.use((c) => c.query(`ALTER TABLE ${qualifiedName(database, table)} AUTO_INCREMENT = ${value}`));
  };
  for (const [table, count] of remaining) if (count === 0) await restoreAutoIncrement(table);

  const progress = { rowsDone: 0, bytesDone: 0, itemsDone: 0 };
  const totals = {
    bytesTotal: jobs.reduce((sum, job) => sum + job.file.storedSize, 0),
    rowsTotal: jobs.reduce((sum, job) => sum + job.file.rows, 0),
    itemsTotal: jobs.length,
  };
  const report = () => options.onProgress?.({ phase: `loading ${database}`, ...progress, ...totals });
  report();
  const fetches = new Semaphore(options.fetchConcurrency);
  const perTable = new Map(plan.tables.map((table) => [table.name, new Semaphore(options.tableConcurrency)]));
  await mapConcurrent(
    jobs,
    // Fetched files wait for a load slot: at most this many are on disk at once.
    options.fetchConcurrency + options.insertConcurrency,
    async (job, index, jobSignal) => {
      const abort = AbortSignal.any([jobSignal, signal]);
      const file = path.join(options.fetchDir, `${job.source.index}.${index}.csv`);
      try {
        await fetches.use(() => fetchFile(job, file, abort), abort);
        // The per-table permit first, then a session: a load waiting for its table holds no connection.
        await perTable.get(job.table.name)!.use(
          () =>
            pool.use(
              (connection) =>
                loadFile(job, {
                  connection,
                  connect: options.connect,
                  database,
                  transactional: options.transactional(job.table.name),
                  path: file,
                  signal: abort,
                }),
              abort,
            ),
          abort,
        );
      } finally {
        await fs.rm(file, { force: true });
      }
      progress.rowsDone += job.file.rows;
      progress.bytesDone += job.file.storedSize;
      progress.itemsDone++;
      report();
      const left = remaining.get(job.table.name)! - 1;
      remaining.set(job.table.name, left);
      if (left === 0) await restoreAutoIncrement(job.table.name);
    },
    { signal, logger: options.logger },
  );
  return { rows: progress.rowsDone, bytes: progress.bytesDone };
}
