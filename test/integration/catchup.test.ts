import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MysqlDaemon } from '../../agent/mysqld/daemon.ts';
import { catchupInstance } from '../../agent/operations/catchup.ts';
import { runDiff } from '../../agent/operations/diff.ts';
import { multirestoreInstance } from '../../agent/operations/multirestore.ts';
import type { OperationContext } from '../../agent/operations/operation.ts';
import { snapshotInstance } from '../../agent/operations/snapshot.ts';
import { readEnvironment } from '../../core/environment.ts';
import { gtidPosition } from '../../core/gtid-position.ts';
import { silentLogger } from '../../core/log.ts';
import { CatchupRequest } from '../../core/operations/catchup.ts';
import { DiffRequest } from '../../core/operations/diff.ts';
import { MultirestoreRequest } from '../../core/operations/multirestore.ts';
import { SnapshotRequest } from '../../core/operations/snapshot.ts';
import { FileBackupStorage } from '../../core/storage/file.ts';
import { runStepback } from '../support/cli.ts';
import {
  createTestInstance,
  startReplication,
  type TestInstance,
  waitForReplica,
} from '../support/mariadb.ts';
import { tempDir } from '../support/root.ts';
import { createShardSchema, seedShard, startWriter } from '../support/shard-writer.ts';

let primary: TestInstance;
let replica: TestInstance;
let dest: TestInstance;
let storage: FileBackupStorage;

function context(): OperationContext {
  return {
    logger: silentLogger,
    progress: () => {},
    signal: new AbortController().signal,
    env: readEnvironment(),
  };
}

const uri = (instance: TestInstance, database: string) =>
  `mysql://root@localhost/${database}?socket=${encodeURIComponent(instance.socket)}`;

async function binlogPosition(instance: TestInstance): Promise<string> {
  const [{ pos }] = await instance.query<[{ pos: string }]>('SELECT @@GLOBAL.gtid_binlog_pos AS pos');
  return pos;
}

async function checkpointPosition(database: string): Promise<string> {
  const [row] = await dest.query<{ position: string }[]>(
    'SELECT position FROM _stepback.checkpoint WHERE db_name = ?',
    [database],
  );
  return row!.position;
}

/** Snapshots `database` on the replica into two ranges while the primary takes writes, and loads each range. */
async function splitUnderWrites(database: string, keyType: 'uint64' | 'bytes') {
  const writer = await startWriter(primary, database, keyType);
  await sleep(300);
  const snapshot = await snapshotInstance(
    await MysqlDaemon.open({ defaultsFile: replica.cnf, logger: silentLogger }),
    storage,
    SnapshotRequest.parse({
      storage: storage.url,
      defaultsFile: replica.cnf,
      dir: `${database}/0`,
      database,
      keyColumn: 'ksid',
      keyType,
      keyRanges: ['-80', '80-'],
    }),
    context(),
  );
  await sleep(300);
  const destinations = [];
  for (const entry of snapshot.snapshots) {
    const name = `${database}_${entry.keyRange === '-80' ? 'lo' : 'hi'}`;
    await multirestoreInstance(
      await MysqlDaemon.open({ defaultsFile: dest.cnf, logger: silentLogger }),
      storage,
      MultirestoreRequest.parse({
        storage: storage.url,
        defaultsFile: dest.cnf,
        sources: [`${entry.dir}@${entry.name}`],
        database: name,
        checkpoints: true,
      }),
      context(),
    );
    destinations.push({ database: name, keyRange: entry.keyRange, position: snapshot.position });
  }
  const transactions = await writer.stop();
  return { destinations, transactions };
}

async function expectSameRows(database: string, copy: string, keyRange: string, keyType: 'uint64' | 'bytes') {
  const report = await runDiff(
    DiffRequest.parse({
      left: uri(primary, database),
      right: uri(dest, copy),
      leftKeyRange: keyRange,
      keyColumn: 'ksid',
      keyType,
    }),
    context(),
  );
  expect(report.total).toMatchObject({ mismatched: 0, extraLeft: 0, extraRight: 0 });
  expect(report.tables.length).toBe(3);
}

