import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readManifest } from '../../core/backups.ts';
import { readDrillRecord, serializeDrillRecord } from '../../core/drills.ts';
import type { OnlineManifest } from '../../core/manifest.ts';
import { FileBackupStorage } from '../../core/storage/file.ts';
import { runStepback } from '../support/cli.ts';
import { createTestInstance, type TestInstance } from '../support/mariadb.ts';
import { tempDir } from '../support/root.ts';

let source: TestInstance;
let drillInstance: TestInstance;
let storageRoot: string;
let storage: FileBackupStorage;
const dir = 'shop/0';
const good = '2026-12-02.000001.online';

beforeAll(async () => {
  [source, drillInstance] = await Promise.all([
    createTestInstance({ name: 'drill-online-source' }),
    createTestInstance({ name: 'drill-online-instance' }),
  ]);
  await source.query('CREATE DATABASE shop');
  await source.query('CREATE TABLE shop.orders (id INT PRIMARY KEY, note VARCHAR(100)) ENGINE=InnoDB');
  await source.query('CREATE TABLE shop.ledger (id INT PRIMARY KEY, amount DECIMAL(10,2)) ENGINE=Aria');
  await source.query("INSERT INTO shop.orders SELECT seq, CONCAT('order ', seq) FROM shop.seq_1_to_300");
  await source.query('INSERT INTO shop.ledger SELECT seq, seq * 1.25 FROM shop.seq_1_to_50');
  storageRoot = await tempDir('drill-online-storage');
  storage = new FileBackupStorage(storageRoot);
  await backup(good);
});

afterAll(async () => {
  await Promise.all([source?.dispose(), drillInstance?.dispose()]);
});

async function backup(name: string) {
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
    '--engine',
    'online',
    '--part-size',
    '1MiB',
    '--json',
  ]);
  expect(run.code, run.stderr).toBe(0);
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

async function expectDrillInstanceAsFound() {
  expect(await drillInstance.isRunning()).toBe(true);
  const databases = await drillInstance.query<{ Database: string }[]>('SHOW DATABASES');
  expect(databases.map((d) => d.Database)).not.toContain('shop');
  await expect(fs.stat(`${drillInstance.datadir}.stepback-restore`)).rejects.toThrow();
}

describe('stepback drill of an online backup', () => {
  it('restores and prepares it, and records the evidence of the prepared copy in DRILL.json', async () => {
    const manifestPath = path.join(storageRoot, dir, good, 'MANIFEST');
    const manifestBefore = await fs.readFile(manifestPath);
    const run = await drill(good);
    expect(run.code, run.stderr).toBe(0);
    expect(run.json).toMatchObject({
      outcome: 'passed',
      evidence: false,
      evidenceRecorded: 2,
      tablesChecked: 0,
      differences: [],
      problems: [],
    });
    expect(await fs.readFile(manifestPath)).toEqual(manifestBefore);
    const record = await readDrillRecord(storage.openBackup(dir, good));
    expect(record?.tablesCheckedByServer).toEqual(['shop.ledger', 'shop.orders']);
    const tables = record?.drillEvidence?.tables.map((t) => [`${t.database}.${t.table}`, t.rows]);
    expect(tables).toEqual([
      ['shop.ledger', 50],
      ['shop.orders', 300],
    ]);
    // The prepared copy holds what the source held: the same checksums as a physical backup's evidence.
    const physical = await runStepback([
      'backup',
      '--defaults-file',
      source.cnf,
      '--storage',
      `file://${storageRoot}`,
      '--dir',
      'shop/physical',
      '--name',
      '2026-12-02.000002.physical',
      '--json',
    ]);
    expect(physical.code, physical.stderr).toBe(0);
    const cold = await readManifest(storage.openBackup('shop/physical', '2026-12-02.000002.physical'));
    expect(record?.drillEvidence?.tables).toEqual(cold.evidence?.tables);
    await expectDrillInstanceAsFound();
  });

  it('compares a later drill with the recorded evidence and carries it forward', async () => {
    const before = await readDrillRecord(storage.openBackup(dir, good));
    const run = await drill(good);
    expect(run.code, run.stderr).toBe(0);
    expect(run.json).toMatchObject({ outcome: 'passed', tablesChecked: 2, differences: [] });
    expect(run.json).not.toHaveProperty('evidenceRecorded');
    const after = await readDrillRecord(storage.openBackup(dir, good));
    expect(after?.drillEvidence).toEqual(before?.drillEvidence);
    await expectDrillInstanceAsFound();
  });

  it('fails when the prepared copy no longer matches the recorded evidence, naming the table', async () => {
    const handle = storage.openBackup(dir, good);
    const record = await readDrillRecord(handle);
    if (!record?.drillEvidence) throw new Error('the first drill recorded no evidence');
    // The evidence says orders held other rows: what a backup changed between two drills looks like.
    const tables = record.drillEvidence.tables.map((t) =>
      t.table === 'orders' ? { ...t, checksum: String(BigInt(t.checksum) + 1n) } : t,
    );
    const tampered = { ...record, drillEvidence: { ...record.drillEvidence, tables } };
    await fs.writeFile(path.join(storageRoot, dir, good, 'DRILL.json'), serializeDrillRecord(tampered));
    const run = await drill(good);
    expect(run.code).toBe(5);
    expect(run.json).toMatchObject({
      outcome: 'failed',
      differences: [
        expect.objectContaining({
          database: 'shop',
          table: 'orders',
          problem: expect.stringContaining('same row count, different rows'),
        }),
      ],
    });
    // The recorded evidence stays what the first drill took: a failing drill never replaces it.
    expect((await readDrillRecord(handle))?.drillEvidence).toEqual(tampered.drillEvidence);
    await expectDrillInstanceAsFound();
  });

  it('fails a backup with a flipped byte in one part, naming the part, and records no evidence', async () => {
    const name = '2026-12-02.000003.flipped';
    await backup(name);
    const manifest = (await readManifest(storage.openBackup(dir, name))) as OnlineManifest;
    const part = manifest.files[0]!;
    const where = path.join(storageRoot, dir, name, part.name);
    const bytes = await fs.readFile(where);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
    await fs.writeFile(where, bytes);
    const run = await drill(name);
    expect(run.code).toBe(5);
    expect(run.json).toMatchObject({
      outcome: 'failed',
      differences: [expect.objectContaining({ file: part.name })],
    });
    const record = await readDrillRecord(storage.openBackup(dir, name));
    expect(record).toMatchObject({ outcome: 'failed' });
    expect(record?.drillEvidence).toBeUndefined();
    await expectDrillInstanceAsFound();
  });
});
