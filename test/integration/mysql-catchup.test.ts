import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CatchupResult } from '../../agent/operations/catchup.ts';
import { runDiff } from '../../agent/operations/diff.ts';
import type { OperationContext } from '../../agent/operations/operation.ts';
import type { SnapshotResult } from '../../agent/operations/snapshot.ts';
import { readEnvironment } from '../../core/environment.ts';
import { gtidPosition } from '../../core/gtid-position.ts';
import { silentLogger } from '../../core/log.ts';
import { DiffRequest } from '../../core/operations/diff.ts';
import type { PrivateInstance } from '../../local/private-instance.ts';
import { runStepback } from '../support/cli.ts';
import { createMysqlInstance, mysqldWrapper } from '../support/mysql.ts';
import { tempDir } from '../support/root.ts';
import { createShardSchema, seedShard, startWriter } from '../support/shard-writer.ts';

let source: PrivateInstance;
let dest: PrivateInstance;
let storage: string;

const context = (): OperationContext => ({
  logger: silentLogger,
  progress: () => {},
  signal: new AbortController().signal,
  env: readEnvironment(),
});

const uri = (instance: PrivateInstance, database: string) =>
  `mysql://root@localhost/${database}?socket=${encodeURIComponent(instance.socket)}`;

const gtidExecuted = async (instance: PrivateInstance) =>
  String((await instance.query<[{ set: string }]>('SELECT @@GLOBAL.gtid_executed AS `set`'))[0].set).replace(
    /\n/g,
    '',
  );

const catchupArgs = (database: string, keyRange: string, until: string) => [
  'catchup',
  '--defaults-file',
  dest.cnf,
  '--mysqld',
  mysqldWrapper,
  '--database',
  database,
  '--source',
  uri(source, 'shop'),
  '--key-range',
  keyRange,
  '--key-column',
  'ksid',
  '--until',
  until,
  '--json',
];

beforeAll(async () => {
  [source, dest] = await Promise.all([
    // MySQL logs MINIMAL row metadata by default; catch-up needs the column names in the log.
    createMysqlInstance({ name: 'catchup-source', extraCnf: ['binlog-row-metadata=FULL'] }),
    createMysqlInstance({ name: 'catchup-dest' }),
  ]);
  storage = `file://${await tempDir('mysql-catchup-storage')}`;
  await createShardSchema(source, 'shop', 'uint64');
  await seedShard(source, 'shop', 'uint64', 300);
}, 180_000);

afterAll(async () => {
  await Promise.all([source?.dispose(), dest?.dispose()]);
});

describe('catch-up from a MySQL 9.7 source (needs .stepback-mysql/)', () => {
  it('catches two key ranges up from a snapshot taken under writes, to the same rows as the source', async () => {
    const writer = await startWriter(source, 'shop', 'uint64');
    let snapshot: SnapshotResult;
    try {
      await sleep(300);
      const run = await runStepback([
        'snapshot',
        '--defaults-file',
        source.cnf,
        '--mysqld',
        mysqldWrapper,
        '--storage',
        storage,
        '--dir',
        'shop/0',
        '--database',
        'shop',
        '--key-column',
        'ksid',
        '--key-type',
        'uint64',
        '--key-ranges',
        '-80,80-',
        '--json',
      ]);
      expect(run.code, run.stderr).toBe(0);
      snapshot = run.json as unknown as SnapshotResult;
      for (const entry of snapshot.snapshots) {
        const load = await runStepback([
          'multirestore',
          '--defaults-file',
          dest.cnf,
          '--mysqld',
          mysqldWrapper,
          '--storage',
          storage,
          '--sources',
          `${entry.dir}@${entry.name}`,
          '--database',
          `shop_${entry.keyRange === '-80' ? 'lo' : 'hi'}`,
          '--checkpoints',
          '--json',
        ]);
        expect(load.code, load.stderr).toBe(0);
      }
      await sleep(300);
    } finally {
      expect(await writer.stop()).toBeGreaterThan(10);
    }
    // A MySQL position: the source's uuid and its transaction numbers.
    expect(snapshot.position).toMatch(/^[0-9a-f-]{36}:\d+(-\d+)?$/);
    const until = await gtidExecuted(source);
    for (const keyRange of ['-80', '80-']) {
      const database = `shop_${keyRange === '-80' ? 'lo' : 'hi'}`;
      const run = await runStepback(catchupArgs(database, keyRange, until));
      expect(run.code, run.stderr).toBe(0);
      const result = run.json as unknown as CatchupResult;
      expect(result).toMatchObject({ stoppedAt: 'position', startPosition: snapshot.position });
      expect(result.rowsApplied).toBeGreaterThan(0);
      expect(gtidPosition('mysql', result.position).covers(until)).toBe(true);
      const report = await runDiff(
        DiffRequest.parse({
          left: uri(source, 'shop'),
          right: uri(dest, database),
          leftKeyRange: keyRange,
          keyColumn: 'ksid',
          keyType: 'uint64',
        }),
        context(),
      );
      expect(report.total).toMatchObject({ mismatched: 0, extraLeft: 0, extraRight: 0 });
      expect(report.tables.length).toBe(3);
    }
  }, 240_000);

  it('refuses a source that compresses its transactions, naming the setting, and applies nothing', async () => {
    const [before] = await dest.query<{ position: string }[]>(
      "SELECT position FROM _stepback.checkpoint WHERE db_name = 'shop_lo'",
    );
    await source.query('SET GLOBAL binlog_transaction_compression = ON');
    try {
      await source.query("INSERT INTO shop.audit (ksid, line) VALUES (1, 'compressed')");
      const run = await runStepback(catchupArgs('shop_lo', '-80', await gtidExecuted(source)));
      expect(run.code).not.toBe(0);
      expect(run.stderr).toContain('compresses transactions');
      expect(run.stderr).toContain('binlog_transaction_compression=OFF');
    } finally {
      await source.query('SET GLOBAL binlog_transaction_compression = OFF');
    }
    const [after] = await dest.query<{ position: string }[]>(
      "SELECT position FROM _stepback.checkpoint WHERE db_name = 'shop_lo'",
    );
    expect(after!.position).toBe(before!.position);
  });

  it('fails, keeping its checkpoint before it, at a transaction a session compressed for itself', async () => {
    const c = await source.connect();
    try {
      await c.query('SET SESSION binlog_transaction_compression = ON');
      await c.query("INSERT INTO shop.audit (ksid, line) VALUES (2, 'compressed by its session')");
    } finally {
      await c.end();
    }
    const until = await gtidExecuted(source);
    const run = await runStepback([...catchupArgs('shop_lo', '-80', until), '--timeout-seconds', '60']);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('binlog_transaction_compression');
    const [row] = await dest.query<{ position: string }[]>(
      "SELECT position FROM _stepback.checkpoint WHERE db_name = 'shop_lo'",
    );
    expect(gtidPosition('mysql', row!.position).covers(until)).toBe(false);
  });
});
