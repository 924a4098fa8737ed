import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checksumTables } from '../../agent/diff/table-checksum.ts';
import type { Connection } from '../../agent/mysql/connection.ts';
import { MysqlDaemon } from '../../agent/mysqld/daemon.ts';
import { multirestoreInstance } from '../../agent/operations/multirestore.ts';
import { snapshotInstance } from '../../agent/operations/snapshot.ts';
import { inspectBackups, readManifest } from '../../core/backups.ts';
import { VerificationError } from '../../core/errors.ts';
import { KeyRange, parseKeyRanges, uint64KeyspaceId } from '../../core/keyrange.ts';
import { silentLogger } from '../../core/log.ts';
import type { LogicalManifest } from '../../core/manifest.ts';
import { MultirestoreRequest } from '../../core/operations/multirestore.ts';
import { SnapshotRequest } from '../../core/operations/snapshot.ts';
import { FileBackupStorage } from '../../core/storage/file.ts';
import { snapshotDir } from '../../core/storage/layout.ts';
import { runStepback } from '../support/cli.ts';
import { rangeCondition, tableRows } from '../support/logical.ts';
import {
  createTestInstance,
  startReplication,
  type TestInstance,
  waitForReplica,
} from '../support/mariadb.ts';
import { tempDir } from '../support/root.ts';
import { startS3 } from '../support/s3.ts';

let primary: TestInstance;
let replica: TestInstance;
let dest: TestInstance;
let storageRoot: string;
let storage: FileBackupStorage;

/** uint64 ids on both sides of every boundary of --shards 4 and -80,80-. */
const edgeIds = [
  0n,
  1n,
  0x3fff_ffff_ffff_ffffn,
  0x4000_0000_0000_0000n,
  0x7fff_ffff_ffff_ffffn,
  0x8000_0000_0000_0000n,
  0xbfff_ffff_ffff_ffffn,
  0xc000_0000_0000_0000n,
  0xffff_ffff_ffff_fffen,
  0xffff_ffff_ffff_ffffn,
];

/** varbinary ids: empty, prefixes of boundaries, long ones. */
const edgeKids = [
  '',
  '3f',
  '40',
  '4000',
  '3fffffffffffffffffff',
  '7f',
  '80',
  '8000',
  'bf',
  'c0',
  'ff',
  'ffffffffffffffffffff',
];

beforeAll(async () => {
  [primary, replica, dest] = await Promise.all([
    createTestInstance({ name: 'snapshot-primary' }),
    createTestInstance({ name: 'snapshot-replica' }),
    createTestInstance({ name: 'snapshot-dest' }),
  ]);
  await startReplication(replica, primary);
  storageRoot = await tempDir('snapshot-storage');
  storage = new FileBackupStorage(storageRoot);
  const connection = await primary.connect();
  try {
    await connection.query('CREATE DATABASE shop');
    await connection.query(
      'CREATE TABLE shop.customers (id INT PRIMARY KEY, ksid BIGINT UNSIGNED NOT NULL, name VARCHAR(50))',
    );
    await connection.query(
      'CREATE TABLE shop.orders (id BIGINT AUTO_INCREMENT PRIMARY KEY, ksid BIGINT UNSIGNED NOT NULL, customer_id INT, note VARCHAR(200))',
    );
    await connection.query('CREATE VIEW shop.big_orders AS SELECT id, note FROM shop.orders WHERE id > 100');
    const ids = [...edgeIds, ...Array.from({ length: 1500 }, () => randomBytes(8).readBigUInt64BE())];
    await connection.query('INSERT INTO shop.customers VALUES ?', [
      ids.map((ksid, i) => [i + 1, ksid.toString(), `customer ${i + 1}, "quoted"\n`]),
    ]);
    await connection.query('INSERT INTO shop.orders (ksid, customer_id, note) VALUES ?', [
      ids.flatMap((ksid, i) => [
        [ksid.toString(), i + 1, `first order of ${i + 1}`],
        [ksid.toString(), i + 1, i % 7 === 0 ? null : 'second \\ order'],
      ]),
    ]);

    await connection.query('CREATE DATABASE vshop');
    await connection.query(
      'CREATE TABLE vshop.users (id INT PRIMARY KEY, kid VARBINARY(20) NOT NULL, name VARCHAR(50))',
    );
    await connection.query(
      'CREATE TABLE vshop.events (id INT PRIMARY KEY, kid VARBINARY(20) NOT NULL, payload BLOB)',
    );
    const kids = [
      ...edgeKids.map((hex) => Buffer.from(hex, 'hex')),
      ...Array.from({ length: 800 }, (_, i) => randomBytes(1 + (i % 12))),
    ];
    await connection.query('INSERT INTO vshop.users VALUES ?', [
      kids.map((kid, i) => [i + 1, kid, `user ${i}`]),
    ]);
    await connection.query('INSERT INTO vshop.events VALUES ?', [
      kids.map((kid, i) => [i + 1, kid, randomBytes(i % 50)]),
    ]);
  } finally {
    await connection.end();
  }
  await waitForReplica(replica, primary);
});

