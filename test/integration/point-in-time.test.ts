import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scanBinlog } from '../../agent/binlogs/events.ts';
import { binlogEntryName } from '../../core/binlogs/manifest.ts';
import { runStepback } from '../support/cli.ts';
import { tableChecksums } from '../support/data.ts';
import {
  createTestInstance,
  startReplication,
  type TestInstance,
  waitForReplica,
} from '../support/mariadb.ts';
import { tempDir } from '../support/root.ts';

/**
 * Point-in-time recovery on MariaDB through the CLI: a backup, writes at known seconds, a
 * destructive DELETE, the binary logs archived, and restores into fresh instances to the second
 * before the DELETE and to the GTID before it.
 */

let source: TestInstance;
let storageRoot: string;
let storage: string;
const targets: TestInstance[] = [];
/** What the data was, and the GTID position, at the last second before the DELETE. */
let beforeDelete: { checksums: Record<string, string>; position: string; time: string };
let firstBackup: string;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const binlogPos = async (instance: TestInstance) =>
  String((await instance.query<[{ pos: string }]>('SELECT @@GLOBAL.gtid_binlog_pos AS pos'))[0].pos);

async function archive(): Promise<void> {
  const run = await runStepback([
    'binlogs',
    'archive',
    '--storage',
    storage,
    '--dir',
    'shop/0',
    '--defaults-file',
    source.cnf,
    '--max-age',
    '0',
    '--json',
  ]);
  expect(run.code, run.stderr).toBe(0);
}

async function freshTarget(): Promise<TestInstance> {
  const target = await createTestInstance({ name: 'pitr-target' });
  targets.push(target);
  return target;
}

function restoreArgs(target: TestInstance, ...extra: string[]): string[] {
  return [
    'restore',
    '--storage',
    storage,
    '--dir',
    'shop/0',
    '--defaults-file',
    target.cnf,
    '--json',
    ...extra,
  ];
}

beforeAll(async () => {
  source = await createTestInstance({ name: 'pitr-source' });
  storageRoot = await tempDir('pitr-storage');
  storage = `file://${storageRoot}`;
  await source.query('CREATE DATABASE shop');
  await source.query(
    'CREATE TABLE shop.orders (id INT PRIMARY KEY, note VARCHAR(100), amount INT) ENGINE=InnoDB',
  );
  await source.query(
    "INSERT INTO shop.orders SELECT seq, CONCAT('order ', seq), seq * 3 FROM shop.seq_1_to_200",
  );
  const backup = await runStepback([
    'backup',
    '--storage',
    storage,
    '--dir',
    'shop/0',
    '--defaults-file',
    source.cnf,
    '--json',
  ]);
  expect(backup.code, backup.stderr).toBe(0);
  firstBackup = (backup.json as { name: string }).name;

  // Each phase in a second of its own: binlog event times have second resolution.
  await sleep(1100);
  await source.query(
    "INSERT INTO shop.orders SELECT seq, CONCAT('late ', seq), seq FROM shop.seq_201_to_300",
  );
  await archive();
  await sleep(1100);
  await source.query('UPDATE shop.orders SET amount = amount + 1 WHERE id % 10 = 0');
  await source.query('CREATE TABLE shop.notes (id INT PRIMARY KEY, body TEXT) ENGINE=InnoDB');
  await source.query("INSERT INTO shop.notes VALUES (1, 'kept'), (2, 'also kept')");
  await archive();
  await sleep(1100);
  const [{ now }] = await source.query<[{ now: number }]>('SELECT UNIX_TIMESTAMP() AS now');
  beforeDelete = {
    checksums: await tableChecksums(source, 'shop'),
    position: await binlogPos(source),
    // The DELETE's events carry this second or a later one: the second before holds everything else.
    time: new Date((Number(now) - 1) * 1000).toISOString(),
  };
  await source.query('DELETE FROM shop.orders WHERE id > 50');
  await source.query("INSERT INTO shop.notes VALUES (3, 'after the delete')");
  await archive();
}, 120_000);

