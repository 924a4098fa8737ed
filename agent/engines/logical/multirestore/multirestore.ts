import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ExistingDataError, keepFirstError, StepbackError, UsageError } from '../../../../core/errors.ts';
import type { Logger } from '../../../../core/log.ts';
import type { TableDefinition, ViewDefinition } from '../../../../core/manifest.ts';
import type { BackupStorage } from '../../../../core/storage/types.ts';
import { mapConcurrent, Semaphore } from '../../../../core/stream/concurrency.ts';
import { acquireInstance, registerRecoverer } from '../../../instance/lease.ts';
import { type Connection, qualifiedName, queryValue } from '../../../mysql/connection.ts';
import type { MysqlDaemon } from '../../../mysqld/daemon.ts';
import type { Progress } from '../../../report/reporter.ts';
import { type CheckedTable, checkCreateTable } from './ddl.ts';
import {
  ensureLedger,
  finishRun,
  forgetTable,
  readLedger,
  readRun,
  startRun,
  writeCheckpoints,
} from './ledger.ts';
import { type FileJob, fetchFile, loadFile } from './load.ts';
import { createTables, createViews, dropObjects, existingObjects } from './schema.ts';
import { prepareSession, SessionPool } from './sessions.ts';
import { checkSameSchema, chooseSources, type RestoreSource, type SourceSpec } from './sources.ts';

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

/** Jobs interleaved table by table, so per-table limits never hold every worker on one table. */
function interleave(jobs: FileJob[]): FileJob[] {
  const byTable = new Map<string, FileJob[]>();
  for (const job of jobs) {
    const list = byTable.get(job.table.name) ?? [];
    list.push(job);
    byTable.set(job.table.name, list);
  }
  const queues = [...byTable.values()];
  const out: FileJob[] = [];
  for (let round = 0; out.length < jobs.length; round++) {
    for (const queue of queues) if (round < queue.length) out.push(queue[round]!);
  }
  return out;
}

