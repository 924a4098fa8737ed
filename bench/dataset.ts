import fs from 'node:fs/promises';
import path from 'node:path';
import { createPrivateInstance, type PrivateInstance, serverBinaries } from '../local/private-instance.ts';
import { timed } from './measure.ts';

export const benchDatabase = 'sbtest';
export const benchTables = 8;

export interface Dataset {
  tableSize: number;
  /** A cleanly shut down datadir holding sbtest.sbtest1..8, to copy instances from. */
  datadir: string;
  rows: number;
  /** Bytes of the datadir (what a physical backup reads). */
  datadirBytes: number;
}

async function directoryBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await fs.stat(path.join(entry.parentPath, entry.name))).size;
  }
  return total;
}

/**
 * sysbench's oltp tables (`--tables 8 --table-size N`) plus a `ksid` keyspace-id column, in a private
 * mariadbd, built once per N and server version and kept under `cacheDir`, then copied for each run.
 */
export async function ensureDataset(
  cacheDir: string,
  tableSize: number,
  log: (line: string) => void,
): Promise<Dataset> {
  const binaries = await serverBinaries();
  const key = `sysbench-${benchTables}x${tableSize}-ksid-${binaries.flavor}-${binaries.version}`;
  const home = path.join(cacheDir, key);
  const ready = path.join(home, 'READY');
  const datadir = path.join(home, 'data');
  const rows = benchTables * tableSize;
  try {
    await fs.access(ready);
    return { tableSize, datadir, rows, datadirBytes: await directoryBytes(datadir) };
  } catch {}

  log(
    `building the sysbench dataset (${benchTables} tables × ${tableSize.toLocaleString('en-US')} rows), cached in ${home}`,
  );
  await fs.rm(home, { recursive: true, force: true });
  await fs.mkdir(cacheDir, { recursive: true });
  const parent = await fs.mkdtemp(path.join(cacheDir, 'build-'));
  let instance: PrivateInstance | undefined;
  try {
    // No binary log while loading: it would double the build time and the cache.
    instance = await createPrivateInstance({
      parent,
      name: 'dataset',
      extraCnf: ['skip-log-bin', 'innodb-buffer-pool-size=256M'],
    });
    await instance.query(`CREATE DATABASE ${benchDatabase}`);
    await timed([
      'sysbench',
      'oltp_read_write',
      '--db-driver=mysql',
      `--mysql-socket=${instance.socket}`,
      '--mysql-user=root',
      `--mysql-db=${benchDatabase}`,
      `--tables=${benchTables}`,
      `--table-size=${tableSize}`,
      '--threads=2',
      'prepare',
    ]);
    // A keyspace id per row, spread over the whole uint64 range as Vitess's hash vindex would.
    for (let table = 1; table <= benchTables; table++) {
      await instance.query(
        `ALTER TABLE ${benchDatabase}.sbtest${table} ADD COLUMN ksid BIGINT UNSIGNED NOT NULL DEFAULT 0`,
      );
      await instance.query(
        `UPDATE ${benchDatabase}.sbtest${table} SET ksid = CONV(LEFT(MD5(id), 16), 16, 10)`,
      );
    }
    await instance.stop();
    await fs.mkdir(home, { recursive: true });
    await fs.rename(instance.datadir, datadir);
    await fs.writeFile(ready, `${new Date().toISOString()}\n`);
  } finally {
    await instance?.kill();
    await fs.rm(parent, { recursive: true, force: true });
  }
  return { tableSize, datadir, rows, datadirBytes: await directoryBytes(datadir) };
}
