import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readManifest } from '../../core/backups.ts';
import type { FileBase, PhysicalManifest } from '../../core/manifest.ts';
import { FileBackupStorage } from '../../core/storage/file.ts';
import { runStepback } from '../support/cli.ts';
import { stateOf, tableChecksums } from '../support/data.ts';
import { physicalManifest } from '../support/manifests.ts';
import {
  createTestInstance,
  startReplication,
  type TestInstance,
  waitForReplica,
} from '../support/mariadb.ts';
import { tempDir } from '../support/root.ts';
import { startS3, type TestS3 } from '../support/s3.ts';

let primary: TestInstance;
let replica: TestInstance;
let target: TestInstance;
let s3: TestS3;
let storageRoot: string;
let storage: FileBackupStorage;
/** The replica's backup in file storage, taken before the primary wrote more. */
let backupName: string;

beforeAll(async () => {
  [primary, replica, target, s3] = await Promise.all([
    createTestInstance({ name: 'restore-primary' }),
    createTestInstance({ name: 'restore-replica' }),
    createTestInstance({ name: 'restore-target' }),
    startS3(),
  ]);
  await startReplication(replica, primary);
  await primary.query('CREATE DATABASE shop');
  await primary.query(
    'CREATE TABLE shop.orders (id INT PRIMARY KEY, note VARCHAR(200), amount DECIMAL(12,2) NULL, placed DATETIME(6)) ENGINE=InnoDB',
  );
  await primary.query(
    "INSERT INTO shop.orders SELECT seq, CONCAT('order ', seq, ' — ünïcödé 🚀'), IF(seq % 7 = 0, NULL, seq * 1.5), '2026-11-24 10:00:00.123456' FROM shop.seq_1_to_5000",
  );
  await primary.query('CREATE TABLE shop.audit (id INT PRIMARY KEY, what TEXT) ENGINE=Aria');
  await primary.query("INSERT INTO shop.audit SELECT seq, REPEAT('x', seq % 100) FROM shop.seq_1_to_500");
  await primary.query('CREATE TABLE shop.legacy (id INT PRIMARY KEY, v BLOB) ENGINE=MyISAM');
  await primary.query('INSERT INTO shop.legacy VALUES (1, 0x00ff00), (2, NULL)');
  await primary.query('CREATE VIEW shop.recent AS SELECT id, note FROM shop.orders WHERE id > 4990');
  await waitForReplica(replica, primary);
  storageRoot = await tempDir('restore-storage');
  storage = new FileBackupStorage(storageRoot);

  const run = await backup(replica, 'shop/0');
  if (run.code !== 0) throw new Error(`backup failed: ${run.stderr}`);
  backupName = String((run.json as { name: string }).name);

  // What the restored instance must catch up on through replication: rows, updates, deletes, DDL.
  await primary.query("INSERT INTO shop.orders SELECT seq, 'later', 1, NOW(6) FROM shop.seq_5001_to_5100");
  await primary.query("UPDATE shop.orders SET note = 'changed' WHERE id % 100 = 0");
  await primary.query('DELETE FROM shop.audit WHERE id > 450');
  await primary.query('CREATE TABLE shop.added (id INT PRIMARY KEY) ENGINE=InnoDB');
  await primary.query('INSERT INTO shop.added VALUES (1), (2), (3)');
  await waitForReplica(replica, primary);
});

afterAll(async () => {
  await Promise.all([primary?.dispose(), replica?.dispose(), target?.dispose(), s3?.stop()]);
});

function backup(instance: TestInstance, dir: string, extra: string[] = [], env?: Record<string, string>) {
  return runStepback(
    [
      'backup',
      '--defaults-file',
      instance.cnf,
      '--storage',
      `file://${storageRoot}`,
      '--dir',
      dir,
      '--json',
      ...extra,
    ],
    env ? { env } : {},
  );
}

function restore(dir: string, extra: string[] = [], options: Parameters<typeof runStepback>[1] = {}) {
  return runStepback(
    [
      'restore',
      '--defaults-file',
      target.cnf,
      '--storage',
      `file://${storageRoot}`,
      '--dir',
      dir,
      '--json',
      ...extra,
    ],
    options,
  );
}

const replicateFromPrimary = () => [
  '--replicate-from',
  `127.0.0.1:${primary.port}`,
  '--replication-user',
  'root',
  '--replication-password-env',
  'REPLICATION_PASSWORD',
];

/** Nothing of a restore is left beside the datadir, and no operation marker. */
async function leftovers(instance: TestInstance): Promise<string[]> {
  const parent = path.dirname(instance.datadir);
  return (await fs.readdir(parent))
    .filter((name) => name.startsWith(`${path.basename(instance.datadir)}.`))
    .sort();
}

