import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FaultPhase } from '../../agent/instance/fault.ts';
import { captureState, type InstanceState } from '../../agent/instance/state.ts';
import { MysqlDaemon } from '../../agent/mysqld/daemon.ts';
import { readBinlogArchive } from '../../core/binlogs/catalog.ts';
import { BINLOG_MANIFEST_FILE } from '../../core/binlogs/manifest.ts';
import { silentLogger } from '../../core/log.ts';
import { FileBackupStorage } from '../../core/storage/file.ts';
import { binlogArchiveDir } from '../../core/storage/layout.ts';
import { runStepback } from '../support/cli.ts';
import { fillRandom, stateOf, tableChecksums } from '../support/data.ts';
import { recordFault } from '../support/faults.ts';
import {
  createTestInstance,
  startReplication,
  type TestInstance,
  waitForReplica,
} from '../support/mariadb.ts';
import { createMysqlInstance, mysqldWrapper } from '../support/mysql.ts';
import { tempDir } from '../support/root.ts';

/**
 * The agent killed (SIGKILL, no cleanup) at each named phase of backup, restore, snapshot,
 * multirestore, catchup, the binlog archive and a restore's replay to a point, then another command
 * on the same instance: it must finish or undo what the killed
 * one left, and leave the instance running as it was found, holding either the old data or the
 * complete new data; then the killed command, run again, completes. FAULTS_FULL=1 runs every other
 * command after every phase; the default runs one, rotating.
 */

const full = process.env.FAULTS_FULL === '1';

let primary: TestInstance;
let replica: TestInstance;
let target: TestInstance;
let storage: string;

type Command = 'backup' | 'restore' | 'snapshot' | 'multirestore' | 'catchup';

beforeAll(async () => {
  [primary, replica, target] = await Promise.all([
    createTestInstance({ name: 'death-primary' }),
    createTestInstance({ name: 'death-replica' }),
    createTestInstance({ name: 'death-target' }),
  ]);
  storage = `file://${await tempDir('death-storage')}`;
  await startReplication(replica, primary);
  await fillRandom(primary, 'shop', 'items', 400);
  await waitForReplica(replica, primary);
  // The target's own data, which a restore replaces: different from the backup's.
  await fillRandom(target, 'shop', 'items', 10);
  // What every restore and multirestore loads: a backup and a snapshot of the replica.
  for (const args of [
    ['backup', '--defaults-file', replica.cnf, '--dir', 'shop/0', '--name', 'base'],
    ['snapshot', '--defaults-file', replica.cnf, '--dir', 'shop/src', '--database', 'shop'],
  ]) {
    const run = await runStepback([...args, '--storage', storage, '--json']);
    expect(run.code, run.stderr).toBe(0);
  }
});

afterAll(async () => {
  await Promise.all([primary?.dispose(), replica?.dispose(), target?.dispose()]);
});

/** Each command's arguments, on the instance it changes. */
function argsOf(command: Command, instance: TestInstance, attempt: string): string[] {
  const common = ['--defaults-file', instance.cnf, '--storage', storage, '--json'];
  switch (command) {
    case 'backup':
      return ['backup', ...common, '--dir', `shop/death-${attempt}`, '--concurrency', '1'];
    case 'restore':
      return ['restore', ...common, '--dir', 'shop/0', '--backup', 'base', '--delete-before-restore'];
    case 'snapshot':
      return ['snapshot', ...common, '--dir', `shop/snap-${attempt}`, '--database', 'shop'];
    case 'multirestore':
      // The killed load and its re-run share a database (the re-run resumes it); a follower gets its
      // own, since a finished load of the same sources is not redone.
      return [
        'multirestore',
        ...common,
        '--sources',
        'shop/src',
        '--database',
        `loaded_${attempt.replace(/c$/, '')}`,
      ];
    case 'catchup':
      // The killed catch-up and its re-run continue one destination from its checkpoint.
      return [
        'catchup',
        '--defaults-file',
        instance.cnf,
        '--json',
        '--database',
        caughtDatabase(attempt),
        '--source',
        `mysql://root@localhost/shop?socket=${encodeURIComponent(replica.socket)}`,
        '--until',
        catchupUntil,
      ];
  }
}

const caughtDatabase = (attempt: string) => `caught_${attempt.replace(/c$/, '')}`;
let catchupUntil = '';

/**
 * A destination for the catch-up case, loaded here because a restore before it replaces the whole
 * target: the snapshot of the replica with its checkpoint, then source transactions written after
 * it, which the catch-up applies in several batches.
 */
