import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mysqlFlavor } from '../../agent/mysql/flavor.ts';
import type { SnapshotResult } from '../../agent/operations/snapshot.ts';
import type { PrivateInstance } from '../../local/private-instance.ts';
import { runStepback } from '../support/cli.ts';
import { tableChecksums } from '../support/data.ts';
import { createMysqlInstance, gtidExecuted, mysqldWrapper } from '../support/mysql.ts';
import { tempDir } from '../support/root.ts';
import { createLedger, startLedgerWriter, unbalancedAccounts } from '../support/writer.ts';

let source: PrivateInstance;
let target: PrivateInstance;
let storage: string;

beforeAll(async () => {
  [source, target] = await Promise.all([
    createMysqlInstance({ name: 'consistent-source' }),
    createMysqlInstance({ name: 'consistent-target' }),
  ]);
  storage = `file://${await tempDir('mysql-consistent-storage')}`;
  await source.query("CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'repl-secret'");
  await source.query("GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'");
  await createLedger(source, 'ledger', 100_000);
}, 120_000);

afterAll(async () => {
  await Promise.all([source?.dispose(), target?.dispose()]);
});

async function writesGoOn(writer: { commits: number }, more: number): Promise<void> {
  const target = writer.commits + more;
  while (writer.commits < target) await new Promise((resolve) => setTimeout(resolve, 10));
}