afterAll(async () => {
  await Promise.all([primary?.dispose(), replica?.dispose(), dest?.dispose()]);
});

/** Whether both replication threads run (the IO thread is "Connecting"/"Preparing" for a moment after a restart). */
async function replicationRunning(instance: TestInstance): Promise<boolean> {
  for (let attempt = 0; ; attempt++) {
    const [status] = await instance.query<Record<string, string>[]>('SHOW SLAVE STATUS');
    if (status?.Slave_SQL_Running !== 'Yes' || status.Slave_IO_Running === 'No') return false;
    if (status.Slave_IO_Running === 'Yes') return true;
    if (attempt > 200) return false;
    await sleep(50);
  }
}

async function readOnly(instance: TestInstance): Promise<boolean> {
  const [row] = await instance.query<{ v: string }[]>('SELECT @@GLOBAL.read_only AS v');
  return Number(row?.v) === 1;
}

/** What an operation needs besides its request, reporting nothing. */
function quietContext() {
  return { logger: silentLogger, progress: () => {}, signal: new AbortController().signal };
}

/** Loads one range's snapshot into its own database on the destination. */
async function restoreRange(dir: string, name: string, database: string): Promise<void> {
  const daemon = await MysqlDaemon.open({ defaultsFile: dest.cnf, logger: silentLogger });
  await multirestoreInstance(
    daemon,
    storage,
    MultirestoreRequest.parse({
      storage: storage.url,
      defaultsFile: dest.cnf,
      sources: [`${dir}@${name}`],
      database,
      fetchConcurrency: 2,
      insertConcurrency: 2,
      tableConcurrency: 1,
    }),
    quietContext(),
  );
}

/**
 * Checks a split: each source row is in exactly the restored ranges whose range holds its id, and
 * each range holds as many rows as SELECT COUNT(*) … WHERE finds on the source.
 */
async function expectSplit(
  database: string,
  table: string,
  column: string,
  type: 'uint64' | 'bytes',
  ranges: { range: KeyRange; database: string }[],
): Promise<void> {
  const source = await replica.query<{ id: number; key: string | Buffer }[]>(
    `SELECT id, ${column} AS \`key\` FROM ${database}.${table}`,
  );
  const restored = await Promise.all(
    ranges.map(async ({ database: restoredDb }) => {
      const rows = await dest.query<{ id: number }[]>(`SELECT id FROM \`${restoredDb}\`.${table}`);
      return new Set(rows.map((row) => Number(row.id)));
    }),
  );
  for (const row of source) {
    const id = type === 'uint64' ? uint64KeyspaceId(String(row.key)) : (row.key as Buffer);
    const expected = ranges.map(({ range }) => range.contains(id));
    const actual = restored.map((ids) => ids.has(Number(row.id)));
    expect(actual, `row ${row.id} (keyspace id ${id.toString('hex')})`).toEqual(expected);
  }
  for (const [i, { range }] of ranges.entries()) {
    const [count] = await replica.query<{ n: number }[]>(
      `SELECT COUNT(*) AS n FROM ${database}.${table} WHERE ${rangeCondition(column, range, type)}`,
    );
    expect(restored[i]!.size, `${table} in ${range}`).toBe(Number(count!.n));
  }
}