afterAll(async () => {
  await Promise.all([source?.dispose(), ...targets.map((target) => target.dispose())]);
});

describe('point-in-time restore from archived binary logs (MariaDB)', () => {
  it('archives each closed binary log once and lists one covered range without gaps', async () => {
    const again = await runStepback([
      'binlogs',
      'archive',
      '--storage',
      storage,
      '--dir',
      'shop/0',
      '--defaults-file',
      source.cnf,
      '--json',
    ]);
    expect(again.code, again.stderr).toBe(0);
    expect((again.json as { uploaded: unknown[] }).uploaded).toEqual([]);
    const list = await runStepback(['binlogs', 'list', '--storage', storage, '--dir', 'shop/0', '--json']);
    expect(list.code, list.stderr).toBe(0);
    const listed = list.json as {
      entries: { complete: boolean }[];
      ranges: { gtidsTo: string }[];
      gaps: unknown[];
    };
    expect(listed.gaps).toEqual([]);
    expect(listed.ranges).toHaveLength(1);
    expect(listed.entries.every((entry) => entry.complete)).toBe(true);
    expect(listed.ranges[0]?.gtidsTo).toContain(await binlogPos(source));
    // Backups listings never see the archive.
    const backups = await runStepback(['backups', 'list', '--storage', storage, '--dir', 'shop/0', '--json']);
    expect((backups.json as unknown[]).length).toBe(1);
  });

  it('restores into a fresh instance to the second before the DELETE: the data and GTID state of that moment', async () => {
    const target = await freshTarget();
    const run = await runStepback(restoreArgs(target, '--to-time', beforeDelete.time));
    expect(run.code, run.stderr).toBe(0);
    const result = run.json as {
      backup: string;
      position: string;
      pointInTime: { binlogs: { file: string }[]; lastApplied: { gtid: string; time: string } };
    };
    expect(result.pointInTime.binlogs.length).toBeGreaterThan(0);
    expect(result.pointInTime.lastApplied.gtid).toBe(beforeDelete.position);
    expect(new Date(result.pointInTime.lastApplied.time).getTime()).toBeLessThanOrEqual(
      new Date(beforeDelete.time).getTime(),
    );
    expect(await tableChecksums(target, 'shop')).toEqual(beforeDelete.checksums);
    expect(result.position).toBe(beforeDelete.position);
    const [{ pos }] = await target.query<[{ pos: string }]>('SELECT @@GLOBAL.gtid_current_pos AS pos');
    expect(pos).toBe(beforeDelete.position);
  });

  it('restores to the GTID before the DELETE', async () => {
    const target = await freshTarget();
    const run = await runStepback(restoreArgs(target, '--to-gtid', beforeDelete.position));
    expect(run.code, run.stderr).toBe(0);
    expect(await tableChecksums(target, 'shop')).toEqual(beforeDelete.checksums);
    const [{ pos }] = await target.query<[{ pos: string }]>('SELECT @@GLOBAL.gtid_current_pos AS pos');
    expect(pos).toBe(beforeDelete.position);
  });

  it('refuses, before touching the instance, a point after the archive, saying which range it covers', async () => {
    const target = await freshTarget();
    const run = await runStepback(
      restoreArgs(target, '--to-time', new Date(Date.now() + 3_600_000).toISOString()),
    );
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/POINT_NOT_COVERED|cannot restore to/);
    expect(run.stderr).toMatch(/covers \d{4}-\d\d-\d\dT/);
    expect(await tableChecksums(target, 'shop')).toEqual({});
  });

  it('shows a missing archived file as a gap, and refuses a restore that needs it', async () => {
    const dir = path.join(storageRoot, 'binlogs', 'shop', '0');
    const entries = (await fs.readdir(dir)).sort();
    expect(entries.length).toBeGreaterThanOrEqual(3);
    const middle = entries[entries.length - 2]!;
    await fs.rename(path.join(dir, middle), path.join(storageRoot, middle));
    try {
      const list = await runStepback(['binlogs', 'list', '--storage', storage, '--dir', 'shop/0']);
      expect(list.code).toBe(5);
      expect(list.stdout).toMatch(/GAP after .*, before .*: 1 file\(s\) not archived/);
      const validate = await runStepback([
        'backups',
        'validate',
        '--storage',
        storage,
        '--dir',
        'shop/0',
        '--backup',
        firstBackup,
      ]);
      expect(validate.code).toBe(5);
      expect(validate.stdout).toMatch(/binlog archive gap after/);
      const target = await freshTarget();
      const run = await runStepback(restoreArgs(target, '--to-time', beforeDelete.time));
      expect(run.code).toBe(3);
      expect(run.stderr).toMatch(/gap/);
      expect(await tableChecksums(target, 'shop')).toEqual({});
    } finally {
      await fs.rename(path.join(storageRoot, middle), path.join(dir, middle));
    }
  });

  it('stops at a corrupt archived file with HASH_MISMATCH, saying the backup itself was restored', async () => {
    const dir = path.join(storageRoot, 'binlogs', 'shop', '0');
    const objects = (await fs.readdir(dir)).map((entry) => path.join(dir, entry, 'binlog.zst'));
    const saved = await Promise.all(objects.map((object) => fs.readFile(object)));
    await Promise.all(
      objects.map((object, index) => {
        const bytes = Buffer.from(saved[index]!);
        const middle = bytes.length >> 1;
        bytes.writeUInt8(bytes.readUInt8(middle) ^ 0xff, middle);
        return fs.writeFile(object, bytes);
      }),
    );
    try {
      const target = await freshTarget();
      const run = await runStepback(restoreArgs(target, '--to-gtid', beforeDelete.position));
      expect(run.code).toBe(5);
      expect(run.stderr).toMatch(/is corrupt: expected [0-9a-f]{64}, got [0-9a-f]{64}/);
      expect(run.stderr).toContain('was restored, but replaying the binary logs after it failed');
    } finally {
      await Promise.all(objects.map((object, index) => fs.writeFile(object, saved[index]!)));
    }
  });

  it('uploads again an entry that a killed run left without its manifest', async () => {
    await source.query("INSERT INTO shop.notes VALUES (10, 'before a killed archive')");
    const [{ File: file }] = await source.query<[{ File: string }]>('SHOW MASTER STATUS');
    await source.query('FLUSH BINARY LOGS');
    const opened = (await scanBinlog(path.join(source.datadir, file))).openedAt;
    const entry = binlogEntryName(new Date(opened * 1000), file);
    const dir = path.join(storageRoot, 'binlogs', 'shop', '0', entry);
    await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(path.join(dir, 'binlog.zst'), 'cut short');
    const run = await runStepback([
      'binlogs',
      'archive',
      '--storage',
      storage,
      '--dir',
      'shop/0',
      '--defaults-file',
      source.cnf,
      '--json',
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain(`archived binlog ${entry} is incomplete`);
    expect((run.json as { uploaded: { entry: string }[] }).uploaded.map((u) => u.entry)).toEqual([entry]);
    const list = await runStepback(['binlogs', 'list', '--storage', storage, '--dir', 'shop/0', '--json']);
    const listed = list.json as { entries: { complete: boolean }[]; gaps: unknown[] };
    expect(listed.entries.every((e) => e.complete)).toBe(true);
    expect(listed.gaps).toEqual([]);
  });

  it('runs one archive at a time on an instance, and takes over the lock of a run that died', async () => {
    const lock = `${source.datadir}.stepback-binlog-archive.lock`;
    const args = [
      'binlogs',
      'archive',
      '--storage',
      storage,
      '--dir',
      'shop/0',
      '--defaults-file',
      source.cnf,
    ];
    // This test's own process stands for a run still going.
    await fs.writeFile(lock, JSON.stringify({ pid: process.pid, startedAt: '2026-12-01T14:00:00Z' }));
    const busy = await runStepback(args);
    expect(busy.code).toBe(6);
    expect(busy.stderr).toContain(`another binlogs archive (pid ${process.pid}`);
    await fs.writeFile(lock, JSON.stringify({ pid: 2 ** 22 + 7, startedAt: '2026-12-01T14:00:00Z' }));
    const taken = await runStepback(args);
    expect(taken.code, taken.stderr).toBe(0);
    await expect(fs.access(lock)).rejects.toThrow();
  });

  it('backups prune removes the archived binary logs no point after the oldest kept backup needs, saying so', async () => {
    const before = (await fs.readdir(path.join(storageRoot, 'binlogs', 'shop', '0'))).length;
    const backup = await runStepback([
      'backup',
      '--storage',
      storage,
      '--dir',
      'shop/0',
      '--defaults-file',
      source.cnf,
    ]);
    expect(backup.code, backup.stderr).toBe(0);
    await source.query("INSERT INTO shop.notes VALUES (4, 'after the second backup')");
    await archive();
    const prune = await runStepback([
      'backups',
      'prune',
      '--storage',
      storage,
      '--dir',
      'shop/0',
      '--keep-count',
      '1',
      '--keep-days',
      '0',
    ]);
    expect(prune.code, prune.stderr).toBe(0);
    expect(prune.stdout).toMatch(/removed archived binlog binlogs\/shop\/0\/\S+: every transaction in it/);
    const list = await runStepback(['binlogs', 'list', '--storage', storage, '--dir', 'shop/0', '--json']);
    const listed = list.json as { entries: { gtidsAfter: string }[]; gaps: unknown[] };
    expect(list.code, list.stderr).toBe(0);
    expect(listed.entries.length).toBeGreaterThan(0);
    expect(listed.entries.length).toBeLessThan(before + 2);
    // What is left reaches the newest write from the kept backup.
    expect(listed.entries.at(-1)?.gtidsAfter).toBe(await binlogPos(source));
    const target = await freshTarget();
    const restore = await runStepback(restoreArgs(target, '--to-gtid', await binlogPos(source)));
    expect(restore.code, restore.stderr).toBe(0);
    expect(await tableChecksums(target, 'shop')).toEqual(await tableChecksums(source, 'shop'));
  });
});

describe('a backup of a replica with the binary logs of its primary', () => {
  it('replays from the middle of an archived file: the transactions the backup holds are skipped', async () => {
    const primary = await freshTarget();
    const replica = await freshTarget();
    const target = await freshTarget();
    const shared = `file://${await tempDir('pitr-replica-storage')}`;
    const common = ['--storage', shared, '--dir', 'shop/1'];
    await startReplication(replica, primary);
    await primary.query('CREATE DATABASE shop');
    await primary.query('CREATE TABLE shop.items (id INT PRIMARY KEY, qty INT) ENGINE=InnoDB');
    await primary.query('INSERT INTO shop.items SELECT seq, seq FROM shop.seq_1_to_100');
    await primary.query('UPDATE shop.items SET qty = qty + 1 WHERE id <= 10');
    await waitForReplica(replica, primary);
    const backup = await runStepback(['backup', ...common, '--defaults-file', replica.cnf]);
    expect(backup.code, backup.stderr).toBe(0);
    // The primary's current file holds transactions from before and after the backup's position.
    await primary.query('UPDATE shop.items SET qty = qty * 2 WHERE id > 90');
    const point = await binlogPos(primary);
    const expected = await tableChecksums(primary, 'shop');
    await primary.query('DELETE FROM shop.items');
    const archive = await runStepback([
      'binlogs',
      'archive',
      ...common,
      '--defaults-file',
      primary.cnf,
      '--max-age',
      '0',
      '--json',
    ]);
    expect(archive.code, archive.stderr).toBe(0);
    expect((archive.json as { uploaded: unknown[] }).uploaded.length).toBeGreaterThan(0);
    const restore = await runStepback([
      'restore',
      ...common,
      '--defaults-file',
      target.cnf,
      '--to-gtid',
      point,
      '--json',
    ]);
    expect(restore.code, restore.stderr).toBe(0);
    expect((restore.json as { pointInTime: { transactions: number } }).pointInTime.transactions).toBe(1);
    expect(await tableChecksums(target, 'shop')).toEqual(expected);
  });
});
