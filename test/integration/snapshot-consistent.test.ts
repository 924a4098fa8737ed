import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from '../../agent/mysql/connection.ts';
import { MysqlDaemon } from '../../agent/mysqld/daemon.ts';
import { type SnapshotResult, snapshotInstance } from '../../agent/operations/snapshot.ts';
import { VerificationError } from '../../core/errors.ts';
import { recordingLogger, silentLogger } from '../../core/log.ts';
import { SnapshotRequest } from '../../core/operations/snapshot.ts';
import { FileBackupStorage } from '../../core/storage/file.ts';
import { snapshotDir } from '../../core/storage/layout.ts';
import { runStepback } from '../support/cli.ts';
import { tableChecksums } from '../support/data.ts';
import {
  createTestInstance,
  startReplication,
  type TestInstance,
  waitForReplica,
} from '../support/mariadb.ts';
import { tempDir } from '../support/root.ts';
import { createLedger, startLedgerWriter, unbalancedAccounts } from '../support/writer.ts';

let primary: TestInstance;
let replica: TestInstance;
let dest: TestInstance;
let storage: string;
let storageRoot: string;

beforeAll(async () => {
  [primary, replica, dest] = await Promise.all([
    createTestInstance({ name: 'consistent-primary' }),
    createTestInstance({ name: 'consistent-replica' }),
    createTestInstance({ name: 'consistent-dest' }),
  ]);
  storageRoot = await tempDir('consistent-storage');
  storage = `file://${storageRoot}`;
  await startReplication(replica, primary);
  await createLedger(primary, 'ledger', 150_000);
  await waitForReplica(replica, primary);
}, 120_000);

afterAll(async () => {
  await Promise.all([primary?.dispose(), replica?.dispose(), dest?.dispose()]);
});

async function snapshot(instance: TestInstance, dir: string, database: string, ...flags: string[]) {
  const run = await runStepback([
    'snapshot',
    '--defaults-file',
    instance.cnf,
    '--storage',
    storage,
    '--dir',
    dir,
    '--database',
    database,
    '--concurrency',
    '2',
    '--max-file-size',
    '4MiB',
    ...flags,
    '--json',
  ]);
  expect(run.code, run.stderr).toBe(0);
  return { result: run.json as unknown as SnapshotResult, stderr: run.stderr };
}

async function load(dir: string, database: string): Promise<void> {
  const run = await runStepback([
    'multirestore',
    '--defaults-file',
    dest.cnf,
    '--storage',
    storage,
    '--sources',
    dir,
    '--database',
    database,
    '--json',
  ]);
  expect(run.code, run.stderr).toBe(0);
}

async function replicationRunning(instance: TestInstance): Promise<boolean> {
  const [status] = await instance.query<Record<string, string>[]>('SHOW SLAVE STATUS');
  return status?.Slave_SQL_Running === 'Yes' && status.Slave_IO_Running !== 'No';
}

/** Writes until the writer has committed `more` transactions beyond now. */
async function writesGoOn(writer: { commits: number }, more: number): Promise<void> {
  const target = writer.commits + more;
  while (writer.commits < target) await sleep(10);
}

