import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readManifest } from '../../core/backups.ts';
import { readDrillRecord } from '../../core/drills.ts';
import type { PhysicalManifest } from '../../core/manifest.ts';
import { FileBackupStorage } from '../../core/storage/file.ts';
import { openTopology } from '../../core/topology/index.ts';
import { runStepback } from '../support/cli.ts';
import { createTestInstance, type TestInstance } from '../support/mariadb.ts';
import { tempDir } from '../support/root.ts';

let source: TestInstance;
let drillInstance: TestInstance;
let storageRoot: string;
let storage: FileBackupStorage;
const dir = 'shop/0';

beforeAll(async () => {
  [source, drillInstance] = await Promise.all([
    createTestInstance({ name: 'drill-source' }),
    createTestInstance({ name: 'drill-instance' }),
  ]);
  await source.query('CREATE DATABASE shop');
  await source.query('CREATE TABLE shop.orders (id INT PRIMARY KEY, note VARCHAR(100)) ENGINE=InnoDB');
  await source.query('CREATE TABLE shop.ledger (id INT PRIMARY KEY, amount DECIMAL(10,2)) ENGINE=MyISAM');
  await source.query('CREATE TABLE shop.empty (id INT PRIMARY KEY) ENGINE=InnoDB');
  await source.query("INSERT INTO shop.orders SELECT seq, CONCAT('order ', seq) FROM shop.seq_1_to_300");
  await source.query('INSERT INTO shop.ledger SELECT seq, seq * 1.25 FROM shop.seq_1_to_50');
  storageRoot = await tempDir('drill-storage');
  storage = new FileBackupStorage(storageRoot);
});

afterAll(async () => {
  await Promise.all([source?.dispose(), drillInstance?.dispose()]);
});

async function backup(name: string, extra: string[] = []) {
  const run = await runStepback([
    'backup',
    '--defaults-file',
    source.cnf,
    '--storage',
    `file://${storageRoot}`,
    '--dir',
    dir,
    '--name',
    name,
    '--json',
    ...extra,
  ]);
  expect(run.code, run.stderr).toBe(0);
  return run.json as { evidence?: { tables: number; seconds: number } };
}

function drill(name: string) {
  return runStepback([
    'drill',
    '--defaults-file',
    drillInstance.cnf,
    '--storage',
    `file://${storageRoot}`,
    '--dir',
    dir,
    '--backup',
    name,
    '--json',
  ]);
}

async function manifestOf(name: string): Promise<PhysicalManifest> {
  return (await readManifest(storage.openBackup(dir, name))) as PhysicalManifest;
}

/** The stored file of a table's .ibd or .MYD in a backup. */
async function storedFileOf(name: string, tablePath: string) {
  const manifest = await manifestOf(name);
  const file = manifest.files.find((f) => f.base === 'data' && f.path === tablePath);
  if (!file) throw new Error(`${tablePath} is not in ${name}`);
  return { manifest, file, where: path.join(storageRoot, dir, name, file.name) };
}

describe('evidence at backup time', () => {
  it("records every table's rows and checksum, and reports what it cost", async () => {
    const result = await backup('2026-12-01.000001.evidence');
    const manifest = await manifestOf('2026-12-01.000001.evidence');
    expect(result.evidence?.tables).toBe(3);
    expect(manifest.evidence?.method).toBe('row-sha256-sum-2');
    const tables = Object.fromEntries(manifest.evidence!.tables.map((t) => [`${t.database}.${t.table}`, t]));
    expect(tables['shop.orders']?.rows).toBe(300);
    expect(tables['shop.ledger']?.rows).toBe(50);
    expect(tables['shop.empty']).toMatchObject({ rows: 0, checksum: '0' });
    expect(tables['shop.orders']?.checksum).toMatch(/^\d+$/);
  });

  it('records none with --no-evidence', async () => {
    const result = await backup('2026-12-01.000002.plain', ['--no-evidence']);
    expect(result.evidence).toBeUndefined();
    expect((await manifestOf('2026-12-01.000002.plain')).evidence).toBeUndefined();
  });
});

