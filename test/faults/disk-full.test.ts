import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrivateInstance } from '../../local/private-instance.ts';
import { runStepback } from '../support/cli.ts';
import { fillRandom, stateOf, tableChecksums } from '../support/data.ts';
import { type FaultRecord, recordFault } from '../support/faults.ts';
import { createTestInstance, type TestInstance } from '../support/mariadb.ts';
import { tempDir } from '../support/root.ts';

/**
 * A disk that fills up: the target's datadir (and so the restore's staging area beside it), and a
 * snapshot's work directory (secure_file_priv), each on a small tmpfs made for the test. The
 * operation fails with DISK_FULL naming the directory and the bytes it needs; the instance is as it
 * was, and nothing it wrote is left behind.
 */

const run = promisify(execFile);

/** Why a size-limited filesystem cannot be made here, or undefined when it can. */
async function mountProblem(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'not root: making a size-limited tmpfs needs mount (run as root)';
  const probe = await tempDir('mount-probe');
  try {
    await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe]);
    await run('umount', [probe]);
    return undefined;
  } catch (error) {
    return `mount -t tmpfs failed: ${(error as Error).message.split('\n')[0]}`;
  } finally {
    await fs.rm(probe, { recursive: true, force: true });
  }
}

const problem = await mountProblem();
const faults = {
  restore: 'disk full while a restore stages files',
  snapshot: 'disk full while a snapshot writes OUTFILEs',
  multirestore: 'disk full while multirestore fetches files',
};
if (problem) {
  for (const fault of Object.values(faults)) {
    recordFault({ fault, cases: 0, survived: 0, rowsLost: null, filesLeft: null, skipped: problem });
  }
}

