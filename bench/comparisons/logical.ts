import fs from 'node:fs/promises';
import path from 'node:path';
import { connect, quoteIdentifier } from '../../agent/mysql/connection.ts';
import { snapshotDir } from '../../core/storage/layout.ts';
import { mapConcurrent } from '../../core/stream/concurrency.ts';
import type { PrivateInstance } from '../../local/private-instance.ts';
import {
  type BenchContext,
  binariesMissing,
  client,
  directoryBytes,
  emptyDir,
  fileBytes,
  stepback,
  stepbackCommandMissing,
} from '../context.ts';
import { benchDatabase, benchTables } from '../dataset.ts';
import type { Comparison, Sample } from '../harness.ts';
import { timed } from '../measure.ts';

const tables = Array.from({ length: benchTables }, (_, i) => `sbtest${i + 1}`);
const columns = 'id, k, c, pad, ksid';
/** The options DESIGN.md measured to round-trip every byte; the limit runs use them too. */
const fileOptions = `CHARACTER SET binary FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '"' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n'`;

function outputs(context: BenchContext) {
  return {
    store: path.join(context.work, 'store-logical'),
    mydumper: path.join(context.work, 'mydumper'),
    dump: path.join(context.work, 'dump.sql.zst'),
    /** Raw OUTFILE files, inside the source's secure_file_priv. */
    outfiles: path.join(context.source.filesDir, 'bench-limit'),
  };
}

/** Adds the time of a `sync -f` of what a tool wrote (stepback's storage makes its files durable). */
async function timedSync(run: { seconds: number }, written: string): Promise<void> {
  run.seconds += (await timed(['sync', '-f', written])).seconds;
}