describe('stepback drill', () => {
  it('passes a good backup, writes DRILL.json without touching the MANIFEST, and leaves the drill instance as found', async () => {
    const name = '2026-12-01.000001.evidence';
    const manifestPath = path.join(storageRoot, dir, name, 'MANIFEST');
    const manifestBefore = await fs.readFile(manifestPath);
    const run = await drill(name);
    expect(run.code, run.stderr).toBe(0);
    expect(run.json).toMatchObject({ outcome: 'passed', tablesChecked: 3, differences: [], problems: [] });
    expect(await fs.readFile(manifestPath)).toEqual(manifestBefore);
    const record = await readDrillRecord(storage.openBackup(dir, name));
    expect(record).toMatchObject({ outcome: 'passed', backup: name, tablesChecked: 3, evidence: true });
    expect(record?.tablesCheckedByServer).toEqual(['shop.empty', 'shop.ledger', 'shop.orders']);
    // The restored copy is gone: the drill instance holds its own (empty) data again, and runs.
    expect(await drillInstance.isRunning()).toBe(true);
    const databases = await drillInstance.query<{ Database: string }[]>('SHOW DATABASES');
    expect(databases.map((d) => d.Database)).not.toContain('shop');
    await expect(fs.stat(`${drillInstance.datadir}.stepback-restore`)).rejects.toThrow();
  });

  it('fails a backup whose stored file of one table has a flipped byte, naming the table and the file', async () => {
    const name = '2026-12-01.000003.flipped';
    await backup(name);
    const { file, where } = await storedFileOf(name, 'shop/orders.ibd');
    const bytes = await fs.readFile(where);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
    await fs.writeFile(where, bytes);
    const run = await drill(name);
    expect(run.code).toBe(5);
    expect(run.json).toMatchObject({
      outcome: 'failed',
      differences: [{ database: 'shop', table: 'orders' }],
    });
    const record = await readDrillRecord(storage.openBackup(dir, name));
    expect(record?.outcome).toBe('failed');
    expect(record?.differences).toEqual([
      expect.objectContaining({ database: 'shop', table: 'orders', file: file.name }),
    ]);
    expect(await drillInstance.isRunning()).toBe(true);
  });

  it('fails a backup whose table data has a flipped byte inside an InnoDB page (the stored file intact), naming the table', async () => {
    const name = '2026-12-01.000006.pageflip';
    await backup(name, ['--compression', 'none']);
    const { manifest, file, where } = await storedFileOf(name, 'shop/orders.ibd');
    const bytes = await fs.readFile(where);
    // Page 3 is the root of the clustered index: a small table's rows are there.
    bytes[3 * 16384 + 400]! ^= 0x01;
    await fs.writeFile(where, bytes);
    const { HashingStream } = await import('../../core/stream/hash.ts');
    const hasher = new HashingStream();
    hasher.end(bytes);
    for await (const _ of hasher);
    Object.assign(manifest.files.find((f) => f.name === file.name)!, { sha256: hasher.digest() });
    await fs.writeFile(path.join(storageRoot, dir, name, 'MANIFEST'), JSON.stringify(manifest));
    const run = await drill(name);
    expect(run.code).toBe(5);
    const result = run.json as { outcome: string; differences: { database: string; table: string }[] };
    expect(result.outcome).toBe('failed');
    // CHECK TABLE and the checksum's read both name it; no other table is blamed.
    expect(result.differences.length).toBeGreaterThan(0);
    expect(new Set(result.differences.map((d) => `${d.database}.${d.table}`))).toEqual(
      new Set(['shop.orders']),
    );
  });

  it("fails a backup whose table file holds a row changed behind the backup's back, naming the table", async () => {
    const recorded = '2026-12-01.000004.recorded';
    const changed = '2026-12-01.000005.changed';
    await backup(recorded);
    await source.query('UPDATE shop.ledger SET amount = amount + 1 WHERE id = 7');
    await backup(changed);
    // The recorded backup's MyISAM data file is replaced by the next backup's: the files are intact
    // (their hashes match the manifest), but one row is not what the backup recorded.
    const target = await storedFileOf(recorded, 'shop/ledger.MYD');
    const other = await storedFileOf(changed, 'shop/ledger.MYD');
    await fs.copyFile(other.where, target.where);
    const manifestPath = path.join(storageRoot, dir, recorded, 'MANIFEST');
    const manifest = JSON.parse(await fs.readFile(manifestPath, 'utf8')) as PhysicalManifest;
    const entry = manifest.files.find((f) => f.name === target.file.name)!;
    Object.assign(entry, {
      sha256: other.file.sha256,
      storedSize: other.file.storedSize,
      rawSize: other.file.rawSize,
    });
    await fs.writeFile(manifestPath, JSON.stringify(manifest));

    const run = await drill(recorded);
    expect(run.code).toBe(5);
    const record = await readDrillRecord(storage.openBackup(dir, recorded));
    expect(record?.outcome).toBe('failed');
    expect(record?.differences).toEqual([
      expect.objectContaining({
        database: 'shop',
        table: 'ledger',
        problem: expect.stringContaining('same row count, different rows'),
      }),
    ]);
  });

  it('does not compare evidence recorded by the first checksum, which it cannot recompute, and says so', async () => {
    const name = '2026-12-01.000007.firstchecksum';
    await backup(name);
    const manifestPath = path.join(storageRoot, dir, name, 'MANIFEST');
    const manifest = JSON.parse(await fs.readFile(manifestPath, 'utf8')) as PhysicalManifest;
    // Checksums of the first row encoding: other numbers for the same rows.
    manifest.evidence = {
      ...manifest.evidence!,
      method: 'row-sha256-sum',
      tables: manifest.evidence!.tables.map((t) => ({ ...t, checksum: '1' })),
    };
    await fs.writeFile(manifestPath, JSON.stringify(manifest));
    const run = await drill(name);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain('computed by an older checksum (row-sha256-sum)');
    expect(run.json).toMatchObject({ outcome: 'passed', evidence: false, differences: [] });
  });

  it('killed while it inspects the restored copy, is undone by the next command: the drill instance gets its own files back', async () => {
    const name = '2026-12-01.000001.evidence';
    const args = ['drill', '--defaults-file', drillInstance.cnf, '--storage', `file://${storageRoot}`];
    const killed = await runStepback([...args, '--dir', dir, '--backup', name], {
      env: { STEPBACK_FAULT_PHASE: 'drill:inspecting' },
    });
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    expect(await fs.stat(`${drillInstance.datadir}.stepback.json`)).toBeTruthy();

    const again = await drill(name);
    expect(again.stderr).toContain('was interrupted; putting the instance back');
    expect(again.code, again.stderr).toBe(0);
    expect(again.json).toMatchObject({ outcome: 'passed' });
    expect(await drillInstance.isRunning()).toBe(true);
    const databases = await drillInstance.query<{ Database: string }[]>('SHOW DATABASES');
    expect(databases.map((d) => d.Database)).not.toContain('shop');
    const beside = (await fs.readdir(path.dirname(drillInstance.datadir))).filter((entry) =>
      entry.startsWith(`${path.basename(drillInstance.datadir)}.`),
    );
    expect(beside).toEqual([]);
  });

  it('refuses a host the topology lists as serving, changing nothing', async () => {
    const topoDir = await tempDir('drill-topo');
    const topology = await openTopology(`file://${topoDir}`);
    await topology.setShard({
      keyspace: 'shop',
      shard: '0',
      hosts: [{ id: 'db-shop-1', role: 'replica', healthy: true }],
    });
    const run = await runStepback([
      'drill',
      '--defaults-file',
      drillInstance.cnf,
      '--storage',
      `file://${storageRoot}`,
      '--dir',
      dir,
      '--backup',
      '2026-12-01.000001.evidence',
      '--topo',
      `file://${topoDir}`,
      '--host-id',
      'db-shop-1',
    ]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('host db-shop-1 serves shop/0 in the topology');
    await expect(fs.stat(`${drillInstance.datadir}.stepback.json`)).rejects.toThrow();
  });

  it('refuses a drill instance that holds user data, changing nothing', async () => {
    const run = await runStepback([
      'drill',
      '--defaults-file',
      source.cnf,
      '--storage',
      `file://${storageRoot}`,
      '--dir',
      dir,
      '--backup',
      '2026-12-01.000001.evidence',
    ]);
    expect(run.code).toBe(4);
    expect(run.stderr).toContain('holds user data');
  });
});

describe('evidence of a logical snapshot', () => {
  it("records each table's rows and checksum per range, equal to the physical backup's of the same data", async () => {
    const run = await runStepback([
      'snapshot',
      '--defaults-file',
      source.cnf,
      '--storage',
      `file://${storageRoot}`,
      '--dir',
      'shop/src',
      '--database',
      'shop',
      '--json',
    ]);
    expect(run.code, run.stderr).toBe(0);
    const result = run.json as { snapshots: { name: string }[]; evidenceSeconds?: number };
    expect(result.evidenceSeconds).toBeGreaterThanOrEqual(0);
    const snapshot = await readManifest(
      storage.openBackup('snapshots/shop/src/-', result.snapshots[0]!.name),
    );
    // The newest physical backup was taken after the last change: the same rows, the same numbers.
    const physical = await manifestOf('2026-12-01.000005.changed');
    const byTable = (tables: { table: string; rows: number; checksum: string }[] = []) =>
      Object.fromEntries(tables.map((t) => [t.table, [t.rows, t.checksum]]));
    expect(byTable(snapshot.evidence?.tables)).toEqual(byTable(physical.evidence?.tables));
    expect(byTable(snapshot.evidence?.tables).ledger?.[0]).toBe(50);
  });
});
