import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDrillRecord } from '../../core/drills.ts';
import { FileBackupStorage } from '../../core/storage/file.ts';
import type { PrivateInstance } from '../../local/private-instance.ts';
import { runStepback } from '../support/cli.ts';
import { createMysqlInstance, mysqldWrapper } from '../support/mysql.ts';
import { tempDir } from '../support/root.ts';

let source: PrivateInstance;
let drillInstance: PrivateInstance;
let storageRoot: string;
const dir = 'shop/0';
const name = '2026-12-02.000001.clone';

beforeAll(async () => {
  [source, drillInstance] = await Promise.all([
    createMysqlInstance({ name: 'drill-clone-source' }),
    createMysqlInstance({ name: 'drill-clone-instance' }),
  ]);
  await source.query('CREATE DATABASE shop');
  await source.query('CREATE TABLE shop.orders (id INT PRIMARY KEY, note VARCHAR(100)) ENGINE=InnoDB');
  await source.query(
    "INSERT INTO shop.orders WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 500) SELECT n, CONCAT('order ', n) FROM seq",
  );
  storageRoot = await tempDir('drill-clone-storage');
}, 60_000);

afterAll(async () => {
  await Promise.all([source?.dispose(), drillInstance?.dispose()]);
});

const storageArgs = () => ['--mysqld', mysqldWrapper, '--storage', `file://${storageRoot}`, '--dir', dir];

describe('stepback drill of an online backup of MySQL (the clone plugin; needs .stepback-mysql/)', () => {
  it('restores the clone, records its evidence on the first drill and compares with it on the next', async () => {
    const backup = await runStepback([
      'backup',
      '--defaults-file',
      source.cnf,
      ...storageArgs(),
      '--name',
      name,
      '--engine',
      'online',
      '--json',
    ]);
    expect(backup.code, backup.stderr).toBe(0);
    const drill = () =>
      runStepback([
        'drill',
        '--defaults-file',
        drillInstance.cnf,
        ...storageArgs(),
        '--backup',
        name,
        '--json',
      ]);

    const first = await drill();
    expect(first.code, first.stderr).toBe(0);
    expect(first.json).toMatchObject({ outcome: 'passed', evidenceRecorded: 1, tablesChecked: 0 });
    const record = await readDrillRecord(new FileBackupStorage(storageRoot).openBackup(dir, name));
    expect(record?.drillEvidence?.tables).toEqual([
      expect.objectContaining({ database: 'shop', table: 'orders', rows: 500 }),
    ]);

    const second = await drill();
    expect(second.code, second.stderr).toBe(0);
    expect(second.json).toMatchObject({ outcome: 'passed', tablesChecked: 1, differences: [] });
    const databases = await drillInstance.query<{ Database: string }[]>('SHOW DATABASES');
    expect(databases.map((d) => d.Database)).not.toContain('shop');
  });
});