async function loadCatchupDestination(instance: TestInstance, attempt: string): Promise<void> {
  const loaded = await runStepback([
    'multirestore',
    '--defaults-file',
    instance.cnf,
    '--storage',
    storage,
    '--sources',
    'shop/src',
    '--database',
    caughtDatabase(attempt),
    '--checkpoints',
  ]);
  expect(loaded.code, loaded.stderr).toBe(0);
  for (let i = 0; i < 5; i++) await fillRandom(primary, 'shop', 'items', 20);
  await primary.query('UPDATE shop.items SET payload = RANDOM_BYTES(100) WHERE id % 7 = 0');
  await primary.query('DELETE FROM shop.items WHERE id % 11 = 0');
  await waitForReplica(replica, primary);
  [{ pos: catchupUntil }] = await replica.query<[{ pos: string }]>('SELECT @@GLOBAL.gtid_binlog_pos AS pos');
}

const cases: { phase: FaultPhase; command: Command; on: 'replica' | 'target'; followers?: Command[] }[] = [
  { phase: 'backup:quiesced', command: 'backup', on: 'replica' },
  { phase: 'backup:stopped', command: 'backup', on: 'replica' },
  { phase: 'backup:copied', command: 'backup', on: 'replica' },
  { phase: 'restore:staged', command: 'restore', on: 'target' },
  { phase: 'restore:swapped', command: 'restore', on: 'target' },
  { phase: 'restore:started', command: 'restore', on: 'target' },
  { phase: 'restore:committed', command: 'restore', on: 'target' },
  { phase: 'snapshot:quiesced', command: 'snapshot', on: 'replica' },
  // Not a replica: killed holding FLUSH TABLES WITH READ LOCK while the snapshot sessions open.
  { phase: 'snapshot:quiesced', command: 'snapshot', on: 'target' },
  { phase: 'snapshot:dumped', command: 'snapshot', on: 'replica' },
  { phase: 'multirestore:loading', command: 'multirestore', on: 'target' },
  {
    phase: 'catchup:applying',
    command: 'catchup',
    on: 'target',
    // A restore would replace the database the killed catch-up continues.
    followers: ['multirestore', 'backup', 'snapshot'],
  },
];

/** The commands that may follow on each instance: the serving replica is never restored over. */
const followersOn: Record<'replica' | 'target', Command[]> = {
  replica: ['backup', 'snapshot'],
  target: ['restore', 'multirestore', 'backup', 'snapshot'],
};

/** What a killed operation may leave: the marker, a restore's staging and holding areas, dump and fetch files. */
async function leftovers(instance: TestInstance): Promise<string[]> {
  const parent = path.dirname(instance.datadir);
  const beside = (await fs.readdir(parent)).filter(
    (name) => name.startsWith(`${path.basename(instance.datadir)}.`) && name !== path.basename(instance.cnf),
  );
  const work = (await fs.readdir(instance.filesDir).catch(() => [] as string[])).filter((name) =>
    name.startsWith('stepback-'),
  );
  return [...beside, ...work];
}

async function markerLeft(instance: TestInstance): Promise<boolean> {
  return Boolean(await fs.stat(`${instance.datadir}.stepback.json`).catch(() => undefined));
}

async function userTables(instance: TestInstance): Promise<Record<string, Record<string, string>>> {
  const rows = await instance.query<{ db: string }[]>(
    "SELECT schema_name AS db FROM information_schema.schemata WHERE schema_name IN ('shop', 'loaded') ORDER BY 1",
  );
  const tables: Record<string, Record<string, string>> = {};
  for (const { db } of rows) tables[db] = await tableChecksums(instance, db);
  return tables;
}

