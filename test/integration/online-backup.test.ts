import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from '../../agent/mysql/connection.ts';
import { readManifest } from '../../core/backups.ts';
import type { OnlineManifest } from '../../core/manifest.ts';
import { FileBackupStorage } from '../../core/storage/file.ts';
import { runStepback } from '../support/cli.ts';
import { stateOf, tableChecksums } from '../support/data.ts';
import {
  createTestInstance,
  startReplication,
  type TestInstance,
  waitForReplica,
} from '../support/mariadb.ts';
import { tempDir } from '../support/root.ts';
import { startS3, type TestS3 } from '../support/s3.ts';

const run = promisify(execFile);

let primary: TestInstance;
let replica: TestInstance;
let target: TestInstance;
let s3: TestS3;
let storageRoot: string;
let storage: FileBackupStorage;

beforeAll(async () => {
  [primary, replica, target, s3] = await Promise.all([
    createTestInstance({ name: 'online-primary' }),
    createTestInstance({ name: 'online-replica', extraCnf: ['log-slave-updates=0'] }),
    createTestInstance({ name: 'online-target' }),
    startS3(),
  ]);
  await startReplication(replica, primary);
  await primary.query('CREATE DATABASE shop');
  await primary.query(
    'CREATE TABLE shop.orders (id INT PRIMARY KEY, note VARCHAR(200), amount DECIMAL(12,2) NULL, placed DATETIME(6)) ENGINE=InnoDB',
  );
  await primary.query(
    "INSERT INTO shop.orders SELECT seq, CONCAT('order ', seq, ' — ünïcödé 🚀'), IF(seq % 7 = 0, NULL, seq * 1.5), '2026-11-24 10:00:00.123456' FROM shop.seq_1_to_20000",
  );
  await primary.query('CREATE TABLE shop.audit (id INT PRIMARY KEY, what TEXT) ENGINE=Aria');
  await primary.query("INSERT INTO shop.audit SELECT seq, REPEAT('x', seq % 100) FROM shop.seq_1_to_500");
  await primary.query(
    'CREATE TABLE shop.ticks (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(64), bumps INT NOT NULL DEFAULT 0) ENGINE=InnoDB',
  );
  await waitForReplica(replica, primary);
  storageRoot = await tempDir('online-storage');
  storage = new FileBackupStorage(storageRoot);
});

afterAll(async () => {
  await Promise.all([primary?.dispose(), replica?.dispose(), target?.dispose(), s3?.stop()]);
});

/**
 * Writes to the primary until stopped, one autocommit statement at a time (inserts, and updates of
 * rows already there), and counts what the server refused.
 */
function startWriter(instance: TestInstance) {
  let stopped = false;
  const refused: string[] = [];
  let writes = 0;
  const done = (async () => {
    const connection: Connection = await instance.connect();
    try {
      for (let i = 0; !stopped; i++) {
        try {
          if (i % 3 === 2)
            await connection.query('UPDATE shop.ticks SET bumps = bumps + 1 WHERE id % 5 = ?', [i % 5]);
          else await connection.query('INSERT INTO shop.ticks (note) VALUES (?)', [`tick ${i}`]);
          writes++;
        } catch (error) {
          refused.push((error as Error).message);
        }
      }
    } finally {
      await connection.end();
    }
  })();
  return {
    async stop() {
      stopped = true;
      await done;
      return { writes, refused };
    },
  };
}

function restoreArgs(storageUrl: string, dir: string, extra: string[] = []): string[] {
  return [
    'restore',
    '--defaults-file',
    target.cnf,
    '--storage',
    storageUrl,
    '--dir',
    dir,
    '--json',
    '--delete-before-restore',
    ...extra,
  ];
}

const replicateFromPrimary = () => [
  '--replicate-from',
  `127.0.0.1:${primary.port}`,
  '--replication-user',
  'root',
  '--replication-password-env',
  'REPLICATION_PASSWORD',
];

async function leftovers(instance: TestInstance): Promise<string[]> {
  return (await fs.readdir(path.dirname(instance.datadir)))
    .filter((name) => name.startsWith(`${path.basename(instance.datadir)}.`))
    .sort();
}

async function primaryPosition(): Promise<string> {
  const [{ pos }] = await primary.query<[{ pos: string }]>('SELECT @@gtid_binlog_pos AS pos');
  return pos;
}

