import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FaultPhase } from '../../agent/instance/fault.ts';
import { captureState, type InstanceState } from '../../agent/instance/state.ts';
import { MysqlDaemon } from '../../agent/mysqld/daemon.ts';
import { silentLogger } from '../../core/log.ts';
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
 * The agent killed (SIGKILL, no cleanup) at each named phase of backup, restore, snapshot and
 * multirestore, then another command on the same instance: it must finish or undo what the killed
 * one left, and leave the instance running as it was found, holding either the old data or the
 * complete new data; then the killed command, run again, completes. FAULTS_FULL=1 runs every other
 * command after every phase; the default runs one, rotating.
 */

const full = process.env.FAULTS_FULL === '1';

let primary: TestInstance;
let replica: TestInstance;
let target: TestInstance;
let storage: string;

type Command = 'backup' | 'restore' | 'snapshot' | 'multirestore';

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
  }
}

const cases: { phase: FaultPhase; command: Command; on: 'replica' | 'target' }[] = [
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
    const followers = followersOn[testCase.on];
    for (const follower of full ? followers : [followers[index % followers.length]!]) {
      it(`${testCase.phase}, then ${follower} on the same instance, then the killed command again`, async () => {
        const instance = testCase.on === 'replica' ? replica : target;
        const attempt = String(++round);
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
        const [{ kept }] = await instance.query<[{ kept: number }]>(
          'SELECT COUNT(*) AS kept FROM shop.items',
        );
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
