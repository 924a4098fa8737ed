import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../../../core/log.ts';
import { mapConcurrent, Semaphore } from '../../../../core/stream/concurrency.ts';
import { reachedPhase } from '../../../instance/fault.ts';
import { type Connection, qualifiedName } from '../../../mysql/connection.ts';
import type { Progress } from '../../../report/reporter.ts';
import { type FileJob, fetchFile, loadFile } from './load.ts';
import type { RestorePlan } from './plan.ts';
import type { SessionPool } from './sessions.ts';

export interface LoadFilesOptions {
  database: string;
  fetchConcurrency: number;
  insertConcurrency: number;
  tableConcurrency: number;
  logger: Logger;
  onProgress?: ((progress: Progress) => void) | undefined;
  signal: AbortSignal;
  fetchDir: string;
  pool: SessionPool;
  transactional: (table: string) => boolean;
  /** A connection for KILL QUERY when a load is aborted. */
  connect: () => Promise<Connection>;
  /** Runs once a table has nothing left to load (its triggers are created then). */
  afterTable: (table: string) => Promise<void>;
}

/**
 * Fetches and loads `jobs`: `fetchConcurrency` fetches, `insertConcurrency` loads and
 * `tableConcurrency` loads per table at once. After a table's last file its AUTO_INCREMENT is put
 * back and `afterTable` runs (at once for tables with nothing left to load). Returns the rows and
 * stored bytes loaded.
 */
export async function loadFiles(
  jobs: readonly FileJob[],
  plan: RestorePlan,
  options: LoadFilesOptions,
): Promise<{ rows: number; bytes: number }> {
  const { database, pool, signal } = options;
  const remaining = new Map<string, number>(plan.tables.map((table) => [table.name, 0]));
  for (const job of jobs) remaining.set(job.table.name, (remaining.get(job.table.name) ?? 0) + 1);
  const finishTable = async (table: string) => {
    const value = plan.autoIncrement.get(table);
    if (value !== undefined) {
      await pool.use((c) =>
        c.query(`ALTER TABLE ${qualifiedName(database, table)} AUTO_INCREMENT = ${value}`),
      );
    }
    await options.afterTable(table);
  };
  for (const [table, count] of remaining) if (count === 0) await finishTable(table);

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
      reachedPhase('multirestore:loading');
      progress.rowsDone += job.file.rows;
      progress.bytesDone += job.file.storedSize;
      progress.itemsDone++;
      report();
      const left = remaining.get(job.table.name)! - 1;
      remaining.set(job.table.name, left);
      if (left === 0) await finishTable(job.table.name);
    },
    { signal, logger: options.logger },
  );
  return { rows: progress.rowsDone, bytes: progress.bytesDone };
}