/** Files (not directories) under `dir`, relative, sorted; empty when it does not exist. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)))
    .sort();
}

async function rowCount(instance: TestInstance, table: string): Promise<number> {
  const [{ n }] = await instance.query<[{ n: string }]>(`SELECT COUNT(*) AS n FROM ${table}`);
  return Number(n);
}

const mounted: string[] = [];

async function mountTmpfs(dir: string, size: string): Promise<void> {
  await run('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  mounted.push(dir);
}

async function unmount(dir: string): Promise<void> {
  if (!mounted.includes(dir)) return;
  await run('umount', [dir]);
  mounted.splice(mounted.indexOf(dir), 1);
}

describe.skipIf(problem !== undefined)('a full disk', () => {
  let source: TestInstance;
  let target: TestInstance | undefined;
  let destination: TestInstance | undefined;
  let storageRoot: string;
  let small: string;

  beforeAll(async () => {
    [source, small, storageRoot] = await Promise.all([
      createTestInstance({ name: 'faults-disk-source' }),
      tempDir('faults-small-disk'),
      tempDir('faults-disk-storage'),
    ]);
    // About 30 MiB of incompressible rows: more than the small filesystems hold.
    await fillRandom(source, 'shop', 'big', 30_000);
    await source.query('CREATE TABLE shop.small (id INT PRIMARY KEY, note VARCHAR(20))');
    await source.query("INSERT INTO shop.small SELECT seq, 'kept' FROM shop.seq_1_to_100");
    // Fresh statistics, as a table that has lived a while has (the size estimate comes from them).
    await source.query('ANALYZE TABLE shop.big, shop.small');
  });

  afterAll(async () => {
    for (const dir of [...mounted]) await unmount(dir).catch(() => {});
    await Promise.all([target?.dispose(), destination?.dispose(), source?.dispose()]);
    for (const dir of [...mounted]) await unmount(dir);
  });

  describe('while a restore stages files', () => {
    let backupDir: string;
    let backupName: string;

    beforeAll(async () => {
      const made = await runStepback([
        'backup',
        '--defaults-file',
        source.cnf,
        '--storage',
        `file://${storageRoot}`,
        '--dir',
        'shop/0',
        '--json',
      ]);
      if (made.code !== 0) throw new Error(made.stderr);
      backupName = (made.json as { name: string }).name;
      backupDir = path.join(storageRoot, 'shop/0', backupName);
      // The target lives on a 112 MiB filesystem: its own files take about 45 MiB of it, the
      // backup needs about 80 MiB.
      await mountTmpfs(small, '112m');
      target = await createPrivateInstance({ parent: small, name: 'faults-disk-target' });
      await target.query('CREATE DATABASE keep');
      await target.query('CREATE TABLE keep.t (id INT PRIMARY KEY, v VARCHAR(20))');
      await target.query("INSERT INTO keep.t SELECT seq, 'mine' FROM keep.seq_1_to_1000");
    });

    async function observe() {
      const instance = target!;
      return {
        state: await stateOf(instance),
        keep: await tableChecksums(instance, 'keep'),
        rows: await rowCount(instance, 'keep.t'),
        files: await filesUnder(small),
      };
    }

    /** Restores `dir` into the target, expecting DISK_FULL; records and returns what it measured. */
    async function restoreOntoFullDisk(dir: string) {
      const before = await observe();
      const result = await runStepback([
        'restore',
        '--defaults-file',
        target!.cnf,
        '--storage',
        `file://${storageRoot}`,
        '--dir',
        dir,
        '--delete-before-restore',
        '--json',
      ]);
      const after = await observe();
      const known = new Set(before.files);
      const record: FaultRecord = {
        fault: faults.restore,
        cases: 1,
        survived: 0,
        rowsLost: Math.max(0, before.rows - after.rows),
        filesLeft: after.files.filter((file) => !known.has(file)).length,
      };
      const error = (result.json as { error?: { code: string; message: string } }).error;
      record.survived =
        result.code === 1 && error?.code === 'DISK_FULL' && record.rowsLost === 0 && record.filesLeft === 0
          ? 1
          : 0;
      recordFault(record);
      expect(result.code, result.stderr).toBe(1);
      expect(error?.code).toBe('DISK_FULL');
      expect(after).toEqual(before);
      const leftovers = (await fs.readdir(path.dirname(target!.datadir))).filter((name) =>
        name.startsWith('data.'),
      );
      expect(leftovers).toEqual([]);
      return error!.message;
    }

    it('refuses before staging when the backup needs more than is free: DISK_FULL naming the staging directory and the bytes', async () => {
      const manifest = JSON.parse(await fs.readFile(path.join(backupDir, 'MANIFEST'), 'utf8'));
      const needed = manifest.files.reduce((sum: number, file: { rawSize: number }) => sum + file.rawSize, 0);
      expect(needed).toBeGreaterThan((await fs.statfs(small)).bavail * (await fs.statfs(small)).bsize);
      const message = await restoreOntoFullDisk('shop/0');
      expect(message).toContain(`the filesystem of ${target!.datadir}.stepback-restore is full`);
      expect(message).toContain(`(${needed} bytes)`);
      expect(message).toMatch(/\(\d+ bytes\) is free\)$/);
    });

    it('fails with DISK_FULL when the disk fills while staging, and removes what it staged', async () => {
      // A manifest that understates the size of its biggest file passes the free-space check; the
      // disk then fills while the files decompress, as when another writer fills it.
      const dir = path.join(storageRoot, 'shop/understated', backupName);
      await fs.cp(backupDir, dir, { recursive: true });
      const manifest = JSON.parse(await fs.readFile(path.join(dir, 'MANIFEST'), 'utf8'));
      const files = manifest.files as { rawSize: number }[];
      const total = files.reduce((sum, file) => sum + file.rawSize, 0);
      const biggest = files.reduce((a, b) => (b.rawSize > a.rawSize ? b : a));
      const { bavail, bsize } = await fs.statfs(small);
      const claimed = total - biggest.rawSize + 1024 * 1024;
      expect(claimed).toBeLessThan(bavail * bsize);
      expect(total).toBeGreaterThan(bavail * bsize);
      biggest.rawSize = 1024 * 1024;
      manifest.bytes.raw = claimed;
      manifest.dir = 'shop/understated';
      await fs.writeFile(path.join(dir, 'MANIFEST'), JSON.stringify(manifest));
      const message = await restoreOntoFullDisk('shop/understated');
      expect(message).toMatch(
        new RegExp(
          `^staging \\S+ \\(\\S+\\): the filesystem of ${target!.datadir}\\.stepback-restore is full \\(it needs .*\\(\\d+ bytes\\)`,
        ),
      );
    });
  });

  it('fails a snapshot with DISK_FULL naming the work directory when its OUTFILE fills it, and puts everything back', async () => {
    // secure_file_priv on an 8 MiB filesystem; the big table's OUTFILE is about 30 MiB.
    await mountTmpfs(source.filesDir, '8m');
    try {
      const before = {
        state: await stateOf(source),
        checksums: await tableChecksums(source, 'shop'),
        rows: (await rowCount(source, 'shop.big')) + (await rowCount(source, 'shop.small')),
      };
      const result = await runStepback([
        'snapshot',
        '--defaults-file',
        source.cnf,
        '--storage',
        `file://${storageRoot}`,
        '--dir',
        'shop/snap',
        '--database',
        'shop',
        '--json',
      ]);
      const after = {
        state: await stateOf(source),
        checksums: await tableChecksums(source, 'shop'),
        rows: (await rowCount(source, 'shop.big')) + (await rowCount(source, 'shop.small')),
      };
      const left = [
        ...(await filesUnder(source.filesDir)),
        ...(await filesUnder(path.join(storageRoot, 'shop/snap'))),
      ];
      const error = (result.json as { error?: { code: string; message: string } }).error;
      const rowsLost = Math.max(0, before.rows - after.rows);
      recordFault({
        fault: faults.snapshot,
        cases: 1,
        survived:
          result.code === 1 && error?.code === 'DISK_FULL' && rowsLost === 0 && left.length === 0 ? 1 : 0,
        rowsLost,
        filesLeft: left.length,
      });
      expect(result.code, result.stderr).toBe(1);
      expect(error?.code).toBe('DISK_FULL');
      expect(error?.message).toMatch(
        new RegExp(
          `^SELECT … INTO OUTFILE of table "big": the filesystem of ${source.filesDir} is full \\(it needs \\d+\\.\\d MiB \\(\\d+ bytes\\)`,
        ),
      );
      expect(after).toEqual(before);
      expect(left).toEqual([]);
    } finally {
      await unmount(source.filesDir);
    }
  });

  it('fails a multirestore with DISK_FULL naming its fetch directory, leaves no fetched file, and the next run loads every row', async () => {
    const snapshot = await runStepback([
      'snapshot',
      '--defaults-file',
      source.cnf,
      '--storage',
      `file://${storageRoot}`,
      '--dir',
      'shop/whole',
      '--database',
      'shop',
      '--json',
    ]);
    expect(snapshot.code, snapshot.stderr).toBe(0);
    destination = await createTestInstance({ name: 'faults-disk-destination' });
    const multirestore = () =>
      runStepback([
        'multirestore',
        '--defaults-file',
        destination!.cnf,
        '--storage',
        `file://${storageRoot}`,
        '--sources',
        'shop/whole',
        '--database',
        'shop',
        '--json',
      ]);
    // secure_file_priv on 8 MiB; the big table's data file is about 30 MiB once decompressed.
    await mountTmpfs(destination.filesDir, '8m');
    let result: Awaited<ReturnType<typeof runStepback>>;
    let left: string[];
    try {
      result = await multirestore();
      left = await filesUnder(destination.filesDir);
    } finally {
      await unmount(destination.filesDir);
    }
    const error = (result.json as { error?: { code: string; message: string } }).error;
    // The interrupted load resumes on a disk with room, and must then hold every row.
    const resumed = await multirestore();
    const expected = (await rowCount(source, 'shop.big')) + (await rowCount(source, 'shop.small'));
    const loaded =
      resumed.code === 0
        ? (await rowCount(destination, 'shop.big')) + (await rowCount(destination, 'shop.small'))
        : 0;
    const rowsLost = expected - loaded;
    recordFault({
      fault: faults.multirestore,
      cases: 1,
      survived:
        result.code === 1 && error?.code === 'DISK_FULL' && rowsLost === 0 && left.length === 0 ? 1 : 0,
      rowsLost,
      filesLeft: left.length,
    });
    expect(result.code, result.stderr).toBe(1);
    expect(error?.code).toBe('DISK_FULL');
    expect(error?.message).toMatch(
      new RegExp(
        `^fetching shop/whole@\\S+/\\S+ \\(table "big"\\): the filesystem of ${destination.filesDir}/stepback-multirestore-\\d+ is full \\(it needs \\d+\\.\\d MiB \\(\\d+ bytes\\)`,
      ),
    );
    expect(left).toEqual([]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(await tableChecksums(destination, 'shop')).toEqual(await tableChecksums(source, 'shop'));
  });
});