/** A backup written straight to storage, with uncompressed files of the given content. */
async function craftedBackup(
  dir: string,
  name: string,
  files: { base: FileBase; path: string; content: Buffer }[],
): Promise<PhysicalManifest> {
  const handle = await storage.startBackup(dir, name);
  const entries = [];
  for (const [index, file] of files.entries()) {
    const stored = await handle.writeFile(`000${index}`, () => Readable.from([file.content]));
    entries.push({
      name: stored.name,
      base: file.base,
      path: file.path,
      rawSize: file.content.length,
      storedSize: stored.size,
      sha256: stored.sha256,
    });
  }
  const total = entries.reduce((sum, e) => sum + e.rawSize, 0);
  const manifest = physicalManifest({
    name,
    dir,
    compression: 'none',
    position: '',
    bytes: { raw: total, stored: total },
    files: entries,
  });
  await handle.endBackup(manifest);
  return manifest;
}

describe('stepback restore', () => {
  it('restores into a fresh instance that replicates from the primary, catches up, and holds the same data', async () => {
    const run = await restore(
      'shop/0',
      [...replicateFromPrimary(), '--local-metadata', 'role=replica', 'cell=eu 1'],
      {
        env: { REPLICATION_PASSWORD: '' },
      },
    );
    expect(run.code, run.stderr).toBe(0);
    // The backup comes from this very server release: its system tables need no upgrade.
    expect(run.stderr).toContain('the backup comes from this server release: no upgrade needed');
    expect(run.stderr).not.toContain('running the upgrade tool');
    const { position } = await readManifest(storage.openBackup('shop/0', backupName));
    const [{ pos: primaryPosition }] = await primary.query<[{ pos: string }]>(
      'SELECT @@gtid_binlog_pos AS pos',
    );
    expect(run.json).toMatchObject({
      backup: backupName,
      position,
      skipped: [],
      replacedDatabases: [],
      replication: { source: `127.0.0.1:${primary.port}`, caughtUpTo: primaryPosition },
    });
    expect(await tableChecksums(target, 'shop')).toEqual(await tableChecksums(primary, 'shop'));
    expect(Object.keys(await tableChecksums(target, 'shop'))).toEqual(['added', 'audit', 'legacy', 'orders']);
    expect(await target.query('SELECT COUNT(*) AS n FROM shop.recent')).toEqual([{ n: '110' }]);
    expect(await target.query('SELECT name, value FROM _stepback.local_metadata ORDER BY name')).toEqual([
      { name: 'cell', value: 'eu 1' },
      { name: 'role', value: 'replica' },
    ]);
    expect(await target.query('SELECT @@server_id AS id')).toEqual([{ id: String(target.serverId) }]);
    expect(await stateOf(target)).toEqual({
      running: true,
      readOnly: false,
      replication: { configured: true, running: true },
    });
    // Replication keeps going: a later write arrives too.
    await primary.query('INSERT INTO shop.added VALUES (4)');
    await waitForReplica(target, primary);
    expect(await target.query('SELECT COUNT(*) AS n FROM shop.added')).toEqual([{ n: '4' }]);
    expect(await leftovers(target)).toEqual([]);
  });

  it('refuses to replace user data without --delete-before-restore: exit 4, nothing touched', async () => {
    await target.query('CREATE DATABASE IF NOT EXISTS keep');
    await target.query('CREATE TABLE IF NOT EXISTS keep.t (id INT PRIMARY KEY)');
    await target.query('INSERT IGNORE INTO keep.t VALUES (1)');
    const before = { state: await stateOf(target), keep: await tableChecksums(target, 'keep') };
    const run = await restore('shop/0');
    expect(run.code).toBe(4);
    expect(run.stderr).toMatch(/holds user data \(keep(, shop)?\); nothing was changed/);
    expect(run.stderr).toContain('--delete-before-restore');
    expect({ state: await stateOf(target), keep: await tableChecksums(target, 'keep') }).toEqual(before);
    expect(await leftovers(target)).toEqual([]);
  });

  it('restores from S3, replacing the user data with --delete-before-restore', async () => {
    await target.query('CREATE DATABASE IF NOT EXISTS keep');
    await target.query('CREATE TABLE IF NOT EXISTS keep.t (id INT PRIMARY KEY)');
    const s3Args = ['--storage', s3.url('restore'), '--dir', 'shop/s3', '--json'];
    const made = await runStepback(['backup', '--defaults-file', replica.cnf, ...s3Args], { env: s3.env });
    expect(made.code, made.stderr).toBe(0);
    const run = await runStepback(
      [
        'restore',
        '--defaults-file',
        target.cnf,
        ...s3Args,
        '--delete-before-restore',
        ...replicateFromPrimary(),
      ],
      { env: { ...s3.env, REPLICATION_PASSWORD: '' } },
    );
    expect(run.code, run.stderr).toBe(0);
    expect(run.json).toMatchObject({ backup: (made.json as { name: string }).name });
    expect((run.json as { replacedDatabases: string[] }).replacedDatabases).toContain('keep');
    expect(await tableChecksums(target, 'shop')).toEqual(await tableChecksums(primary, 'shop'));
    expect(await target.query("SHOW DATABASES LIKE 'keep'")).toEqual([]);
    expect(await leftovers(target)).toEqual([]);
  });

  it('skips a newer incomplete backup with a warning naming it, and restores the newest complete one', async () => {
    const incomplete = await storage.startBackup('shop/0', '2999-01-01.000000.unfinished');
    await incomplete.writeFile('0000', () => Readable.from([Buffer.from('half a file')]));
    try {
      const run = await restore('shop/0', ['--delete-before-restore']);
      expect(run.code, run.stderr).toBe(0);
      expect(run.json).toMatchObject({
        backup: backupName,
        skipped: [
          { name: '2999-01-01.000000.unfinished', problem: expect.stringContaining('has no MANIFEST') },
        ],
      });
      expect(run.stderr).toContain('skipping backup 2999-01-01.000000.unfinished');
      // Without --replicate-from the instance holds exactly the backup: none of the later writes.
      expect(await target.query("SHOW TABLES FROM shop LIKE 'added'")).toEqual([]);
      expect(await stateOf(target)).toMatchObject({ running: true, replication: { configured: false } });
    } finally {
      await storage.removeBackup('shop/0', '2999-01-01.000000.unfinished');
    }
  });

  describe('when something is wrong, the instance stays as it was', () => {
    let before: { state: unknown; shop: Record<string, string> };

    beforeAll(async () => {
      const run = await restore('shop/0', ['--delete-before-restore', ...replicateFromPrimary()], {
        env: { REPLICATION_PASSWORD: '' },
      });
      if (run.code !== 0) throw new Error(run.stderr);
    });

    async function snapshotTarget() {
      return { state: await stateOf(target), shop: await tableChecksums(target, 'shop') };
    }

    it('fails with exit 5 naming the file when a stored byte is flipped', async () => {
      const made = await backup(replica, 'shop/flipped');
      expect(made.code, made.stderr).toBe(0);
      const name = (made.json as { name: string }).name;
      const manifest = (await readManifest(storage.openBackup('shop/flipped', name))) as PhysicalManifest;
      const biggest = [...manifest.files].sort((a, b) => b.storedSize - a.storedSize)[0]!;
      const file = path.join(storageRoot, 'shop/flipped', name, biggest.name);
      const bytes = await fs.readFile(file);
      bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
      await fs.writeFile(file, bytes);

      before = await snapshotTarget();
      const run = await restore('shop/flipped', ['--delete-before-restore']);
      expect(run.code).toBe(5);
      expect(run.stderr).toContain(`file ${biggest.name}`);
      expect(run.stderr).toContain('is corrupt');
      expect(await snapshotTarget()).toEqual(before);
      expect(await leftovers(target)).toEqual([]);
    });

    it('refuses a manifest whose file entry escapes the datadir, and writes nothing outside', async () => {
      const outside = path.resolve(target.datadir, '../../escaped-by-manifest');
      const dir = path.join(storageRoot, 'shop/evil/2026-11-24.000000.evil');
      await fs.mkdir(dir, { recursive: true });
      const manifest = physicalManifest({ name: '2026-11-24.000000.evil', dir: 'shop/evil' });
      manifest.files[1]!.path = path.relative(target.datadir, outside);
      await fs.writeFile(path.join(dir, 'MANIFEST'), JSON.stringify(manifest));
      for (const file of manifest.files) await fs.writeFile(path.join(dir, file.name), 'x');

      before = await snapshotTarget();
      const run = await restore('shop/evil', [
        '--backup',
        '2026-11-24.000000.evil',
        '--delete-before-restore',
      ]);
      expect(run.code).toBe(5);
      expect(run.stderr).toMatch(
        /backup shop\/evil\/2026-11-24\.000000\.evil: MANIFEST is invalid: .*has a "\.\." segment/,
      );
      expect(await fs.stat(outside).catch(() => undefined)).toBeUndefined();
      expect(await snapshotTarget()).toEqual(before);
      expect(await leftovers(target)).toEqual([]);
    });

    it('refuses a valid manifest naming a file that is not data (a binary log), exit 5, nothing written', async () => {
      await craftedBackup('shop/binlog', '2026-11-24.000000.binlog', [
        { base: 'innodb-data', path: 'ibdata1', content: randomBytes(1024) },
        { base: 'data', path: 'mysql-bin.000009', content: randomBytes(1024) },
      ]);
      before = await snapshotTarget();
      const run = await restore('shop/binlog', ['--delete-before-restore']);
      expect(run.code).toBe(5);
      expect(run.stderr).toContain(
        '(data:mysql-bin.000009) is not a data file of the datadir; refusing to restore it',
      );
      expect(await snapshotTarget()).toEqual(before);
      expect(await leftovers(target)).toEqual([]);
    });

    it('puts the old files back and restarts the instance when the restored files do not start', async () => {
      await craftedBackup('shop/broken', '2026-11-24.000000.broken', [
        { base: 'innodb-data', path: 'ibdata1', content: randomBytes(4 * 1024 * 1024) },
        { base: 'innodb-log', path: 'ib_logfile0', content: randomBytes(1024 * 1024) },
        { base: 'data', path: 'shop/db.opt', content: Buffer.from('default-character-set=utf8mb4\n') },
      ]);
      before = await snapshotTarget();
      const run = await restore('shop/broken', ['--delete-before-restore']);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain('mysqld did not start');
      expect(run.stderr).toContain('restore failed, putting the old files back');
      expect(await snapshotTarget()).toEqual(before);
      expect(await leftovers(target)).toEqual([]);
    });

    it('an agent killed while the restored server is upgraded: the next command puts the old files back', async () => {
      // The same backup, recorded as written by an older release: the restore runs the upgrade tool.
      const older = path.join(storageRoot, 'shop/older', backupName);
      await fs.cp(path.join(storageRoot, 'shop/0', backupName), older, { recursive: true });
      const manifest = JSON.parse(await fs.readFile(path.join(older, 'MANIFEST'), 'utf8'));
      await fs.writeFile(
        path.join(older, 'MANIFEST'),
        JSON.stringify({ ...manifest, dir: 'shop/older', serverVersion: '10.11.1-MariaDB-log' }),
      );
      before = await snapshotTarget();
      let killed = false;
      const run = await restore('shop/older', ['--delete-before-restore'], {
        onStderr: (stderr, pid) => {
          if (!killed && stderr.includes('running the upgrade tool')) {
            killed = true;
            process.kill(pid, 'SIGKILL');
          }
        },
      });
      expect(run.signal).toBe('SIGKILL');
      expect(await leftovers(target)).toEqual(['data.stepback-restore', 'data.stepback.json']);

      const next = await restore('shop/0', ['--backup', 'no-such-backup']);
      expect(next.code).toBe(3);
      expect(next.stderr).toMatch(/an earlier stepback restore \(pid \d+, started .*\) was interrupted/);
      expect(next.stderr).toContain(
        'recovered from the interrupted restore: stopped the restored mysqld, put the old files back, removed the staged files, started mysqld',
      );
      expect(await snapshotTarget()).toEqual(before);
      expect(await leftovers(target)).toEqual([]);
    });
  });

  it('restores into a stopped instance, judging its user data from the datadir, and leaves it running', async () => {
    await target.stop();
    const refused = await restore('shop/0');
    expect(refused.code).toBe(4);
    expect(refused.stderr).toContain('holds user data (shop); nothing was changed');
    expect(await target.isRunning()).toBe(false);
    const run = await restore('shop/0', ['--delete-before-restore']);
    expect(run.code, run.stderr).toBe(0);
    expect(await stateOf(target)).toMatchObject({ running: true, replication: { configured: false } });
    expect(Object.keys(await tableChecksums(target, 'shop'))).toEqual(['audit', 'legacy', 'orders']);
    expect(await leftovers(target)).toEqual([]);
  });

  it('exits 2 naming the flag for a bad --replicate-from, a missing --replication-user or an unset password variable', async () => {
    const address = await restore('shop/0', ['--replicate-from', 'no-port']);
    expect(address.code).toBe(2);
    expect(address.stderr).toContain('--replicate-from: must be HOST:PORT');
    const user = await restore('shop/0', ['--replicate-from', '127.0.0.1:3306']);
    expect(user.code).toBe(2);
    expect(user.stderr).toContain('--replication-user: is required');
    const unset = await restore('shop/0', [...replicateFromPrimary()]);
    expect(unset.code).toBe(2);
    expect(unset.stderr).toContain(
      '--replication-password-env: the variable REPLICATION_PASSWORD is not set',
    );
    const metadata = await restore('shop/0', ['--local-metadata', 'no-equals-sign']);
    expect(metadata.code).toBe(2);
    expect(metadata.stderr).toContain('--local-metadata');
  });
});