describe('a snapshot that does not freeze the source (consistent-snapshot sessions)', () => {
  it('snapshots a primary under a running writer, holding no write for a second, consistent at the recorded position', async () => {
    const writer = await startLedgerWriter(primary, 'ledger');
    let measured: { commits: number; maxLatencyMs: number };
    let commitsDuring: number;
    let result: SnapshotResult;
    try {
      await writesGoOn(writer, 50);
      const before = writer.commits;
      ({ result } = await snapshot(primary, 'ledger/0', 'ledger'));
      commitsDuring = writer.commits - before;
      await writesGoOn(writer, 50);
    } finally {
      measured = await writer.stop();
    }
    // The writer kept committing through the snapshot, and none of its transactions waited a second.
    expect(commitsDuring).toBeGreaterThan(0);
    expect(measured.maxLatencyMs).toBeLessThan(1000);
    expect(result.consistency).toMatchObject({ method: 'consistent-read', held: 'writes' });
    expect(result.consistency.heldSeconds).toBeLessThan(1);
    expect(result.role).toBe('primary');
    const [{ ro }] = await primary.query<[{ ro: number }]>('SELECT @@GLOBAL.read_only AS ro');
    expect(Number(ro)).toBe(0);

    // Loaded into a fresh instance, the ledger balances: both tables were read at one point.
    await load('ledger/0', 'ledger');
    expect(await unbalancedAccounts(dest, 'ledger')).toEqual([]);
    // Replicating from the recorded position (and only from it) ends identical to the source.
    await dest.query('SET GLOBAL gtid_slave_pos = ?', [result.position]);
    await dest.query(
      `CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=${primary.port}, MASTER_USER='root', MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos`,
    );
    await dest.query('START SLAVE');
    try {
      await waitForReplica(dest, primary);
      expect(await tableChecksums(dest, 'ledger')).toEqual(await tableChecksums(primary, 'ledger'));
    } finally {
      await dest.query('STOP SLAVE');
      await dest.query('RESET SLAVE ALL');
    }
  }, 120_000);

  it('gives up the write lock after a second when a long write statement runs, lets writes flow, and tries again', async () => {
    await primary.query('CREATE DATABASE slow');
    await primary.query('CREATE TABLE slow.t (id INT PRIMARY KEY, v INT) ENGINE=InnoDB');
    await primary.query('INSERT INTO slow.t SELECT seq, 0 FROM slow.seq_1_to_40');
    // About 4 s in one statement: the lock cannot be taken while it runs.
    const longWrite = primary.query('UPDATE slow.t SET v = v + 1 WHERE SLEEP(0.1) = 0');
    for (;;) {
      const running = await primary.query<unknown[]>(
        "SELECT 1 FROM information_schema.PROCESSLIST WHERE INFO LIKE 'UPDATE slow.t%'",
      );
      if (running.length > 0) break;
      await sleep(20);
    }
    const logger = recordingLogger();
    const result = await snapshotInstance(
      await MysqlDaemon.open({ defaultsFile: primary.cnf, logger: silentLogger }),
      new FileBackupStorage(storageRoot),
      SnapshotRequest.parse({
        storage,
        defaultsFile: primary.cnf,
        dir: 'ledger/long-write',
        database: 'ledger',
      }),
      { logger, progress: () => {}, signal: new AbortController().signal },
    );
    await longWrite;
    expect(logger.records.map((r) => r.message)).toContainEqual(
      expect.stringContaining(
        'FLUSH TABLES WITH READ LOCK waited 1s for a running statement; writes flow again',
      ),
    );
    expect(result.consistency).toMatchObject({ method: 'consistent-read', held: 'writes' });
    const [{ n }] = await primary.query<[{ n: number }]>('SELECT COUNT(*) AS n FROM slow.t WHERE v = 1');
    expect(Number(n)).toBe(40);
  }, 120_000);

  it('snapshots a replica with replication stopped only while the sessions open, then replicating again', async () => {
    const writer = await startLedgerWriter(primary, 'ledger');
    let result: SnapshotResult;
    try {
      await writesGoOn(writer, 20);
      ({ result } = await snapshot(replica, 'ledger/replica', 'ledger'));
      await writesGoOn(writer, 20);
    } finally {
      await writer.stop();
    }
    expect(result.role).toBe('replica');
    expect(result.consistency).toMatchObject({ method: 'consistent-read', held: 'replication' });
    expect(result.consistency.heldSeconds).toBeLessThan(1);
    expect(result.replicationKeptStopped).toBe(false);
    expect(await replicationRunning(replica)).toBe(true);
    await load('ledger/replica', 'ledger_of_replica');
    expect(await unbalancedAccounts(dest, 'ledger_of_replica')).toEqual([]);
    await waitForReplica(replica, primary);
  }, 120_000);

  it('leaves a replica with replication stopped when asked (--keep-replication-stopped), and says so', async () => {
    const { result, stderr } = await snapshot(replica, 'ledger/kept', 'ledger', '--keep-replication-stopped');
    expect(result.replicationKeptStopped).toBe(true);
    expect(stderr).toContain('replication stays stopped after the snapshot');
    const [status] = await replica.query<Record<string, string>[]>('SHOW SLAVE STATUS');
    expect([status?.Slave_IO_Running, status?.Slave_SQL_Running]).toEqual(['No', 'No']);
    // What it was taken at is where the stopped replica still is.
    const [{ pos }] = await replica.query<[{ pos: string }]>('SELECT @@GLOBAL.gtid_current_pos AS pos');
    expect(result.position).toBe(pos);
    await replica.query('START SLAVE');
    await waitForReplica(replica, primary);
  }, 120_000);

  it('quiesces for the whole dump when a table is not InnoDB, naming it and why', async () => {
    await primary.query('CREATE DATABASE mixed');
    await primary.query('CREATE TABLE mixed.orders (id INT PRIMARY KEY, note VARCHAR(20)) ENGINE=InnoDB');
    await primary.query('CREATE TABLE mixed.legacy (id INT PRIMARY KEY, note VARCHAR(20)) ENGINE=MyISAM');
    await primary.query("INSERT INTO mixed.orders VALUES (1, 'a'), (2, 'b')");
    await primary.query("INSERT INTO mixed.legacy VALUES (1, 'old')");
    const { result, stderr } = await snapshot(primary, 'mixed/0', 'mixed');
    expect(result.consistency.method).toBe('stopped');
    expect(result.consistency.why).toContain('"legacy" (MyISAM) is not InnoDB');
    expect(result.consistency.held).toBe('writes');
    expect(stderr).toContain('making the primary read-only');
    const [{ ro }] = await primary.query<[{ ro: number }]>('SELECT @@GLOBAL.read_only AS ro');
    expect(Number(ro)).toBe(0);
    await load('mixed/0', 'mixed');
    expect(await tableChecksums(dest, 'mixed')).toEqual(await tableChecksums(primary, 'mixed'));
  }, 120_000);

  it('fails when a table changes between the schema read and the sessions (DDL during the snapshot), keeping nothing', async () => {
    const daemon = await MysqlDaemon.open({ defaultsFile: replica.cnf, logger: silentLogger });
    // An ALTER the binary log does not see (so the position does not move) lands on the stopped
    // replica after the schema was read and before the sessions open: their rows have a column the
    // schema read before does not.
    const flavor = daemon.flavor;
    let altered = false;
    Object.defineProperty(daemon, 'flavor', {
      value: {
        ...flavor,
        async executedPosition(connection: Connection) {
          if (!altered) {
            altered = true;
            await connection.query('SET SESSION sql_log_bin = 0');
            await connection.query('ALTER TABLE ledger.accounts ADD COLUMN opened DATE NULL');
            await connection.query('SET SESSION sql_log_bin = 1');
          }
          return flavor.executedPosition(connection);
        },
      },
    });
    const fileStorage = new FileBackupStorage(storageRoot);
    try {
      const error = await snapshotInstance(
        daemon,
        fileStorage,
        SnapshotRequest.parse({
          storage,
          defaultsFile: replica.cnf,
          dir: 'ledger/altered',
          database: 'ledger',
          concurrency: 2,
        }),
        { logger: silentLogger, progress: () => {}, signal: new AbortController().signal },
      ).catch((e: unknown) => e);
      expect(altered).toBe(true);
      expect(error).toBeInstanceOf(VerificationError);
      expect((error as Error).message).toContain('the schema changed during the snapshot ("accounts")');
      expect(await fileStorage.listBackups(snapshotDir('ledger/altered'))).toEqual([]);
      expect(await replicationRunning(replica)).toBe(true);
    } finally {
      const connection = await replica.connect();
      try {
        await connection.query('SET SESSION sql_log_bin = 0');
        await connection.query('ALTER TABLE ledger.accounts DROP COLUMN opened');
      } finally {
        await connection.end();
      }
    }
  }, 120_000);
});
