import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireInstance } from '../../agent/instance/lease.ts';
import { markerPath } from '../../agent/instance/marker.ts';
import { MysqlDaemon } from '../../agent/mysqld/daemon.ts';
import { inspectBackups, readManifest } from '../../core/backups.ts';
import { silentLogger } from '../../core/log.ts';
import type { PhysicalManifest } from '../../core/manifest.ts';
import { FileBackupStorage } from '../../core/storage/file.ts';
import { runStepback } from '../support/cli.ts';
import { fillRandom, stateOf } from '../support/data.ts';
import { physicalManifest } from '../support/manifests.ts';
import {
  createTestInstance,
  startReplication,
  type TestInstance,
  waitForReplica,
} from '../support/mariadb.ts';
import { tempDir } from '../support/root.ts';

let primary: TestInstance;
let replica: TestInstance;
let standalone: TestInstance;
let storageRoot: string;
let storage: FileBackupStorage;

beforeAll(async () => {
  [primary, replica, standalone] = await Promise.all([
    createTestInstance({ name: 'backup-primary' }),
    createTestInstance({ name: 'backup-replica' }),
    createTestInstance({ name: 'backup-standalone' }),
  ]);
  await startReplication(replica, primary);
  await primary.query('CREATE DATABASE shop');
  await primary.query('CREATE TABLE shop.orders (id INT PRIMARY KEY, note VARCHAR(100)) ENGINE=InnoDB');
  await primary.query('CREATE TABLE shop.audit (id INT PRIMARY KEY, what TEXT) ENGINE=Aria');
  await primary.query("INSERT INTO shop.orders VALUES (1, 'first'), (2, 'second')");
  await primary.query("INSERT INTO shop.audit VALUES (1, 'created')");
  await waitForReplica(replica, primary);
  storageRoot = await tempDir('backup-storage');
  storage = new FileBackupStorage(storageRoot);
});

afterAll(async () => {
  await Promise.all([primary?.dispose(), replica?.dispose(), standalone?.dispose()]);
});

function backup(instance: TestInstance, dir: string, extra: string[] = [], options = {}) {
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
    options,
  );
}

async function manifestOf(dir: string, name: string): Promise<PhysicalManifest> {
  return (await readManifest(storage.openBackup(dir, name))) as PhysicalManifest;
}

async function markerExists(instance: TestInstance): Promise<boolean> {
  return Boolean(await fs.stat(`${instance.datadir}.stepback.json`).catch(() => undefined));
}