function sourceKey(source: RestoreSource): string {
  return `${source.handle.dir}@${source.handle.name}`;
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

  const sources = await chooseSources(options.storage, options.sources, logger);
  checkSameSchema(sources);
  const first = sources[0]!.manifest;
  const tables = first.tables.filter((t): t is TableDefinition => t.type === 'table');
  const views = first.tables.filter((t): t is ViewDefinition => t.type === 'view');
  const checked = new Map<string, CheckedTable>(tables.map((table) => [table.name, checkCreateTable(table)]));
  const autoIncrement = new Map<string, bigint>();
  for (const source of sources) {
    for (const table of source.manifest.tables) {
      if (table.type !== 'table') continue;
      const value = checkCreateTable(table).autoIncrement;
      const known = autoIncrement.get(table.name);
      if (value !== undefined && (known === undefined || value > known)) autoIncrement.set(table.name, value);
    }
  }
  const tableByName = new Map(tables.map((table) => [table.name, table]));
  const allJobs: FileJob[] = sources.flatMap((source) =>
    source.manifest.files.map((file) => ({ source, file, table: tableByName.get(file.table)! })),
  );

  const lease = await acquireInstance(daemon, 'multirestore', logger);
  const connections: Connection[] = [];
  let pool: SessionPool | undefined;
  let fetchDir: string | undefined;
  let failure: unknown;
  let result: MultirestoreResult | undefined;
  try {
    if (!(await daemon.isRunning())) {
      throw new StepbackError('mysqld is not running: multirestore loads into the running server', {
        hint: 'start mysqld, then run multirestore again',
      });
    }
    const connect = async (db?: string) => {
      const connection = await daemon.connect(db ? { database: db } : {});
      connections.push(connection);
      return connection;
    };
    const session = { writeBinlogs: Boolean(options.writeBinlogs) };
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
    await ensureLedger(admin);
    const keys = sources.map(sourceKey);
    const run = await readRun(admin, database);
    const existing = await existingObjects(admin, database);
    // The same sources into a database that still holds tables: continue where the ledger says.
    const resumed =
      run !== undefined && existing.length > 0 && JSON.stringify(run.sources) === JSON.stringify(keys);
    if (resumed) {
      logger.warn(
        run.finished
          ? `${database} was already loaded from these sources; checking the ledger`
          : `resuming the interrupted multirestore into ${database}`,
      );
    } else {
      if (existing.length > 0) {
        if (!options.force) {
          const names = existing.slice(0, 5).map((o) => o.name);
          throw new ExistingDataError(
            `database ${database} already holds ${existing.length} tables and views (${names.join(', ')}${existing.length > 5 ? ', …' : ''})${run ? `, loaded from ${run.sources.join(', ')}` : ''}`,
            {
              hint: 'restore into another database, or pass --force to replace the tables and views the snapshots hold',
            },
          );
        }
        await dropObjects(admin, database, new Set(first.tables.map((t) => t.name)), existing, logger);
      }
      await startRun(admin, database, keys);
    }

    const created = await createTables(
      admin,
      database,
      tables.map((table) => ({ table, checked: checked.get(table.name)! })),
      logger,
    );
    if (resumed) {
      // A table that had to be created again lost whatever the ledger says was loaded into it.
      for (const table of created) await forgetTable(admin, database, table);
    }
    await createViews(admin, database, views, logger);

    const engines = new Map((await existingObjects(admin, database)).map((o) => [o.name, o.engine]));
    const transactional = (table: string) => engines.get(table)?.toLowerCase() === 'innodb';
    for (const entry of await readLedger(admin, database)) {
      if (entry.state === 'loading' && !transactional(entry.table)) {
        logger.warn(
          `table ${entry.table} (${engines.get(entry.table)}, not transactional) was being loaded when the last run stopped: emptying it to load all its files again`,
        );
        await admin.query(`TRUNCATE TABLE ${qualifiedName(database, entry.table)}`);
        await forgetTable(admin, database, entry.table);
      }
    }
    const loaded = new Set(
      (await readLedger(admin, database))
        .filter((e) => e.state === 'loaded')
        .map((e) => `${e.sourceIndex}/${e.file}`),
    );
    const jobs = interleave(allJobs.filter((job) => !loaded.has(`${job.source.index}/${job.file.name}`)));
    if (resumed) logger.info(`${allJobs.length - jobs.length} of ${allJobs.length} files are already loaded`);

    pool = new SessionPool(options.insertConcurrency, async () => {
      const connection = await connect(database);
      await prepareSession(connection, session);
      return connection;
    });
    const remaining = new Map<string, number>(tables.map((table) => [table.name, 0]));
    for (const job of jobs) remaining.set(job.table.name, (remaining.get(job.table.name) ?? 0) + 1);
    const restoreAutoIncrement = async (table: string) => {
      const value = autoIncrement.get(table);
      if (value === undefined) return;
      await pool!.use((c) =>
        c.query(`ALTER TABLE ${qualifiedName(database, table)} AUTO_INCREMENT = ${value.toString()}`),
      );
    };
    for (const [table, count] of remaining) if (count === 0) await restoreAutoIncrement(table);

    const progress = { rowsDone: 0, bytesDone: 0, itemsDone: 0 };
    const bytesTotal = jobs.reduce((sum, job) => sum + job.file.storedSize, 0);
    const rowsTotal = jobs.reduce((sum, job) => sum + job.file.rows, 0);
    const report = () =>
      options.onProgress?.({
        phase: `loading ${database}`,
        ...progress,
        bytesTotal,
        rowsTotal,
        itemsTotal: jobs.length,
      });
    report();
    const fetches = new Semaphore(options.fetchConcurrency);
    const perTable = new Map(tables.map((table) => [table.name, new Semaphore(options.tableConcurrency)]));
    const connectForKill = () => daemon.connect();
    await mapConcurrent(
      jobs,
      // Fetched files wait for a load slot: at most this many are on disk at once.
      options.fetchConcurrency + options.insertConcurrency,
      async (job, index, jobSignal) => {
        const jobAbort = AbortSignal.any([jobSignal, signal]);
        const file = path.join(fetchDir!, `${job.source.index}.${index}.csv`);
        try {
          await fetches.use(() => fetchFile(job, file, jobAbort), jobAbort);
          // The per-table permit first, then a session: a load waiting for its table holds no connection.
          await perTable.get(job.table.name)!.use(
            () =>
              pool!.use(
                (connection) =>
                  loadFile(job, {
                    connection,
                    connect: connectForKill,
                    database,
                    transactional: transactional(job.table.name),
                    path: file,
                    signal: jobAbort,
                  }),
                jobAbort,
              ),
            jobAbort,
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
      { signal, logger },
    );

    if (options.checkpoints) {
      await writeCheckpoints(
        admin,
        database,
        sources.map((source) => ({
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
      sources: sources.map((source) => ({
        dir: source.handle.dir,
        name: source.handle.name,
        keyRange: source.manifest.keyRange,
        position: source.manifest.position,
        rows: source.manifest.files.reduce((sum, file) => sum + file.rows, 0),
      })),
      tables: tables.length,
      views: views.length,
      files: { total: allJobs.length, loaded: jobs.length, alreadyLoaded: allJobs.length - jobs.length },
      rows: progress.rowsDone,
      bytes: progress.bytesDone,
      resumed,
      checkpoints: Boolean(options.checkpoints),
      seconds: (Date.now() - started) / 1000,
    };
  } catch (error) {
    failure = error;
  }
  const cleanups: (() => Promise<void>)[] = [
    async () => pool?.close(),
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