describe('the agent killed at every phase', () => {
  let round = 0;
  for (const [index, testCase] of cases.entries()) {
    const followers = testCase.followers ?? followersOn[testCase.on];
    for (const follower of full ? followers : [followers[index % followers.length]!]) {
      it(`${testCase.phase}, then ${follower} on the same instance, then the killed command again`, async () => {
        const instance = testCase.on === 'replica' ? replica : target;
        const attempt = String(++round);
        if (testCase.command === 'catchup') await loadCatchupDestination(instance, attempt);
        const before: InstanceState = await stateOf(instance);
        const shopBefore = (await userTables(instance)).shop;
        const shopOfBackup = await tableChecksums(replica, 'shop');

        const killed = await runStepback(argsOf(testCase.command, instance, attempt), {
          env: { STEPBACK_FAULT_PHASE: testCase.phase },
        });
        expect(killed.signal, killed.stderr).toBe('SIGKILL');
        expect(await markerLeft(instance)).toBe(true);

        const next = await runStepback(argsOf(follower, instance, `${attempt}b`));
        expect(next.stderr).toContain('was interrupted; putting the instance back');
        expect(await markerLeft(instance)).toBe(false);
        // Whatever the follower did, the instance runs as it was found: read_only, replication.
        expect(await stateOf(instance)).toEqual(before);
        if (instance === target) {
          // Old data or the complete new data, never a mix.
          const shop = (await userTables(instance)).shop;
          expect([JSON.stringify(shopBefore), JSON.stringify(shopOfBackup)]).toContain(JSON.stringify(shop));
        }
        expect(next.code, `${follower}: ${next.stderr}`).toBe(0);

        const again = await runStepback(argsOf(testCase.command, instance, `${attempt}c`));
        expect(again.code, again.stderr).toBe(0);
        expect(await stateOf(instance)).toEqual(before);
        const left = await leftovers(instance);
        const [{ source }] = await replica.query<[{ source: number }]>(
          'SELECT COUNT(*) AS source FROM shop.items',
        );
        // A catch-up's destination is its copy of the source's table; every other command's, shop.
        const copy = testCase.command === 'catchup' ? caughtDatabase(attempt) : 'shop';
        const [{ kept }] = await instance.query<[{ kept: number }]>(
          `SELECT COUNT(*) AS kept FROM ${copy}.items`,
        );
        if (testCase.command === 'catchup') {
          expect(await tableChecksums(instance, copy)).toEqual(await tableChecksums(replica, 'shop'));
        }
        recordFault({
          fault: `agent killed at ${testCase.phase}, then another command`,
          cases: 1,
          survived: left.length === 0 ? 1 : 0,
          rowsLost: Number(source) - Number(kept),
          filesLeft: left.length,
        });
        expect(left).toEqual([]);
        if (instance === replica) await waitForReplica(replica, primary);
      });
    }
  }
});

describe('the agent killed while restore --allow-empty starts an instance that has no backup', () => {
  let blank: TestInstance;
  const restoreEmpty = (...extra: string[]) => [
    'restore',
    '--defaults-file',
    blank.cnf,
    '--storage',
    storage,
    '--dir',
    'shop/no-backup-yet',
    ...extra,
    '--json',
  ];

  beforeAll(async () => {
    blank = await createTestInstance({ name: 'death-blank' });
    await blank.stop();
  });

  afterAll(async () => {
    await blank?.dispose();
  });

  it('restore:started-empty, then restore on the same instance, then the killed command again', async () => {
    const before = await stateOf(blank);
    expect(before.running).toBe(false);
    const killed = await runStepback(restoreEmpty('--allow-empty', '--local-metadata', 'role=replica'), {
      env: { STEPBACK_FAULT_PHASE: 'restore:started-empty' },
    });
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    expect(await markerLeft(blank)).toBe(true);

    // The follower puts the instance back as found (stopped), then fails as it would have: no backup.
    const next = await runStepback(restoreEmpty());
    expect(next.stderr).toContain('was interrupted; putting the instance back');
    expect(next.code, next.stderr).toBe(3);
    expect(await markerLeft(blank)).toBe(false);
    expect(await stateOf(blank)).toEqual(before);

    const again = await runStepback(restoreEmpty('--allow-empty', '--local-metadata', 'role=replica'));
    expect(again.code, again.stderr).toBe(0);
    expect(again.json).toMatchObject({ startedEmpty: true, localMetadataWritten: true });
    expect(await stateOf(blank)).toMatchObject({ running: true });
    const left = await leftovers(blank);
    recordFault({
      fault: 'agent killed at restore:started-empty, then another command',
      cases: 1,
      survived: left.length === 0 ? 1 : 0,
      rowsLost: 0,
      filesLeft: left.length,
    });
    expect(left).toEqual([]);
  });
});