describe('stepback backup', () => {
  it('backs up a replica at the position where it stopped replicating, and leaves it replicating again', async () => {
    const before = await stateOf(replica);
    expect(before.replication).toEqual({ configured: true, running: true });
    const [{ position }] = await replica.query<[{ position: string }]>(
      'SELECT @@gtid_current_pos AS position',
    );

    const run = await backup(replica, 'shop/replica', ['--concurrency', '2']);
    expect(run.code, run.stderr).toBe(0);
    const result = run.json as Record<string, unknown>;
    expect(result).toMatchObject({
      dir: 'shop/replica',
      engine: 'physical',
      role: 'replica',
      position,
      purged: '',
    });
    expect(Object.keys(result)).toEqual(
      expect.arrayContaining(['name', 'files', 'bytes', 'seconds', 'mbPerSecond']),
    );
    expect(await stateOf(replica)).toEqual(before);
    expect(await markerExists(replica)).toBe(false);

    const manifest = await manifestOf('shop/replica', String(result.name));
    expect(manifest).toMatchObject({
      role: 'replica',
      position,
      flavor: 'mariadb',
      serverId: replica.serverId,
    });
    expect(manifest.files.length).toBe(result.files);
    const destinations = manifest.files.map((file) => `${file.base}:${file.path}`);
    expect(destinations).toEqual(
      expect.arrayContaining([
        'innodb-data:ibdata1',
        'innodb-log:ib_logfile0',
        'data:aria_log_control',
        'data:shop/orders.ibd',
        'data:shop/orders.frm',
        'data:shop/audit.MAD',
        'data:mysql/global_priv.MAD',
      ]),
    );
    expect(destinations.filter((d) => /bin\.|\.info$|\.pid$|\.sock$|error\.log|ibtmp/.test(d))).toEqual([]);
    expect(manifest.bytes.raw).toBe(manifest.files.reduce((sum, f) => sum + f.rawSize, 0));
    expect(manifest.bytes.stored).toBeLessThan(manifest.bytes.raw);

    // And stepback's own validation agrees, down to every hash.
    const validate = await runStepback([
      'backups',
      'validate',
      '--storage',
      `file://${storageRoot}`,
      '--dir',
      'shop/replica',
      '--backup',
      String(result.name),
      '--deep',
      '--json',
    ]);
    expect(validate.code, validate.stderr).toBe(0);
    expect(validate.json).toMatchObject({
      valid: true,
      deep: true,
      problems: [],
      files: manifest.files.length,
    });
  });

  it('refuses a primary with replicas attached unless --allow-primary, touching nothing', async () => {
    const before = await stateOf(primary);
    const refused = await backup(primary, 'shop/primary', ['--name', 'refused']);
    expect(refused.code).toBe(2);
    expect(refused.json).toMatchObject({ error: { code: 'PRIMARY_REFUSED' } });
    expect(refused.stderr).toContain('is a primary with 1 replica(s) attached');
    expect(refused.stderr).toContain('pass --allow-primary');
    expect(await stateOf(primary)).toEqual(before);
    expect(await storage.listBackups('shop/primary')).toEqual([]);
    expect(await markerExists(primary)).toBe(false);
  });

  it('backs up a primary by making it read-only for the position, and turns read_only off again', async () => {
    const before = await stateOf(primary);
    expect(before).toMatchObject({ readOnly: false, replication: { configured: false } });
    const [{ position }] = await primary.query<[{ position: string }]>(
      'SELECT @@gtid_current_pos AS position',
    );
    const run = await backup(primary, 'shop/primary', [
      '--compression',
      'gzip',
      '--name',
      'nightly-1',
      '--allow-primary',
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.json).toMatchObject({ name: 'nightly-1', role: 'primary', position });
    expect(await stateOf(primary)).toEqual(before);
    const manifest = await manifestOf('shop/primary', 'nightly-1');
    expect(manifest.compression).toBe('gzip');
    expect(manifest.files.every((file) => file.name.endsWith('.gz'))).toBe(true);
  });

  it('leaves replication stopped on a replica found with replication stopped', async () => {
    await replica.query('STOP SLAVE');
    try {
      const before = await stateOf(replica);
      expect(before.replication).toEqual({ configured: true, running: false });
      const run = await backup(replica, 'shop/stopped');
      expect(run.code, run.stderr).toBe(0);
      expect(await stateOf(replica)).toEqual(before);
    } finally {
      await replica.query('START SLAVE');
    }
  });

  it('puts the source back as found and removes the partial backup when the copy fails', async () => {
    const before = await stateOf(replica);
    const dangling = path.join(replica.datadir, 'shop', 'gone.ibd');
    await fs.symlink(path.join(replica.root, 'nowhere'), dangling);
    try {
      const run = await backup(replica, 'shop/failed');
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(`error: cannot read ${dangling}`);
      expect(run.json).toMatchObject({ error: { code: 'STEPBACK_ERROR' } });
      expect(await stateOf(replica)).toEqual(before);
      expect(await storage.listBackups('shop/failed')).toEqual([]);
      expect(await markerExists(replica)).toBe(false);
    } finally {
      await fs.rm(dangling);
    }
  });

  it('an agent killed mid-copy: the next command on the instance puts it back, says so, and works', async () => {
    await fillRandom(standalone, 'bulk', 'blobs', 60_000);
    const before = await stateOf(standalone);
    let killed = false;
    const run = await backup(standalone, 'bulk/0', ['--concurrency', '1', '--name', 'killed'], {
      onStderr: (stderr: string, pid: number) => {
        if (!killed && stderr.includes('copying files')) {
          killed = true;
          process.kill(pid, 'SIGKILL');
        }
      },
    });
    expect(run.signal).toBe('SIGKILL');
    expect(await standalone.isRunning()).toBe(false);
    expect(await markerExists(standalone)).toBe(true);

    const next = await backup(standalone, 'bulk/0', ['--name', 'after-kill']);
    expect(next.code, next.stderr).toBe(0);
    expect(next.stderr).toMatch(
      /an earlier stepback backup \(pid \d+, started .*\) was interrupted; putting the instance back/,
    );
    expect(next.stderr).toContain('recovered from the interrupted backup: started mysqld');
    expect(await stateOf(standalone)).toEqual(before);
    const listed = await inspectBackups(storage, 'bulk/0');
    expect(listed.map((b) => [b.name, b.complete])).toEqual([
      ['after-kill', true],
      ['killed', false],
    ]);
  });

  it('refuses to run while another operation holds the instance: exit 6, naming it', async () => {
    const daemon = await MysqlDaemon.open({ defaultsFile: primary.cnf, logger: silentLogger });
    const lease = await acquireInstance(daemon, 'restore', silentLogger);
    try {
      const run = await backup(primary, 'shop/busy');
      expect(run.code).toBe(6);
      expect(run.stderr).toContain(`is busy: stepback restore (pid ${process.pid}`);
      expect(await storage.listBackups('shop/busy')).toEqual([]);
    } finally {
      await lease.release();
    }
    expect(await fs.stat(markerPath(daemon)).catch(() => undefined)).toBeUndefined();
  });

  it('refuses a stopped instance, and exits 2 naming a bad flag, before touching anything', async () => {
    const compression = await backup(primary, 'shop/x', ['--compression', 'lz4']);
    expect(compression.code).toBe(2);
    expect(compression.stderr).toContain('--compression:');
    const engine = await backup(primary, 'shop/x', ['--engine', 'logical']);
    expect(engine.code).toBe(2);
    expect(engine.stderr).toContain('--engine:');
    await standalone.stop();
    try {
      const stopped = await backup(standalone, 'bulk/stopped');
      expect(stopped.code).toBe(1);
      expect(stopped.stderr).toContain('is not running');
      expect(await standalone.isRunning()).toBe(false);
    } finally {
      await standalone.start();
    }
  });
});

describe('stepback backups validate and prune', () => {
  async function storedBackup(dir: string, name: string, finishedAt: string): Promise<PhysicalManifest> {
    const handle = await storage.startBackup(dir, name);
    const content = Buffer.alloc(4096, 7);
    const stored = await handle.writeFile('0000.ibdata1', () => Readable.from([content]));
    const manifest = physicalManifest({
      name,
      dir,
      finishedAt,
      compression: 'none',
      bytes: { raw: content.length, stored: stored.size },
      files: [
        {
          name: '0000.ibdata1',
          base: 'innodb-data',
          path: 'ibdata1',
          rawSize: content.length,
          storedSize: stored.size,
          sha256: stored.sha256,
        },
      ],
    });
    await handle.endBackup(manifest);
    return manifest;
  }

  const cli = (args: string[]) =>
    runStepback(['backups', ...args, '--storage', `file://${storageRoot}`, '--dir', 'ks/validate', '--json']);

  it('validate names a missing file and, with --deep, a corrupt one (exit 5); an unknown backup is exit 3', async () => {
    await storedBackup('ks/validate', '2026-11-01.000000.db1', '2026-11-01T00:10:00Z');
    const file = path.join(storageRoot, 'ks/validate/2026-11-01.000000.db1/0000.ibdata1');
    const ok = await cli(['validate', '--backup', '2026-11-01.000000.db1', '--deep']);
    expect(ok.code, ok.stderr).toBe(0);

    const bytes = await fs.readFile(file);
    bytes[100]! ^= 0xff;
    await fs.writeFile(file, bytes);
    const shallow = await cli(['validate', '--backup', '2026-11-01.000000.db1']);
    expect(shallow.code).toBe(0);
    const deep = await cli(['validate', '--backup', '2026-11-01.000000.db1', '--deep']);
    expect(deep.code).toBe(5);
    expect(deep.json).toMatchObject({ valid: false, problems: [{ file: '0000.ibdata1' }] });

    await fs.rm(file);
    const missing = await runStepback([
      'backups',
      'validate',
      '--storage',
      `file://${storageRoot}`,
      '--dir',
      'ks/validate',
      '--backup',
      '2026-11-01.000000.db1',
    ]);
    expect(missing.code).toBe(5);
    expect(missing.stdout).toContain('0000.ibdata1: missing');

    const unknown = await cli(['validate', '--backup', 'no-such-backup']);
    expect(unknown.code).toBe(3);
  });

  it('prune removes old complete backups beyond the count and stale incomplete ones; --dry-run only says so', async () => {
    const dir = 'ks/prune';
    await storedBackup(dir, '2020-01-01.000000.db1', '2020-01-01T00:10:00Z');
    await storedBackup(dir, '2020-01-02.000000.db1', '2020-01-02T00:10:00Z');
    const partial = await storage.startBackup(dir, '2020-01-03.000000.db1');
    await partial.writeFile('0000', () => Readable.from([Buffer.from('partial')]));
    const args = [
      'backups',
      'prune',
      '--storage',
      `file://${storageRoot}`,
      '--dir',
      dir,
      '--keep-count',
      '1',
      '--keep-days',
      '7',
    ];

    const dry = await runStepback([...args, '--dry-run', '--json']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.json).toMatchObject({
      dryRun: true,
      remove: [{ name: '2020-01-01.000000.db1' }, { name: '2020-01-03.000000.db1' }],
      keep: ['2020-01-02.000000.db1'],
    });
    expect(await storage.listBackups(dir)).toHaveLength(3);

    const real = await runStepback(args);
    expect(real.code, real.stderr).toBe(0);
    expect(real.stdout).toContain('removed ks/prune/2020-01-01.000000.db1');
    expect((await storage.listBackups(dir)).map((b) => b.name)).toEqual(['2020-01-02.000000.db1']);

    const bad = await runStepback([
      'backups',
      'prune',
      '--storage',
      `file://${storageRoot}`,
      '--dir',
      dir,
      '--keep-count',
      '1.5',
      '--keep-days',
      '7',
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--keep-count');
  });
});
