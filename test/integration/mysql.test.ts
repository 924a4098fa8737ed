import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readManifest } from '../../core/backups.ts';
import { FileBackupStorage } from '../../core/storage/file.ts';
import type { PrivateInstance } from '../../local/private-instance.ts';
import { runStepback } from '../support/cli.ts';
import { tableChecksums } from '../support/data.ts';
import { createMysqlInstance, gtidExecuted, mysqldWrapper } from '../support/mysql.ts';
import { tempDir } from '../support/root.ts';

let source: PrivateInstance;
let target: PrivateInstance;
let storageRoot: string;

beforeAll(async () => {
  [source, target] = await Promise.all([
    createMysqlInstance({ name: 'source', extraCnf: ['cte-max-recursion-depth=10000'] }),
    createMysqlInstance({ name: 'target' }),
  ]);
  storageRoot = await tempDir('mysql-storage');
  await source.query("CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'repl-secret'");
  await source.query("GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'");
  await source.query('CREATE DATABASE shop');
  await source.query(
    'CREATE TABLE shop.orders (id INT PRIMARY KEY, note VARCHAR(200), amount DECIMAL(12,2) NULL, placed DATETIME(6), created TIMESTAMP DEFAULT CURRENT_TIMESTAMP, doc JSON, total DECIMAL(14,2) AS (amount * 2) VIRTUAL) ENGINE=InnoDB',
  );
  await source.query(
    "INSERT INTO shop.orders (id, note, amount, placed, created, doc) WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 3000) SELECT n, CONCAT('order ', n, ' — ünïcödé 🚀'), IF(n % 7 = 0, NULL, n * 1.5), '2026-11-24 10:00:00.123456', '2026-11-30 08:00:00', JSON_OBJECT('n', n, 'tags', JSON_ARRAY('a', n % 3)) FROM seq",
  );
  await source.query('CREATE TABLE shop.legacy (id INT PRIMARY KEY, v BLOB) ENGINE=MyISAM');
  await source.query('INSERT INTO shop.legacy VALUES (1, 0x00ff00), (2, NULL)');
}, 60_000);

afterAll(async () => {
  await Promise.all([source?.dispose(), target?.dispose()]);
});

describe('backup, restore, snapshot and multirestore on a running MySQL 9.7 server (needs .stepback-mysql/, made by scripts/setup.js as root)', () => {
  it('copies a database through a snapshot and multirestore: JSON and DEFAULT CURRENT_TIMESTAMP columns included', async () => {
    const snapshot = await runStepback([
      'snapshot',
      '--defaults-file',
      source.cnf,
      '--mysqld',
      mysqldWrapper,
      '--storage',
      `file://${storageRoot}`,
      '--dir',
      'shop-logical/0',
      '--database',
      'shop',
      '--json',
    ]);
    expect(snapshot.code, snapshot.stderr).toBe(0);
    const load = await runStepback([
      'multirestore',
      '--defaults-file',
      target.cnf,
      '--mysqld',
      mysqldWrapper,
      '--storage',
      `file://${storageRoot}`,
      '--sources',
      'shop-logical/0',
      '--database',
      'shop',
      '--json',
    ]);
    expect(load.code, load.stderr).toBe(0);
    expect(await tableChecksums(target, 'shop')).toEqual(await tableChecksums(source, 'shop'));
    const [{ stamped }] = await target.query<[{ stamped: number }]>(
      "SELECT COUNT(*) AS stamped FROM shop.orders WHERE created = '2026-11-30 08:00:00' AND JSON_EXTRACT(doc, '$.n') = id",
    );
    expect(Number(stamped)).toBe(3000);
  }, 60_000);

  it('restores a backup into a fresh instance that holds the same tables and GTIDs, then replicates from the source', async () => {
    const backup = await runStepback([
      'backup',
      '--defaults-file',
      source.cnf,
      '--mysqld',
      mysqldWrapper,
      '--storage',
      `file://${storageRoot}`,
      '--dir',
      'shop/0',
      '--json',
    ]);
    expect(backup.stderr).not.toMatch(/INTERNAL/);
    expect(backup.code, backup.stderr).toBe(0);
    const name = String((backup.json as { name: string }).name);
    const manifest = await readManifest(new FileBackupStorage(storageRoot).openBackup('shop/0', name));
    const atBackup = await tableChecksums(source, 'shop');
    expect(manifest.position).toBe(await gtidExecuted(source));

    // Written after the backup: the restored instance catches up on them through replication.
    await source.query(
      "UPDATE shop.orders SET note = 'changed', doc = JSON_OBJECT('changed', TRUE) WHERE id % 100 = 0",
    );
    await source.query('DELETE FROM shop.orders WHERE id > 2950');
    await source.query('CREATE TABLE shop.added (id INT PRIMARY KEY) ENGINE=InnoDB');
    await source.query('INSERT INTO shop.added VALUES (1), (2), (3)');

    const restore = await runStepback(
      [
        'restore',
        '--defaults-file',
        target.cnf,
        '--mysqld',
        mysqldWrapper,
        '--storage',
        `file://${storageRoot}`,
        '--dir',
        'shop/0',
        '--backup',
        name,
        '--delete-before-restore',
        '--replicate-from',
        `127.0.0.1:${source.port}`,
        '--replication-user',
        'repl',
        '--replication-password-env',
        'REPLICATION_PASSWORD',
        '--json',
      ],
      { env: { REPLICATION_PASSWORD: 'repl-secret' } },
    );
    expect(restore.stderr).not.toMatch(/INTERNAL/);
    expect(restore.code, restore.stderr).toBe(0);

    expect(await target.isRunning()).toBe(true);
    const executed = await gtidExecuted(target);
    const [{ subset }] = await target.query<[{ subset: number }]>('SELECT GTID_SUBSET(?, ?) AS subset', [
      manifest.position,
      executed,
    ]);
    expect(Number(subset)).toBe(1);
    expect(executed).toBe(await gtidExecuted(source));
    expect(await tableChecksums(target, 'shop')).toEqual(await tableChecksums(source, 'shop'));
    expect(await tableChecksums(target, 'shop')).not.toEqual(atBackup);
    const [status] = await target.query<Record<string, string>[]>('SHOW REPLICA STATUS');
    expect([status?.Replica_IO_Running, status?.Replica_SQL_Running]).toEqual(['Yes', 'Yes']);
    const [{ created }] = await target.query<[{ created: number }]>(
      'SELECT COUNT(*) AS created FROM shop.orders WHERE created IS NOT NULL',
    );
    expect(Number(created)).toBe(2950);
  }, 60_000);
});
