import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseBackup } from '../../core/backups.ts';
import { NoBackupError } from '../../core/errors.ts';
import { createLogger, type LogRecord } from '../../core/log.ts';
import { FileBackupStorage } from '../../core/storage/file.ts';
import { legacySnapshotDir, snapshotDir } from '../../core/storage/layout.ts';
import type { FunctionSettings } from '../../functions/environment.ts';
import { functionDefinitions } from '../../functions/index.ts';
import { invokeFunction } from '../../functions/runtime.ts';
import { runStepback } from '../support/cli.ts';
import { physicalManifest } from '../support/manifests.ts';
import { createTestInstance, type TestInstance } from '../support/mariadb.ts';
import { tempDir } from '../support/root.ts';

/**
 * Snapshots live in a namespace of their own (`snapshots/<keyspace>/<source>/<range>/<name>`): a
 * shard's backup listing, prune and restore never see them, and storage written by older releases
 * (ranges inside the shard's directory) still loads.
 */

let source: TestInstance;
let storageRoot: string;
let storageUrl: string;
let snapshotName: string;
/** Rows of commerce.orders in each range of the split. */
const rowsIn = { '-80': 0, '80-': 0 };

beforeAll(async () => {
  source = await createTestInstance({ name: 'snapshot-layout' });
  storageRoot = await tempDir('snapshot-layout');
  storageUrl = `file://${storageRoot}`;
  await source.query('CREATE DATABASE commerce');
  await source.query('CREATE TABLE commerce.orders (id INT PRIMARY KEY, ksid BIGINT UNSIGNED NOT NULL)');
  const rows = Array.from({ length: 200 }, (_, i) => [
    i + 1,
    (BigInt(i) * 0x0147_ae14_7ae1_47aen).toString(),
  ]);
  await source.query('INSERT INTO commerce.orders VALUES ?', [rows]);
  for (const [, ksid] of rows) rowsIn[BigInt(ksid!) < 0x8000_0000_0000_0000n ? '-80' : '80-']++;
  const run = await runStepback([
    'snapshot',
    '--defaults-file',
    source.cnf,
    '--storage',
    storageUrl,
    '--dir',
    'commerce/0',
    '--database',
    'commerce',
    '--key-column',
    'ksid',
    '--key-type',
    'uint64',
    '--key-ranges',
    '-80,80-',
    '--json',
  ]);
  expect(run.code, run.stderr).toBe(0);
  const result = run.json as { snapshots: { dir: string; name: string }[] };
  expect(result.snapshots.map((s) => s.dir)).toEqual(['commerce/0/-80', 'commerce/0/80-']);
  snapshotName = result.snapshots[0]!.name;
});

afterAll(async () => {
  await source?.dispose();
});

function stepback(...args: string[]) {
  return runStepback([...args, '--storage', storageUrl]);
}

/** Moves a snapshot from the namespace to where older releases wrote it. */
async function moveToLegacyLayout(address: string): Promise<void> {
  const legacy = path.join(storageRoot, legacySnapshotDir(address));
  await fs.mkdir(legacy, { recursive: true });
  await fs.rename(
    path.join(storageRoot, snapshotDir(address), snapshotName),
    path.join(legacy, snapshotName),
  );
}

async function loadedRows(database: string): Promise<number> {
  const [row] = await source.query<{ n: number }[]>(`SELECT COUNT(*) AS n FROM \`${database}\`.orders`);
  return Number(row!.n);
}