describe('the binlog archive and a restore to a point killed', () => {
  let pitrSource: TestInstance;
  let pitrTarget: TestInstance;
  /** The source's last GTID, which every restore below reaches. */
  let lastGtid: string;
  const storageRoot = () => storage.slice('file://'.length);
  const archiveLock = () => `${pitrSource.datadir}.stepback-binlog-archive.lock`;
  const exists = async (file: string) => Boolean(await fs.stat(file).catch(() => undefined));
  const archive = (env: Record<string, string> = {}) =>
    runStepback(
      [
        'binlogs',
        'archive',
        '--defaults-file',
        pitrSource.cnf,
        '--storage',
        storage,
        '--dir',
        'shop/pitr',
        '--max-age',
        '0',
        '--json',
      ],
      { env },
    );
  const restoreToPoint = (...extra: string[]) => [
    'restore',
    '--defaults-file',
    pitrTarget.cnf,
    '--storage',
    storage,
    '--dir',
    'shop/pitr',
    '--to-gtid',
    lastGtid,
    ...extra,
    '--json',
  ];
  /** Rows of the source a restore to its last GTID did not bring back. */
  async function rowsLost(): Promise<number> {
    const count = async (instance: TestInstance) =>
      Number((await instance.query<[{ n: number }]>('SELECT COUNT(*) AS n FROM shop.items'))[0].n);
    return (await count(pitrSource)) - (await count(pitrTarget));
  }
  /** What a killed archive may leave: its lock, entries without a manifest, files no manifest names. */
  async function archiveLeftovers(): Promise<string[]> {
    const left = (await exists(archiveLock())) ? [archiveLock()] : [];
    const dir = path.join(storageRoot(), binlogArchiveDir('shop/pitr'));
    for (const entry of (await readBinlogArchive(new FileBackupStorage(storageRoot()), 'shop/pitr'))
      .entries) {
      if (!entry.complete) {
        left.push(entry.entry);
        continue;
      }
      const named = new Set([entry.manifest.object, BINLOG_MANIFEST_FILE]);
      for (const file of await fs.readdir(path.join(dir, entry.entry))) {
        if (!named.has(file)) left.push(`${entry.entry}/${file}`);
      }
    }
    return left;
  }

  beforeAll(async () => {
    [pitrSource, pitrTarget] = await Promise.all([
      createTestInstance({ name: 'death-pitr-source' }),
      createTestInstance({ name: 'death-pitr-target' }),
    ]);
    await fillRandom(pitrSource, 'shop', 'items', 100);
    const backup = await runStepback([
      'backup',
      '--defaults-file',
      pitrSource.cnf,
      '--storage',
      storage,
      '--dir',
      'shop/pitr',
      '--json',
    ]);
    expect(backup.code, backup.stderr).toBe(0);
    // Several binary logs after the backup, so that a replay can be killed between two of them.
    for (let file = 0; file < 3; file++) {
      await fillRandom(pitrSource, 'shop', 'items', 50);
      await pitrSource.query('FLUSH BINARY LOGS');
    }
    [{ lastGtid }] = await pitrSource.query<[{ lastGtid: string }]>(
      'SELECT @@GLOBAL.gtid_binlog_pos AS lastGtid',
    );
  });

  afterAll(async () => {
    await Promise.all([pitrSource?.dispose(), pitrTarget?.dispose()]);
  });

  it('binlogArchive:uploaded, then the archive again, then a restore to the last GTID', async () => {
    const killed = await archive({ STEPBACK_FAULT_PHASE: 'binlogArchive:uploaded' });
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    // An upload without its manifest, and the lock of a process that is gone.
    expect((await archiveLeftovers()).length).toBe(2);

    const next = await archive();
    expect(next.code, next.stderr).toBe(0);
    expect(next.stderr).toMatch(/is incomplete .*: uploading it again/);
    const left = await archiveLeftovers();
    const archived = await readBinlogArchive(new FileBackupStorage(storageRoot()), 'shop/pitr');
    expect(archived.gaps).toEqual([]);
    expect(archived.ranges.at(-1)?.gtidsTo).toBe(lastGtid);

    // What the archive holds is all of it: a restore to the last GTID has every row of the source.
    const restored = await runStepback(restoreToPoint());
    expect(restored.code, restored.stderr).toBe(0);
    expect(await tableChecksums(pitrTarget, 'shop')).toEqual(await tableChecksums(pitrSource, 'shop'));
    const lost = await rowsLost();
    recordFault({
      fault: 'agent killed at binlogArchive:uploaded, then the archive again',
      cases: 1,
      survived: left.length === 0 && lost === 0 ? 1 : 0,
      rowsLost: lost,
      filesLeft: left.length,
    });
    expect(left).toEqual([]);
  });

  it('restore:replaying, then the restore without deleteBeforeRestore, then the killed command again', async () => {
    const killed = await runStepback(restoreToPoint('--delete-before-restore'), {
      env: { STEPBACK_FAULT_PHASE: 'restore:replaying' },
    });
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    expect(await markerLeft(pitrTarget)).toBe(true);
    // Killed mid-replay: the backup's 100 rows and some, not all, of those written after it.
    const partial = await rowsLost();
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(150);
    expect(await leftovers(pitrTarget)).toEqual(
      expect.arrayContaining([expect.stringMatching(/\.stepback-binlogs-/)]),
    );

    // The backup and part of the binary logs are in place: not what was asked, and not replaced unasked.
    const next = await runStepback(restoreToPoint());
    expect(next.stderr).toContain('was interrupted; putting the instance back');
    expect(next.code, next.stderr).toBe(4);
    expect(next.json).toMatchObject({ error: { code: 'EXISTING_DATA' } });
    expect(await markerLeft(pitrTarget)).toBe(false);
    expect(await leftovers(pitrTarget)).toEqual([]);
    expect(await stateOf(pitrTarget)).toMatchObject({ running: true });

    const again = await runStepback(restoreToPoint('--delete-before-restore'));
    expect(again.code, again.stderr).toBe(0);
    expect(again.json).toMatchObject({ pointInTime: { point: `GTID ${lastGtid}` } });
    expect(await tableChecksums(pitrTarget, 'shop')).toEqual(await tableChecksums(pitrSource, 'shop'));
    const left = await leftovers(pitrTarget);
    const lost = await rowsLost();
    recordFault({
      fault: 'agent killed at restore:replaying, then another command',
      cases: 1,
      survived: left.length === 0 && lost === 0 ? 1 : 0,
      rowsLost: lost,
      filesLeft: left.length,
    });
    expect(left).toEqual([]);
  });
});