describe('stepback backup --engine online', () => {
  let backupName: string;

  it('backs up a primary under a running writer without refusing a write; a restore replicates from the recorded position to the same data', async () => {
    const before = await stateOf(primary);
    const writer = startWriter(primary);
    const made = await runStepback([
      'backup',
      '--defaults-file',
      primary.cnf,
      '--storage',
      `file://${storageRoot}`,
      '--dir',
      'shop/0',
      '--engine',
      'online',
      '--part-size',
      '4MiB',
      '--json',
    ]);
    const written = await writer.stop();
    expect(made.code, made.stderr).toBe(0);
    expect(written.refused).toEqual([]);
    expect(written.writes).toBeGreaterThan(0);
    expect(await stateOf(primary)).toEqual(before);
    backupName = String((made.json as { name: string }).name);
    expect(made.json).toMatchObject({ engine: 'online', role: 'primary' });

    const manifest = (await readManifest(storage.openBackup('shop/0', backupName))) as OnlineManifest;
    const [{ version }] = await primary.query<[{ version: string }]>('SELECT VERSION() AS version');
    expect(manifest).toMatchObject({
      engine: 'online',
      format: 'xbstream',
      partSize: 4 * 1024 * 1024,
      serverVersion: version,
      tool: { name: 'mariabackup', version: expect.stringMatching(/^10\.11\.\d+-MariaDB$/) },
    });
    expect(manifest.files.length).toBeGreaterThan(1);
    expect(manifest.files.map((file) => file.part)).toEqual(manifest.files.map((_, index) => index));
    expect(manifest.position).toMatch(/^0-\d+-\d+$/);

    // Writes the restored instance must receive through replication, after the recorded position.
    await primary.query(
      "INSERT INTO shop.orders SELECT seq, 'later', 1, NOW(6) FROM shop.seq_20001_to_20100",
    );
    await primary.query('DELETE FROM shop.audit WHERE id > 450');

    const restored = await runStepback(
      restoreArgs(`file://${storageRoot}`, 'shop/0', replicateFromPrimary()),
      {
        env: { REPLICATION_PASSWORD: '' },
      },
    );
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stderr).toContain('preparing the backup');
    expect(restored.json).toMatchObject({
      backup: backupName,
      engine: 'online',
      position: manifest.position,
      replication: { source: `127.0.0.1:${primary.port}`, caughtUpTo: await primaryPosition() },
    });
    expect(await tableChecksums(target, 'shop')).toEqual(await tableChecksums(primary, 'shop'));
    expect(await stateOf(target)).toEqual({
      running: true,
      readOnly: false,
      replication: { configured: true, running: true },
    });
    expect(await leftovers(target)).toEqual([]);
  });

  it('backs up a replica, its replication running again afterwards and its replica position recorded, and lists the engine', async () => {
    const before = await stateOf(replica);
    const made = await runStepback([
      'backup',
      '--defaults-file',
      replica.cnf,
      '--storage',
      `file://${storageRoot}`,
      '--dir',
      'shop/replica',
      '--engine',
      'online',
      '--json',
    ]);
    expect(made.code, made.stderr).toBe(0);
    expect(await stateOf(replica)).toEqual(before);
    // Without log_slave_updates the replica's binlog holds none of what it applied: the position
    // comes from its replica position.
    const [{ pos }] = await replica.query<[{ pos: string }]>('SELECT @@gtid_slave_pos AS pos');
    expect(made.json).toMatchObject({ engine: 'online', role: 'replica', position: pos });

    const listed = await runStepback([
      'backups',
      'list',
      '--storage',
      `file://${storageRoot}`,
      '--dir',
      'shop/replica',
    ]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(/ENGINE[\s\S]*online/);

    const restored = await runStepback(
      restoreArgs(`file://${storageRoot}`, 'shop/replica', replicateFromPrimary()),
      {
        env: { REPLICATION_PASSWORD: '' },
      },
    );
    expect(restored.code, restored.stderr).toBe(0);
    expect(await tableChecksums(target, 'shop')).toEqual(await tableChecksums(primary, 'shop'));
  });

  it('backs up to S3 in parts and restores from there', async () => {
    const s3Args = ['--storage', s3.url('online'), '--dir', 'shop/s3', '--json'];
    const made = await runStepback(
      ['backup', '--defaults-file', primary.cnf, ...s3Args, '--engine', 'online', '--part-size', '6MiB'],
      { env: s3.env },
    );
    expect(made.code, made.stderr).toBe(0);
    expect((made.json as { files: number }).files).toBeGreaterThan(1);
    await primary.query(
      "INSERT INTO shop.orders SELECT seq, 'after s3', 2, NOW(6) FROM shop.seq_20101_to_20150",
    );
    const restored = await runStepback(restoreArgs(s3.url('online'), 'shop/s3', replicateFromPrimary()), {
      env: { ...s3.env, REPLICATION_PASSWORD: '' },
    });
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.json).toMatchObject({ engine: 'online', backup: (made.json as { name: string }).name });
    expect(await tableChecksums(target, 'shop')).toEqual(await tableChecksums(primary, 'shop'));
  });

  it('rolls back an online restore killed once the restored server ran, and completes it when run again', async () => {
    const before = { state: await stateOf(target), shop: await tableChecksums(target, 'shop') };
    const killed = await runStepback(restoreArgs(`file://${storageRoot}`, 'shop/0'), {
      env: { STEPBACK_FAULT_PHASE: 'restore:started' },
    });
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    expect(killed.stderr).toContain('preparing the backup');

    const again = await runStepback(restoreArgs(`file://${storageRoot}`, 'shop/0', replicateFromPrimary()), {
      env: { REPLICATION_PASSWORD: '' },
    });
    expect(again.stderr).toContain('was interrupted; putting the instance back');
    expect(again.code, again.stderr).toBe(0);
    expect(again.json).toMatchObject({ backup: backupName, engine: 'online' });
    expect(await tableChecksums(target, 'shop')).toEqual(await tableChecksums(primary, 'shop'));
    expect(await stateOf(target)).toEqual(before.state);
    expect(await leftovers(target)).toEqual([]);
  });

  describe('when something is wrong, the target stays as it was', () => {
    let before: { state: unknown; shop: Record<string, string> };

    beforeAll(async () => {
      await waitForReplica(target, primary);
      before = { state: await stateOf(target), shop: await tableChecksums(target, 'shop') };
    });

    async function unchanged(): Promise<void> {
      expect({ state: await stateOf(target), shop: await tableChecksums(target, 'shop') }).toEqual(before);
      expect(await leftovers(target)).toEqual([]);
    }

    it('refuses a corrupted part with exit 5 naming it', async () => {
      const made = await runStepback([
        'backup',
        '--defaults-file',
        primary.cnf,
        '--storage',
        `file://${storageRoot}`,
        '--dir',
        'shop/corrupt',
        '--engine',
        'online',
        '--part-size',
        '4MiB',
        '--json',
      ]);
      expect(made.code, made.stderr).toBe(0);
      const name = String((made.json as { name: string }).name);
      const manifest = (await readManifest(storage.openBackup('shop/corrupt', name))) as OnlineManifest;
      const victim = [...manifest.files].sort((a, b) => b.storedSize - a.storedSize)[0]!;
      const file = path.join(storageRoot, 'shop/corrupt', name, victim.name);
      const bytes = await fs.readFile(file);
      const middle = Math.floor(bytes.length / 2);
      bytes[middle] = (bytes[middle] ?? 0) ^ 0xff;
      await fs.writeFile(file, bytes);

      const restored = await runStepback(restoreArgs(`file://${storageRoot}`, 'shop/corrupt'));
      expect(restored.code, restored.stderr).toBe(5);
      expect(restored.stderr).toContain(victim.name);
      await unchanged();
    });

    it('names an uncompressed corrupted part even when its bytes broke the extractor first', async () => {
      // No decompressor to trip over the flipped byte: it reaches mbstream before the part's hash
      // is checked at its end.
      const made = await runStepback([
        'backup',
        '--defaults-file',
        primary.cnf,
        '--storage',
        `file://${storageRoot}`,
        '--dir',
        'shop/corrupt-raw',
        '--engine',
        'online',
        '--part-size',
        '4MiB',
        '--compression',
        'none',
        '--json',
      ]);
      expect(made.code, made.stderr).toBe(0);
      const name = String((made.json as { name: string }).name);
      const manifest = (await readManifest(storage.openBackup('shop/corrupt-raw', name))) as OnlineManifest;
      const victim = manifest.files[0]!;
      const file = path.join(storageRoot, 'shop/corrupt-raw', name, victim.name);
      const bytes = await fs.readFile(file);
      // The first chunk's header: the extractor refuses it at once.
      bytes[0] = (bytes[0] ?? 0) ^ 0xff;
      await fs.writeFile(file, bytes);

      const restored = await runStepback(restoreArgs(`file://${storageRoot}`, 'shop/corrupt-raw'));
      expect(restored.code, restored.stderr).toBe(5);
      expect(restored.stderr).toContain(`file ${victim.name} is corrupt`);
      await unchanged();
    });

    it('leaves the instance untouched when the prepare fails, and names the tool’s last lines', async () => {
      // A stream that extracts but does not prepare: the tool's config file without any data.
      const source = await tempDir('online-crafted');
      await fs.writeFile(
        path.join(source, 'backup-my.cnf'),
        '[mysqld]\ninnodb_data_file_path=ibdata1:12M:autoextend\ninnodb_page_size=16384\n',
      );
      const stream = (
        await run('mbstream', ['-c', 'backup-my.cnf'], {
          cwd: source,
          encoding: 'buffer',
          maxBuffer: 1 << 20,
        })
      ).stdout;
      const name = '2026-12-01.000000.crafted';
      const handle = await storage.startBackup('shop/crafted', name);
      const stored = await handle.writeFile('stream.0000', () => Readable.from([stream]));
      const [{ version }] = await primary.query<[{ version: string }]>('SELECT VERSION() AS version');
      const manifest: OnlineManifest = {
        formatVersion: 1,
        engine: 'online',
        name,
        dir: 'shop/crafted',
        keyspace: 'shop',
        shard: 'crafted',
        host: 'crafted',
        startedAt: '2026-12-01T00:00:00.000Z',
        finishedAt: '2026-12-01T00:00:01.000Z',
        durationSeconds: 1,
        flavor: 'mariadb',
        serverVersion: version,
        serverId: 1,
        role: 'primary',
        position: '0-1-1',
        purged: '',
        compression: 'none',
        bytes: { raw: stream.length, stored: stored.size },
        tool: { name: 'mariabackup', version: version.replace(/^(\d+\.\d+\.\d+).*$/, '$1-MariaDB') },
        format: 'xbstream',
        partSize: 1024 * 1024,
        files: [
          {
            name: 'stream.0000',
            part: 0,
            rawSize: stream.length,
            storedSize: stored.size,
            sha256: stored.sha256,
          },
        ],
      };
      await handle.endBackup(manifest);

      const restored = await runStepback(restoreArgs(`file://${storageRoot}`, 'shop/crafted'));
      expect(restored.code).toBe(1);
      expect(restored.stderr).toContain('mariabackup --prepare exited with code');
      expect(restored.stderr).toContain('its last lines:');
      expect(restored.stderr).toContain('the instance was not changed');
      await unchanged();
    });

    it('refuses a mariabackup of another release than the server, naming the package, before it starts', async () => {
      const fakeBin = await tempDir('online-fake-tool');
      for (const tool of ['mariadb-backup', 'mariabackup']) {
        const file = path.join(fakeBin, tool);
        await fs.writeFile(
          file,
          '#!/bin/sh\necho "mariabackup based on MariaDB server 10.6.1-MariaDB debian-linux-gnu (x86_64)" >&2\n',
        );
        await fs.chmod(file, 0o755);
      }
      const primaryBefore = await stateOf(primary);
      const made = await runStepback(
        [
          'backup',
          '--defaults-file',
          primary.cnf,
          '--storage',
          `file://${storageRoot}`,
          '--dir',
          'shop/mismatch',
          '--engine',
          'online',
        ],
        { env: { PATH: `${fakeBin}${path.delimiter}${process.env.PATH ?? ''}` } },
      );
      expect(made.code).toBe(1);
      expect(made.stderr).toContain('is from MariaDB 10.6.1');
      expect(made.stderr).toContain('mariadb-backup');
      expect(await stateOf(primary)).toEqual(primaryBefore);
      expect(await storage.listBackups('shop/mismatch')).toEqual([]);
    });
  });
});