describe('stepback snapshot', () => {
  it.each([
    ['two ranges', ['--key-ranges', '-80,80-'], ['-80', '80-']],
    ['four even ranges', ['--shards', '4'], ['-40', '40-80', '80-c0', 'c0-']],
  ])(
    'splits a replica into %s by a uint64 keyspace id, and leaves it replicating',
    async (label, flags, names) => {
      const dir = `shop/split${names.length}`;
      const run = await runStepback([
        'snapshot',
        '--defaults-file',
        replica.cnf,
        '--storage',
        `file://${storageRoot}`,
        '--dir',
        dir,
        '--database',
        'shop',
        '--key-column',
        'ksid',
        '--key-type',
        'uint64',
        ...flags,
        '--concurrency',
        '2',
        '--json',
      ]);
      expect(run.code, run.stderr).toBe(0);
      const result = run.json as {
        snapshots: { keyRange: string; dir: string; name: string; rows: number; bytes: number }[];
        role: string;
      };
      expect(result.role).toBe('replica');
      expect(result.snapshots.map((s) => s.keyRange)).toEqual(names);
      expect(result.snapshots.map((s) => s.dir)).toEqual(names.map((name) => `${dir}/${name}`));
      for (const entry of result.snapshots) {
        expect(Object.keys(entry).sort()).toEqual(['bytes', 'dir', 'keyRange', 'name', 'rows']);
        expect(entry.bytes).toBeGreaterThan(0);
      }
      expect(result.snapshots.reduce((sum, s) => sum + s.rows, 0)).toBe(3 * (edgeIds.length + 1500));
      expect(await replicationRunning(replica)).toBe(true);

      const ranges = [];
      for (const [i, entry] of result.snapshots.entries()) {
        const database = `shop_${label.replace(/\W/g, '')}_${i}`;
        await restoreRange(entry.dir, entry.name, database);
        ranges.push({ range: KeyRange.parse(entry.keyRange), database });
      }
      await expectSplit('shop', 'customers', 'ksid', 'uint64', ranges);
      await expectSplit('shop', 'orders', 'ksid', 'uint64', ranges);

      // Each range's evidence is its own rows' checksum: what the loaded range holds, computed again.
      for (const [i, entry] of result.snapshots.entries()) {
        const manifest = await readManifest(storage.openBackup(snapshotDir(entry.dir), entry.name));
        const connection = await dest.connect();
        try {
          const loaded = await checksumTables(connection, ranges[i]!.database);
          const numbers = (tables: { table: string; rows: number; checksum: string }[] = []) =>
            Object.fromEntries(tables.map((t) => [t.table, [t.rows, t.checksum]]));
          expect(numbers(manifest.evidence?.tables)).toEqual(numbers(loaded));
        } finally {
          await connection.end();
        }
      }
    },
  );

  it.each([
    ['two ranges', parseKeyRanges('-80,80-')],
    ['four ranges with boundaries of several bytes', parseKeyRanges('-3fff,3fff-40,40-8000,8000-')],
  ])('splits by a varbinary keyspace id, bytewise, into %s', async (label, ranges) => {
    const daemon = await MysqlDaemon.open({ defaultsFile: replica.cnf, logger: silentLogger });
    const result = await snapshotInstance(
      daemon,
      storage,
      SnapshotRequest.parse({
        storage: storage.url,
        defaultsFile: replica.cnf,
        dir: `vshop/${label.replace(/\W/g, '')}`,
        database: 'vshop',
        keyColumn: 'kid',
        keyType: 'bytes',
        keyRanges: ranges.map(String),
        concurrency: 2,
      }),
      quietContext(),
    );
    expect(await replicationRunning(replica)).toBe(true);
    const restored = [];
    for (const [i, entry] of result.snapshots.entries()) {
      const database = `vshop_${label.replace(/\W/g, '')}_${i}`;
      await restoreRange(entry.dir, entry.name, database);
      restored.push({ range: ranges[i]!, database });
    }
    await expectSplit('vshop', 'users', 'kid', 'bytes', restored);
    await expectSplit('vshop', 'events', 'kid', 'bytes', restored);
  });

  it('snapshots a primary read-only for the whole dump when asked (--stop-for-dump) and puts it back read-write', async () => {
    expect(await readOnly(primary)).toBe(false);
    const run = await runStepback([
      'snapshot',
      '--defaults-file',
      primary.cnf,
      '--storage',
      `file://${storageRoot}`,
      '--dir',
      'shop/primary',
      '--database',
      'shop',
      '--stop-for-dump',
      '--json',
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain('making the primary read-only');
    expect(run.json).toMatchObject({
      role: 'primary',
      snapshots: [{ keyRange: '-', dir: 'shop/primary' }],
      consistency: { method: 'stopped', why: 'asked for with --stop-for-dump', held: 'writes' },
    });
    expect(await readOnly(primary)).toBe(false);
  });

  it('refuses a row without a keyspace id, naming the table, writes no manifest and leaves the replica replicating', async () => {
    await primary.query('CREATE DATABASE nullkey');
    await primary.query('CREATE TABLE nullkey.t (id INT PRIMARY KEY, ksid BIGINT UNSIGNED NULL)');
    await primary.query('INSERT INTO nullkey.t VALUES (1, 5), (2, NULL), (3, 7)');
    await waitForReplica(replica, primary);
    const run = await runStepback([
      'snapshot',
      '--defaults-file',
      replica.cnf,
      '--storage',
      `file://${storageRoot}`,
      '--dir',
      'nullkey/0',
      '--database',
      'nullkey',
      '--key-column',
      'ksid',
      '--key-type',
      'uint64',
      '--shards',
      '2',
    ]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('table "t" (keyspace id column ksid): row 2: keyspace id is NULL');
    expect(run.stderr).toContain('--exclude-tables');
    expect(await replicationRunning(replica)).toBe(true);
    for (const dir of ['nullkey/0/-80', 'nullkey/0/80-'])
      expect(await storage.listBackups(snapshotDir(dir))).toEqual([]);
  });

  it.each([
    [
      '--tables with a partial key range',
      ['--tables', 'customers', '--key-column', 'ksid', '--key-type', 'uint64', '--shards', '2'],
      /--tables: copies whole tables/,
    ],
    [
      'a key range without a key column',
      ['--key-ranges', '-80,80-'],
      /--key-column: is required to split by key range/,
    ],
    [
      '--key-ranges with --shards',
      ['--key-column', 'ksid', '--key-type', 'uint64', '--key-ranges', '-80,80-', '--shards', '2'],
      /not both/,
    ],
    [
      'key ranges that leave part of the keyspace out, unless --partial-ranges says it is meant',
      ['--key-column', 'ksid', '--key-type', 'uint64', '--key-ranges', '-40,80-'],
      /--key-ranges: leave out the keyspace ids in 40-80: rows there would be in no snapshot[\s\S]*pass --partial-ranges/,
    ],
    [
      'a table that does not exist',
      ['--tables', 'customers,nope'],
      /--tables names "nope", not in database "shop"/,
    ],
    [
      'a keyspace id column some table lacks',
      ['--key-column', 'customer_id', '--key-type', 'uint64', '--shards', '2'],
      /"customers" has no column "customer_id"/,
    ],
  ])('refuses %s with exit 2 before touching the instance', async (_what, flags, message) => {
    const run = await runStepback([
      'snapshot',
      '--defaults-file',
      replica.cnf,
      '--storage',
      `file://${storageRoot}`,
      '--dir',
      'shop/refused',
      '--database',
      'shop',
      ...flags,
    ]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(message);
    expect(run.stderr).not.toContain('stopping replication');
    expect(await replicationRunning(replica)).toBe(true);
  });

  it('spreads a table over several files of at most --max-file-size and restores it whole', async () => {
    const run = await runStepback([
      'snapshot',
      '--defaults-file',
      replica.cnf,
      '--storage',
      `file://${storageRoot}`,
      '--dir',
      'shop/small',
      '--database',
      'shop',
      '--tables',
      'orders,big_orders',
      '--max-file-size',
      '8KiB',
      '--json',
    ]);
    expect(run.code, run.stderr).toBe(0);
    const [summary] = await inspectBackups(storage, snapshotDir('shop/small'));
    const manifest = (summary as { manifest: LogicalManifest }).manifest;
    expect(manifest.tables.map((t) => t.name)).toEqual(['orders', 'big_orders']);
    const files = manifest.files.filter((f) => f.table === 'orders');
    expect(files.length).toBeGreaterThan(5);
    expect(files.map((f) => f.part)).toEqual(files.map((_, i) => i));
    for (const file of files) expect(file.rawSize).toBeLessThanOrEqual(8 * 1024);
    expect(files.reduce((sum, f) => sum + f.rows, 0)).toBe(2 * (edgeIds.length + 1500));

    await restoreRange('shop/small', manifest.name, 'shop_small');
    expect(await tableRows(dest, 'shop_small', 'orders')).toEqual(await tableRows(replica, 'shop', 'orders'));
    expect(await dest.query('SELECT COUNT(*) AS n FROM shop_small.big_orders')).toEqual(
      await replica.query('SELECT COUNT(*) AS n FROM shop.big_orders'),
    );
  });

  it('cleans up after a killed snapshot: its dump files go, the replica replicates again', async () => {
    // What SIGKILL during a dump leaves: replication stopped, the marker, a temporary OUTFILE.
    const deadPid = spawnSync('true').pid!;
    await replica.query('STOP SLAVE');
    const leftover = path.join(replica.filesDir, `stepback-snapshot-${deadPid}-0.csv`);
    await fs.writeFile(leftover, '1,2\n');
    await fs.writeFile(
      `${replica.datadir}.stepback.json`,
      JSON.stringify({
        version: 1,
        operation: 'snapshot',
        pid: deadPid,
        host: 'test',
        startedAt: new Date().toISOString(),
        original: { running: true, readOnly: false, replication: { configured: true, running: true } },
        details: { workDir: replica.filesDir },
      }),
    );
    const run = await runStepback([
      'snapshot',
      '--defaults-file',
      replica.cnf,
      '--storage',
      `file://${storageRoot}`,
      '--dir',
      'shop/after-kill',
      '--database',
      'shop',
      '--tables',
      'customers',
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain(`an earlier stepback snapshot (pid ${deadPid}`);
    expect(run.stderr).toContain('removed 1 temporary dump files');
    await expect(fs.stat(leftover)).rejects.toThrow(/ENOENT/);
    expect(await replicationRunning(replica)).toBe(true);
  });

  it('snapshots into S3 and loads back from it, streaming each range', async () => {
    const s3 = await startS3();
    try {
      const snap = await runStepback(
        [
          'snapshot',
          '--defaults-file',
          replica.cnf,
          '--storage',
          s3.url('logical'),
          '--dir',
          'shop/s3',
          '--database',
          'shop',
        ],
        { env: s3.env },
      );
      expect(snap.code, snap.stderr).toBe(0);
      const shards = await runStepback(
        [
          'snapshot',
          '--defaults-file',
          replica.cnf,
          '--storage',
          s3.url('logical'),
          '--dir',
          'shop/s3split',
          '--database',
          'shop',
          '--key-column',
          'ksid',
          '--key-type',
          'uint64',
          '--shards',
          '2',
          '--max-file-size',
          '16KiB',
          '--json',
        ],
        { env: s3.env },
      );
      expect(shards.code, shards.stderr).toBe(0);
      const sources = (shards.json as { snapshots: { dir: string; name: string }[] }).snapshots
        .map((entry) => `${entry.dir}@${entry.name}`)
        .join(',');
      // Both halves merged back: the whole table again.
      const run = await runStepback(
        [
          'multirestore',
          '--defaults-file',
          dest.cnf,
          '--storage',
          s3.url('logical'),
          '--sources',
          sources,
          '--database',
          'shop_s3',
          '--json',
        ],
        { env: s3.env },
      );
      expect(run.code, run.stderr).toBe(0);
      expect(await tableRows(dest, 'shop_s3', 'orders')).toEqual(await tableRows(replica, 'shop', 'orders'));
      expect(await tableRows(dest, 'shop_s3', 'customers')).toEqual(
        await tableRows(replica, 'shop', 'customers'),
      );
    } finally {
      await s3.stop();
    }
  });

  it('fails when the position moves during the snapshot, keeps no backup and puts the primary back', async () => {
    const daemon = await MysqlDaemon.open({ defaultsFile: primary.cnf, logger: silentLogger });
    // A write between the dump and the final position check (root bypasses read_only): the flavor's
    // second position read is preceded by a real INSERT on the real server.
    const flavor = daemon.flavor;
    let reads = 0;
    Object.defineProperty(daemon, 'flavor', {
      value: {
        ...flavor,
        async executedPosition(connection: Connection) {
          if (++reads === 2) await connection.query('INSERT INTO shop.customers VALUES (999999, 1, "late")');
          return flavor.executedPosition(connection);
        },
      },
    });
    const error = await snapshotInstance(
      daemon,
      storage,
      SnapshotRequest.parse({
        storage: storage.url,
        defaultsFile: primary.cnf,
        dir: 'shop/moved',
        database: 'shop',
        maxFileSize: '1MiB',
        concurrency: 1,
        stopForDump: true,
      }),
      quietContext(),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VerificationError);
    expect((error as Error).message).toMatch(
      /the position moved during the snapshot, from 0-\d+-\d+ to 0-\d+-\d+/,
    );
    expect(await storage.listBackups(snapshotDir('shop/moved'))).toEqual([]);
    expect(await readOnly(primary)).toBe(false);
  });
});