beforeAll(async () => {
  [primary, replica, dest] = await Promise.all([
    createTestInstance({ name: 'catchup-primary' }),
    createTestInstance({ name: 'catchup-replica' }),
    createTestInstance({ name: 'catchup-dest' }),
  ]);
  storage = new FileBackupStorage(await tempDir('catchup-storage'));
  await startReplication(replica, primary);
  await createShardSchema(primary, 'shop', 'uint64');
  await seedShard(primary, 'shop', 'uint64', 300);
  await createShardSchema(primary, 'vshop', 'bytes');
  await seedShard(primary, 'vshop', 'bytes', 200);
  await waitForReplica(replica, primary);
});

afterAll(async () => {
  await Promise.all([primary?.dispose(), replica?.dispose(), dest?.dispose()]);
});

describe('catchup', () => {
  it('catches two key ranges up from a snapshot taken under writes, to the same rows as the source', async () => {
    const { destinations, transactions } = await splitUnderWrites('shop', 'uint64');
    expect(transactions).toBeGreaterThan(10);
    const until = await binlogPosition(primary);
    for (const destination of destinations) {
      const result = await catchupInstance(
        await MysqlDaemon.open({ defaultsFile: dest.cnf, logger: silentLogger }),
        CatchupRequest.parse({
          defaultsFile: dest.cnf,
          database: destination.database,
          source: uri(primary, 'shop'),
          keyRange: destination.keyRange,
          keyColumn: 'ksid',
          until,
        }),
        context(),
      );
      expect(result.stoppedAt).toBe('position');
      expect(result.rowsApplied).toBeGreaterThan(0);
      expect(result.autoIncrementTables).toEqual(['customers']);
      expect(gtidPosition('mariadb', result.position).covers(until)).toBe(true);
      expect(await checkpointPosition(destination.database)).toBe(result.position);
      await expectSameRows('shop', destination.database, destination.keyRange, 'uint64');
    }
  });

  it('resumes a catch-up killed between two commits with nothing lost and nothing twice (binary keyspace ids, CLI)', async () => {
    const { destinations } = await splitUnderWrites('vshop', 'bytes');
    const until = await binlogPosition(primary);
    for (const destination of destinations) {
      const args = [
        'catchup',
        '--defaults-file',
        dest.cnf,
        '--database',
        destination.database,
        '--source',
        uri(primary, 'vshop'),
        '--key-range',
        destination.keyRange,
        '--key-column',
        'ksid',
        '--key-type',
        'bytes',
        '--until',
        until,
      ];
      const start = await checkpointPosition(destination.database);
      const killed = await runStepback(args, { env: { STEPBACK_FAULT_PHASE: 'catchup:applying' } });
      expect(killed.signal).toBe('SIGKILL');
      const between = await checkpointPosition(destination.database);
      expect(between).not.toBe(start);

      const run = await runStepback([...args, '--json']);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toContain(`catching up ${destination.database}`);
      expect(run.json).toMatchObject({
        database: destination.database,
        stoppedAt: 'position',
        startPosition: between,
      });
      expect(gtidPosition('mariadb', (run.json as { position: string }).position).covers(until)).toBe(true);
      await expectSameRows('vshop', destination.database, destination.keyRange, 'bytes');
    }
  });

  it('applies a backlog far larger than the reader holds in memory, with nothing lost', async () => {
    const c = await primary.connect();
    try {
      for (let t = 0; t < 600; t++) {
        await c.query('START TRANSACTION');
        const values = Array.from({ length: 20 }, () => '(?, ?)').join(', ');
        const params = Array.from({ length: 20 }, (_, i) => [
          String((BigInt(t * 20 + i) * 0x9e3779b97f4a7c15n) % (1n << 64n)),
          `bulk ${t}`,
        ]).flat();
        await c.query(`INSERT INTO shop.customers (ksid, name) VALUES ${values}`, params);
        await c.query("UPDATE shop.customers SET note = 'touched' WHERE name = ?", [`bulk ${t}`]);
        await c.query('COMMIT');
      }
    } finally {
      await c.end();
    }
    const until = await binlogPosition(primary);
    for (const [database, keyRange] of [
      ['shop_lo', '-80'],
      ['shop_hi', '80-'],
    ] as const) {
      const result = await catchupInstance(
        await MysqlDaemon.open({ defaultsFile: dest.cnf, logger: silentLogger }),
        CatchupRequest.parse({
          defaultsFile: dest.cnf,
          database,
          source: uri(primary, 'shop'),
          keyRange,
          keyColumn: 'ksid',
          until,
        }),
        context(),
      );
      expect(result.stoppedAt).toBe('position');
      await expectSameRows('shop', database, keyRange, 'uint64');
    }
  });

  it('stops once the lag is small when no position is given', async () => {
    await primary.query("INSERT INTO shop.customers (ksid, name) VALUES (1, 'late')");
    const result = await catchupInstance(
      await MysqlDaemon.open({ defaultsFile: dest.cnf, logger: silentLogger }),
      CatchupRequest.parse({
        defaultsFile: dest.cnf,
        database: 'shop_lo',
        source: uri(primary, 'shop'),
        keyRange: '-80',
        keyColumn: 'ksid',
        maxLagSeconds: 0,
      }),
      context(),
    );
    expect(result).toMatchObject({ stoppedAt: 'lag', lagSeconds: 0, rowsApplied: 1 });
    await expectSameRows('shop', 'shop_lo', '-80', 'uint64');
  });

  it('fails when the position is not reached in time, keeping what it applied', async () => {
    const [domain, server] = (await binlogPosition(primary)).split('-');
    const error = await catchupInstance(
      await MysqlDaemon.open({ defaultsFile: dest.cnf, logger: silentLogger }),
      CatchupRequest.parse({
        defaultsFile: dest.cnf,
        database: 'shop_lo',
        source: uri(primary, 'shop'),
        keyRange: '-80',
        keyColumn: 'ksid',
        until: `${domain}-${server}-99999999`,
        timeoutSeconds: 1,
      }),
      context(),
    ).catch((e: unknown) => e as Error);
    expect((error as Error).message).toMatch(/did not reach .* within 1s; it applied up to /);
  });

  it('refuses a source whose binary log lacks full row images, naming the setting', async () => {
    await primary.query("SET GLOBAL binlog_row_image = 'MINIMAL'");
    try {
      const error = await catchupInstance(
        await MysqlDaemon.open({ defaultsFile: dest.cnf, logger: silentLogger }),
        CatchupRequest.parse({
          defaultsFile: dest.cnf,
          database: 'shop_hi',
          source: uri(primary, 'shop'),
          keyRange: '80-',
          keyColumn: 'ksid',
        }),
        context(),
      ).catch((e: unknown) => e as Error);
      expect((error as Error).message).toContain('MINIMAL row images');
      expect((error as { hint?: string }).hint).toContain('binlog_row_image=FULL');
    } finally {
      await primary.query("SET GLOBAL binlog_row_image = 'FULL'");
    }
  });

  it('stops at a schema change of a copied table, naming the statement, with the rows before it applied', async () => {
    await primary.query("INSERT INTO shop.customers (ksid, name) VALUES (2, 'before the change')");
    const before = await binlogPosition(primary);
    await primary.query('ALTER TABLE shop.customers ADD COLUMN loyalty INT NULL');
    const error = await catchupInstance(
      await MysqlDaemon.open({ defaultsFile: dest.cnf, logger: silentLogger }),
      CatchupRequest.parse({
        defaultsFile: dest.cnf,
        database: 'shop_lo',
        source: uri(primary, 'shop'),
        keyRange: '-80',
        keyColumn: 'ksid',
        until: await binlogPosition(primary),
      }),
      context(),
    ).catch((e: unknown) => e as Error);
    expect((error as Error).message).toContain('ALTER TABLE shop.customers ADD COLUMN loyalty INT NULL');
    expect(gtidPosition('mariadb', await checkpointPosition('shop_lo')).covers(before)).toBe(true);
    const [row] = await dest.query<{ n: number }[]>(
      "SELECT COUNT(*) AS n FROM shop_lo.customers WHERE name = 'before the change'",
    );
    expect(Number(row!.n)).toBe(1);
  });
});