describe('the snapshot namespace', () => {
  it('stores each range under snapshots/<keyspace>/<source>/<range>, nothing in the shard directory', async () => {
    for (const range of ['-80', '80-']) {
      await expect(
        fs.stat(path.join(storageRoot, 'snapshots/commerce/0', range, snapshotName, 'MANIFEST')),
      ).resolves.toBeTruthy();
    }
    await expect(fs.stat(path.join(storageRoot, 'commerce'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('keeps snapshots out of backups list, and shows them with --snapshots', async () => {
    const plain = await stepback('backups', 'list', '--dir', 'commerce/0');
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toContain('no backups in commerce/0');
    expect(plain.stdout).not.toContain('INCOMPLETE');

    const listed = await stepback('backups', 'list', '--dir', 'commerce/0', '--snapshots', '--json');
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.json).toEqual([
      expect.objectContaining({
        dir: 'commerce/0/-80',
        name: snapshotName,
        complete: true,
        rows: rowsIn['-80'],
        legacy: false,
      }),
      expect.objectContaining({
        dir: 'commerce/0/80-',
        name: snapshotName,
        complete: true,
        rows: rowsIn['80-'],
        legacy: false,
      }),
    ]);
    const human = await stepback('backups', 'list', '--dir', 'commerce/0', '--snapshots');
    expect(human.stdout).toContain(`commerce/0/-80@${snapshotName}`);
    expect(human.stdout).toContain('2 snapshot(s) of commerce/0');
  });

  it('prunes a shard without touching its snapshots', async () => {
    const prune = await stepback(
      'backups',
      'prune',
      '--dir',
      'commerce/0',
      '--keep-count',
      '1',
      '--keep-days',
      '0',
    );
    expect(prune.code, prune.stderr).toBe(0);
    expect(prune.stdout).toContain('0 removed, 0 kept');
    const listed = await stepback('backups', 'list', '--dir', 'commerce/0', '--snapshots', '--json');
    expect(listed.json).toHaveLength(2);
  });

  it('validates snapshots by address, as the Reshard machine passes them', async () => {
    const settings = { storageUrl } as FunctionSettings;
    const context = { settings, logger: createLogger(() => {}), now: () => new Date() };
    const validated = await invokeFunction(
      functionDefinitions['validate-manifest']!,
      {
        snapshots: [
          { dir: 'commerce/0/-80', name: snapshotName },
          { dir: 'commerce/0/80-', name: snapshotName },
        ],
      },
      context,
    );
    expect(validated).toMatchObject({
      backups: [
        { dir: 'commerce/0/-80', name: snapshotName },
        { dir: 'commerce/0/80-', name: snapshotName },
      ],
    });
  });

  it('loads, lists and skips snapshots stored in the older layout (ranges inside the shard directory)', async () => {
    await moveToLegacyLayout('commerce/0/-80');
    await moveToLegacyLayout('commerce/0/80-');

    const plain = await stepback('backups', 'list', '--dir', 'commerce/0', '--json');
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.json).toEqual([]);

    // A restore of the shard picks among its backups: the range directories are not among them.
    const warnings: LogRecord[] = [];
    const logger = createLogger((record) => warnings.push(record), 'warn');
    const storage = new FileBackupStorage(storageRoot);
    const error = await chooseBackup(storage, 'commerce/0', {}, logger).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NoBackupError);
    expect(warnings).toEqual([]);

    const listed = await stepback('backups', 'list', '--dir', 'commerce/0', '--snapshots', '--json');
    expect(listed.json).toEqual([
      expect.objectContaining({ dir: 'commerce/0/-80', legacy: true, complete: true }),
      expect.objectContaining({ dir: 'commerce/0/80-', legacy: true, complete: true }),
    ]);

    const named = await stepback(
      'multirestore',
      '--defaults-file',
      source.cnf,
      '--sources',
      `commerce/0/80-@${snapshotName}`,
      '--database',
      'legacy_80',
      '--json',
    );
    expect(named.code, named.stderr).toBe(0);
    expect(named.json).toMatchObject({ sources: [{ dir: 'commerce/0/80-', name: snapshotName }] });
    expect(await loadedRows('legacy_80')).toBe(rowsIn['80-']);

    const newest = await stepback(
      'multirestore',
      '--defaults-file',
      source.cnf,
      '--sources',
      'commerce/0/-80',
      '--database',
      'legacy_low',
      '--json',
    );
    expect(newest.code, newest.stderr).toBe(0);
    expect(await loadedRows('legacy_low')).toBe(rowsIn['-80']);
  });

  it("finds a full-range snapshot that an older release left among the shard's backups, and restores never choose it", async () => {
    const run = await stepback(
      'snapshot',
      '--defaults-file',
      source.cnf,
      '--dir',
      'commerce/0',
      '--database',
      'commerce',
      '--json',
    );
    expect(run.code, run.stderr).toBe(0);
    const { snapshots } = run.json as { snapshots: { dir: string; name: string }[] };
    expect(snapshots).toMatchObject([{ dir: 'commerce/0', keyRange: '-' }]);
    const name = snapshots[0]!.name;
    await fs.stat(path.join(storageRoot, 'snapshots/commerce/0/-', name, 'MANIFEST'));
    await fs.mkdir(path.join(storageRoot, 'commerce/0'), { recursive: true });
    await fs.rename(
      path.join(storageRoot, 'snapshots/commerce/0/-', name),
      path.join(storageRoot, 'commerce/0', name),
    );

    const listed = await stepback('backups', 'list', '--dir', 'commerce/0', '--snapshots', '--json');
    expect(listed.json).toContainEqual(
      expect.objectContaining({ dir: 'commerce/0', keyRange: '-', name, legacy: true }),
    );

    const settings = { storageUrl } as FunctionSettings;
    const context = { settings, logger: createLogger(() => {}), now: () => new Date() };
    await expect(
      invokeFunction(functionDefinitions['choose-backup']!, { dir: 'commerce/0' }, context),
    ).rejects.toMatchObject({ name: 'NO_BACKUP' });

    // Prune keeps the newest physical backup: the newer snapshot is not a backup it counts.
    const older = new FileBackupStorage(storageRoot);
    const physical = await older.startBackup('commerce/0', '2020-01-01.000000.db1');
    const stored = await physical.writeFile('0000', () => Readable.from([Buffer.from('data')]));
    await physical.endBackup(
      physicalManifest({
        name: physical.name,
        dir: 'commerce/0',
        keyspace: 'commerce',
        shard: '0',
        startedAt: '2020-01-01T00:00:00.000Z',
        finishedAt: '2020-01-01T00:01:00.000Z',
        files: [
          {
            name: '0000',
            base: 'data',
            path: 'ibdata1',
            rawSize: 4,
            storedSize: stored.size,
            sha256: stored.sha256,
          },
        ],
        bytes: { raw: 4, stored: stored.size },
      }),
    );
    const prune = await stepback(
      'backups',
      'prune',
      '--dir',
      'commerce/0',
      '--keep-count',
      '1',
      '--keep-days',
      '0',
      '--json',
    );
    expect(prune.code, prune.stderr).toBe(0);
    expect(prune.json).toMatchObject({ remove: [], keep: ['2020-01-01.000000.db1'] });

    const load = await stepback(
      'multirestore',
      '--defaults-file',
      source.cnf,
      '--sources',
      'commerce/0',
      '--database',
      'legacy_full',
      '--json',
    );
    expect(load.code, load.stderr).toBe(0);
    expect(await loadedRows('legacy_full')).toBe(rowsIn['-80'] + rowsIn['80-']);
  });

  it('refuses a backup directory that names a keyspace without its shard', async () => {
    const run = await stepback('backups', 'list', '--dir', 'commerce');
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--dir: names keyspace "commerce" but no shard');
  });
});
