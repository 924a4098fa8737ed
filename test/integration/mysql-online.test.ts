import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readManifest } from '../../core/backups.ts';
import type { OnlineManifest } from '../../core/manifest.ts';
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
    createMysqlInstance({ name: 'online-source', extraCnf: ['cte-max-recursion-depth=10000'] }),
    createMysqlInstance({ name: 'online-target' }),
  ]);
  storageRoot = await tempDir('mysql-online-storage');
  await source.query("CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'repl-secret'");
  await source.query("GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'");
  await source.query('CREATE DATABASE shop');
  await source.query(
    'CREATE TABLE shop.orders (id INT PRIMARY KEY, note VARCHAR(200), doc JSON, placed DATETIME(6)) ENGINE=InnoDB',
  );
  await source.query(
    "INSERT INTO shop.orders WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 3000) SELECT n, CONCAT('order ', n, ' — ünïcödé 🚀'), JSON_OBJECT('n', n), '2026-11-24 10:00:00.123456' FROM seq",
  );
}, 60_000);

afterAll(async () => {
  await Promise.all([source?.dispose(), target?.dispose()]);
});

describe('the online engine on MySQL 9.7: the clone plugin (needs .stepback-mysql/, made by scripts/setup.js as root)', () => {
  it('clones the running source into storage (a killed clone is cleaned up by the next command), and a restore holds its data and GTIDs, then replicates from it', async () => {
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
      '--engine',
      'online',
      '--part-size',
      '8MiB',
      '--json',
    ]);
    expect(backup.code, backup.stderr).toBe(0);
    const name = String((backup.json as { name: string }).name);
    const manifest = (await readManifest(
      new FileBackupStorage(storageRoot).openBackup('shop/0', name),
    )) as OnlineManifest;
    expect(manifest).toMatchObject({
      engine: 'online',
      flavor: 'mysql',
      format: 'tar',
      tool: { name: 'mysql-clone', version: expect.stringMatching(/^9\.7\./) },
    });
    expect(manifest.files.length).toBeGreaterThan(1);
    expect(manifest.position).toBe(await gtidExecuted(source));
    // The plugin was installed for the backup only, and nothing is left beside the datadir.
    expect(
      await source.query("SELECT PLUGIN_NAME FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'clone'"),
    ).toEqual([]);
    expect(
      (await fs.readdir(path.dirname(source.datadir))).filter((entry) => entry.includes('stepback')),
    ).toEqual([]);
    const atBackup = await tableChecksums(source, 'shop');

    // Killed while the throwaway server runs on the copy: the next command stops it and removes the copy.
    const killed = await runStepback(
      [
        'backup',
        '--defaults-file',
        source.cnf,
        '--mysqld',
        mysqldWrapper,
        '--storage',
        `file://${storageRoot}`,
        '--dir',
        'shop/killed',
        '--engine',
        'online',
      ],
      { env: { STEPBACK_FAULT_PHASE: 'backup:cloned' } },
    );
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    expect(await fs.stat(`${source.datadir}.stepback-clone`).catch(() => undefined)).toBeDefined();
    const next = await runStepback([
      'backup',
      '--defaults-file',
      source.cnf,
      '--mysqld',
      mysqldWrapper,
      '--storage',
      `file://${storageRoot}`,
      '--dir',
      'shop/killed',
      '--engine',
      'online',
    ]);
    expect(next.code, next.stderr).toBe(0);
    expect(next.stderr).toContain('stopped the mysqld started on the copy of the interrupted online backup');
    expect(
      (await fs.readdir(path.dirname(source.datadir))).filter((entry) => entry.includes('stepback')),
    ).toEqual([]);

    await source.query("UPDATE shop.orders SET note = 'changed' WHERE id % 100 = 0");
    await source.query('CREATE TABLE shop.added (id INT PRIMARY KEY) ENGINE=InnoDB');
    await source.query('INSERT INTO shop.added VALUES (1), (2)');

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
        '--delete-before-restore',
        '--json',
      ],
      {},
    );
    expect(restore.code, restore.stderr).toBe(0);
    expect(restore.json).toMatchObject({ engine: 'online', backup: name, position: manifest.position });
    expect(await gtidExecuted(target)).toBe(manifest.position);
    expect(await tableChecksums(target, 'shop')).toEqual(atBackup);

    const again = await runStepback(
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
    expect(again.code, again.stderr).toBe(0);
    expect(await gtidExecuted(target)).toBe(await gtidExecuted(source));
    expect(await tableChecksums(target, 'shop')).toEqual(await tableChecksums(source, 'shop'));
  }, 120_000);
});