describe('a snapshot of a MySQL 9.7 primary that does not freeze it (needs .stepback-mysql/)', () => {
  it('holds no write for a second under a running writer, and is consistent at the recorded position', async () => {
    const writer = await startLedgerWriter(source, 'ledger');
    let measured: { commits: number; maxLatencyMs: number };
    let run: Awaited<ReturnType<typeof runStepback>>;
    let commitsDuring: number;
    try {
      await writesGoOn(writer, 50);
      const before = writer.commits;
      run = await runStepback([
        'snapshot',
        '--defaults-file',
        source.cnf,
        '--mysqld',
        mysqldWrapper,
        '--storage',
        storage,
        '--dir',
        'ledger/0',
        '--database',
        'ledger',
        '--concurrency',
        '2',
        '--json',
      ]);
      commitsDuring = writer.commits - before;
      await writesGoOn(writer, 50);
    } finally {
      measured = await writer.stop();
    }
    expect(run.code, run.stderr).toBe(0);
    const result = run.json as unknown as SnapshotResult;
    expect(commitsDuring).toBeGreaterThan(0);
    expect(measured.maxLatencyMs).toBeLessThan(1000);
    expect(result.consistency).toMatchObject({ method: 'consistent-read', held: 'writes' });
    expect(result.consistency.heldSeconds).toBeLessThan(1);
    const [{ ro, sro }] = await source.query<[{ ro: number; sro: number }]>(
      'SELECT @@GLOBAL.read_only AS ro, @@GLOBAL.super_read_only AS sro',
    );
    expect([Number(ro), Number(sro)]).toEqual([0, 0]);

    const load = await runStepback([
      'multirestore',
      '--defaults-file',
      target.cnf,
      '--mysqld',
      mysqldWrapper,
      '--storage',
      storage,
      '--sources',
      'ledger/0',
      '--database',
      'ledger',
      '--json',
    ]);
    expect(load.code, load.stderr).toBe(0);
    expect(await unbalancedAccounts(target, 'ledger')).toEqual([]);

    // A replica started at the recorded position ends identical to the source.
    const connection = await target.connect();
    try {
      await mysqlFlavor.setRestoredPosition(connection, result.position);
      await mysqlFlavor.configureReplication(connection, {
        host: '127.0.0.1',
        port: source.port,
        user: 'repl',
        password: 'repl-secret',
      });
      await connection.query('CHANGE REPLICATION SOURCE TO GET_SOURCE_PUBLIC_KEY = 1');
      await mysqlFlavor.startReplication(connection);
      const caughtUp = await mysqlFlavor.waitForPosition(connection, await gtidExecuted(source), 60);
      const status = await mysqlFlavor.replicationStatus(connection);
      expect(caughtUp, status.lastError).toBe(true);
      expect(await tableChecksums(target, 'ledger')).toEqual(await tableChecksums(source, 'ledger'));
      await mysqlFlavor.stopReplication(connection);
    } finally {
      await connection.end();
    }
  }, 180_000);

  it('quiesces with super_read_only for the whole dump when a table is MyISAM, and puts it back', async () => {
    await source.query('CREATE DATABASE mixed');
    await source.query('CREATE TABLE mixed.orders (id INT PRIMARY KEY) ENGINE=InnoDB');
    await source.query('CREATE TABLE mixed.legacy (id INT PRIMARY KEY) ENGINE=MyISAM');
    await source.query('INSERT INTO mixed.legacy VALUES (1), (2)');
    const run = await runStepback([
      'snapshot',
      '--defaults-file',
      source.cnf,
      '--mysqld',
      mysqldWrapper,
      '--storage',
      storage,
      '--dir',
      'mixed/0',
      '--database',
      'mixed',
      '--json',
    ]);
    expect(run.code, run.stderr).toBe(0);
    const result = run.json as unknown as SnapshotResult;
    expect(result.consistency).toMatchObject({ method: 'stopped', held: 'writes' });
    expect(result.consistency.why).toContain('"legacy" (MyISAM) is not InnoDB');
    // super_read_only=1 (the flavor's stopWrites) went back off with read_only.
    expect(run.stderr).toContain('instance put back: set read_only=OFF');
    const [{ ro, sro }] = await source.query<[{ ro: number; sro: number }]>(
      'SELECT @@GLOBAL.read_only AS ro, @@GLOBAL.super_read_only AS sro',
    );
    expect([Number(ro), Number(sro)]).toEqual([0, 0]);
  }, 120_000);

  it('splits a database by a uint64 keyspace id into two ranges and merges them back, each range at one position', async () => {
    await source.query('CREATE DATABASE split');
    await source.query(
      'CREATE TABLE split.customers (id INT PRIMARY KEY, ksid BIGINT UNSIGNED NOT NULL, name VARCHAR(50), doc JSON) ENGINE=InnoDB',
    );
    await source.query(
      "INSERT INTO split.customers WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 900) SELECT n, CAST(CONV(LEFT(SHA2(n, 256), 16), 16, 10) AS UNSIGNED), CONCAT('customer ', n), JSON_OBJECT('n', n) FROM seq",
    );
    const snapshot = await runStepback([
      'snapshot',
      '--defaults-file',
      source.cnf,
      '--mysqld',
      mysqldWrapper,
      '--storage',
      storage,
      '--dir',
      'split/0',
      '--database',
      'split',
      '--key-column',
      'ksid',
      '--key-type',
      'uint64',
      '--shards',
      '2',
      '--json',
    ]);
    expect(snapshot.code, snapshot.stderr).toBe(0);
    const result = snapshot.json as unknown as SnapshotResult;
    expect(result.consistency.method).toBe('consistent-read');
    expect(result.snapshots.map((s) => s.dir)).toEqual(['split/0/-80', 'split/0/80-']);

    const load = async (sources: string, database: string) => {
      const run = await runStepback([
        'multirestore',
        '--defaults-file',
        target.cnf,
        '--mysqld',
        mysqldWrapper,
        '--storage',
        storage,
        '--sources',
        sources,
        '--database',
        database,
        '--json',
      ]);
      expect(run.code, run.stderr).toBe(0);
    };
    await load('split/0/-80', 'split_low');
    await load('split/0/80-', 'split_high');
    await load('split/0/-80,split/0/80-', 'split');
    const count = async (instance: PrivateInstance, sql: string) =>
      Number((await instance.query<[{ n: number }]>(sql))[0].n);
    const half = 'ksid < 9223372036854775808';
    expect(await count(target, 'SELECT COUNT(*) AS n FROM split_low.customers')).toBe(
      await count(source, `SELECT COUNT(*) AS n FROM split.customers WHERE ${half}`),
    );
    expect(await count(target, `SELECT COUNT(*) AS n FROM split_high.customers WHERE ${half}`)).toBe(0);
    expect(
      (await count(target, 'SELECT COUNT(*) AS n FROM split_low.customers')) +
        (await count(target, 'SELECT COUNT(*) AS n FROM split_high.customers')),
    ).toBe(900);
    expect(await tableChecksums(target, 'split')).toEqual(await tableChecksums(source, 'split'));
  }, 120_000);
});