/** Runs `work` on `count` connections to `instance`, one table at a time each (2 at a time overall). */
async function onTables(
  instance: PrivateInstance,
  database: string | undefined,
  work: (connection: Awaited<ReturnType<typeof connect>>, table: string) => Promise<void>,
): Promise<Sample> {
  const started = process.hrtime.bigint();
  const connections = await Promise.all(
    [0, 1].map(() => connect({ socket: instance.socket, user: 'root', database })),
  );
  try {
    const free = [...connections];
    await mapConcurrent(tables, 2, async (table) => {
      const connection = free.pop()!;
      try {
        await work(connection, table);
      } finally {
        free.push(connection);
      }
    });
  } finally {
    await Promise.all(connections.map((c) => c.end()));
  }
  return { seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}

function snapshotArgs(context: BenchContext, store: string, dir: string, extra: string[]): string[] {
  return [
    'snapshot',
    '--defaults-file',
    context.source.cnf,
    '--storage',
    `file://${store}`,
    '--dir',
    dir,
    '--database',
    benchDatabase,
    '--concurrency',
    '2',
    ...extra,
  ];
}

/** Snapshot of the whole database (one range), or split into four key ranges. */
export function snapshot(context: BenchContext, shards: 1 | 4): Comparison {
  const out = outputs(context);
  const dir = shards === 1 ? 'bench/src' : 'bench/src4';
  const extra = shards === 1 ? [] : ['--key-column', 'ksid', '--key-type', 'uint64', '--shards', '4'];
  const store = shards === 1 ? out.store : `${out.store}-4`;
  return {
    name: shards === 1 ? 'snapshot' : 'snapshot --shards 4',
    rawBytes: context.dataset.datadirBytes,
    rows: context.dataset.rows,
    contenders: [
      {
        name: shards === 1 ? 'stepback snapshot' : 'stepback snapshot --shards 4',
        role: 'stepback',
        missing: () => stepbackCommandMissing('snapshot'),
        before: () => emptyDir(store),
        run: async () => {
          const run = await stepback(snapshotArgs(context, store, dir, extra));
          return { ...run, storedBytes: await directoryBytes(store) };
        },
      },
      {
        name: 'mydumper -t 2 -c',
        role: 'peer',
        missing: () => binariesMissing('mydumper'),
        before: () => fs.rm(out.mydumper, { recursive: true, force: true }),
        run: async () => {
          const run = await timed([
            'mydumper',
            `--socket=${context.source.socket}`,
            '--user=root',
            `--database=${benchDatabase}`,
            '--threads=2',
            '--compress',
            `--outputdir=${out.mydumper}`,
          ]);
          await timedSync(run, out.mydumper);
          return {
            seconds: run.seconds,
            peakRssMb: run.peakRssMb,
            storedBytes: await directoryBytes(out.mydumper),
          };
        },
      },
      {
        name: 'mariadb-dump --single-transaction | zstd -T2 -3',
        role: 'peer',
        missing: () => binariesMissing('mariadb-dump', 'zstd'),
        run: async () => {
          const run = await timed(
            `mariadb-dump --socket=${context.source.socket} --user=root --single-transaction ${benchDatabase} | zstd -T2 -3 -q > ${out.dump} && ` +
              `sync -f ${out.dump}`,
          );
          return { seconds: run.seconds, peakRssMb: run.peakRssMb, storedBytes: await fileBytes(out.dump) };
        },
      },
      {
        name: 'SELECT … INTO OUTFILE, 2 tables at a time, uncompressed',
        role: 'limit',
        before: () => emptyDir(out.outfiles),
        run: async () => {
          const sample = await onTables(context.source, benchDatabase, async (connection, table) => {
            await connection.query(
              `SELECT ${columns} INTO OUTFILE '${path.join(out.outfiles, `${table}.csv`)}' ${fileOptions} FROM ${quoteIdentifier(table)}`,
            );
          });
          await timedSync(sample, out.outfiles);
          return { ...sample, storedBytes: await directoryBytes(out.outfiles) };
        },
      },
    ],
  };
}

/** Loading a snapshot into an empty database: stepback multirestore vs myloader vs replaying SQL vs raw LOAD DATA. */
export function multirestore(context: BenchContext): Comparison {
  const out = outputs(context);
  const { target } = context;
  const drop = (database: string) => target.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(database)}`);
  const limitFiles = path.join(target.filesDir, 'bench-limit');
  const present = async (file: string, what: string) =>
    (await fs.stat(file).catch(() => undefined))
      ? undefined
      : `no ${what} to load (its snapshot did not run)`;
  return {
    name: 'multirestore',
    rawBytes: context.dataset.datadirBytes,
    rows: context.dataset.rows,
    contenders: [
      {
        name: 'stepback multirestore',
        role: 'stepback',
        missing: async () =>
          (await stepbackCommandMissing('multirestore')) ??
          (await present(path.join(out.store, snapshotDir('bench/src')), 'snapshot')),
        before: async () => {
          await drop('sbtest_stepback');
          await drop('_stepback');
        },
        run: async () => {
          const run = await stepback([
            'multirestore',
            '--defaults-file',
            target.cnf,
            '--storage',
            `file://${out.store}`,
            '--sources',
            'bench/src',
            '--database',
            'sbtest_stepback',
            '--insert-concurrency',
            '2',
          ]);
          return run;
        },
      },
      {
        name: 'myloader -t 2',
        role: 'peer',
        missing: async () =>
          (await binariesMissing('myloader')) ?? (await present(out.mydumper, 'mydumper dump')),
        before: async () => {
          await drop('sbtest_myloader');
        },
        run: async () => {
          const run = await timed([
            'myloader',
            `--socket=${target.socket}`,
            '--user=root',
            `--directory=${out.mydumper}`,
            '--database=sbtest_myloader',
            '--threads=2',
            '--overwrite-tables',
          ]);
          return { seconds: run.seconds, peakRssMb: run.peakRssMb };
        },
      },
      {
        name: 'zstd -d | mariadb (replaying the dump)',
        role: 'peer',
        missing: async () =>
          (await binariesMissing('mariadb', 'zstd')) ?? (await present(out.dump, 'mariadb-dump output')),
        before: async () => {
          await drop('sbtest_sql');
          await target.query('CREATE DATABASE sbtest_sql');
        },
        run: async () => {
          const run = await timed(`zstd -dc ${out.dump} | ${client(target)} sbtest_sql`);
          return { seconds: run.seconds, peakRssMb: run.peakRssMb };
        },
      },
      {
        name: 'LOAD DATA INFILE, 2 tables at a time',
        role: 'limit',
        missing: () => present(out.outfiles, 'OUTFILE files'),
        before: async () => {
          await drop('sbtest_limit');
          await target.query('CREATE DATABASE sbtest_limit');
          await emptyDir(limitFiles);
          for (const table of tables) {
            const [row] = await context.source.query<[{ 'Create Table': string }]>(
              `SHOW CREATE TABLE ${benchDatabase}.${quoteIdentifier(table)}`,
            );
            const connection = await target.connect('sbtest_limit');
            await connection.query(row['Create Table']);
            await connection.end();
            await fs.copyFile(path.join(out.outfiles, `${table}.csv`), path.join(limitFiles, `${table}.csv`));
          }
        },
        run: () =>
          onTables(target, 'sbtest_limit', async (connection, table) => {
            await connection.query(
              `LOAD DATA INFILE '${path.join(limitFiles, `${table}.csv`)}' INTO TABLE ${quoteIdentifier(table)} ${fileOptions} (${columns})`,
            );
          }),
      },
    ],
    teardown: async () => {
      await fs.rm(limitFiles, { recursive: true, force: true });
      for (const database of ['sbtest_stepback', 'sbtest_myloader', 'sbtest_sql', 'sbtest_limit'])
        await drop(database);
    },
  };
}