describe('the agent killed while an online backup of MySQL runs a server on its clone', () => {
  let mysql: TestInstance;
  const onlineBackup = (attempt: string, extra: string[] = []) => [
    'backup',
    '--defaults-file',
    mysql.cnf,
    '--mysqld',
    mysqldWrapper,
    '--storage',
    storage,
    '--dir',
    `shop/clone-${attempt}`,
    ...extra,
    '--json',
  ];
  const rows = async () =>
    Number((await mysql.query<[{ n: number }]>('SELECT COUNT(*) AS n FROM shop.items'))[0].n);
  const state = async () =>
    captureState(
      await MysqlDaemon.open({ defaultsFile: mysql.cnf, mysqld: mysqldWrapper, logger: silentLogger }),
    );

  beforeAll(async () => {
    mysql = await createMysqlInstance({ name: 'death-mysql' });
    await mysql.query('CREATE DATABASE shop');
    await mysql.query('CREATE TABLE shop.items (id INT PRIMARY KEY, note VARCHAR(100)) ENGINE=InnoDB');
    await mysql.query(
      "INSERT INTO shop.items WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 400) SELECT n, CONCAT('item ', n) FROM seq",
    );
  }, 60_000);

  afterAll(async () => {
    await mysql?.dispose();
  });

  // The followers: another online backup, and a cold one (which stops and restarts the server).
  const followers = [
    ['--engine', 'online'],
    ['--engine', 'physical'],
  ];
  for (const [index, follower] of (full ? followers : [followers[0]!]).entries()) {
    it(`backup:cloned, then backup ${follower.join(' ')} on the same instance, then the killed command again`, async () => {
      const attempt = String(index);
      const before = await state();
      const rowsBefore = await tableChecksums(mysql, 'shop');
      const countBefore = await rows();
      const killed = await runStepback(onlineBackup(attempt, ['--engine', 'online']), {
        env: { STEPBACK_FAULT_PHASE: 'backup:cloned' },
      });
      expect(killed.signal, killed.stderr).toBe('SIGKILL');
      expect(await markerLeft(mysql)).toBe(true);
      // Killed with a second mysqld running on the full copy beside the datadir.
      expect(await fs.stat(`${mysql.datadir}.stepback-clone`)).toBeTruthy();

      const next = await runStepback(onlineBackup(`${attempt}b`, follower));
      expect(next.stderr).toContain('was interrupted; putting the instance back');
      expect(next.stderr).toContain('stopped the mysqld started on the copy');
      expect(next.code, next.stderr).toBe(0);
      expect(await markerLeft(mysql)).toBe(false);
      expect(await state()).toEqual(before);

      const again = await runStepback(onlineBackup(`${attempt}c`, ['--engine', 'online']));
      expect(again.code, again.stderr).toBe(0);
      expect(await state()).toEqual(before);
      const rowsAfter = await tableChecksums(mysql, 'shop');
      const left = await leftovers(mysql);
      recordFault({
        fault: 'agent killed at backup:cloned (MySQL), then another command',
        cases: 1,
        survived: left.length === 0 ? 1 : 0,
        rowsLost: countBefore - (await rows()),
        filesLeft: left.length,
      });
      expect(rowsAfter).toEqual(rowsBefore);
      expect(left).toEqual([]);
    });
  }
});
