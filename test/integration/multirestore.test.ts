import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../core/log.ts';
import type { LogicalManifest } from '../../core/manifest.ts';
import { chooseSnapshot } from '../../core/snapshots.ts';
import { FileBackupStorage } from '../../core/storage/file.ts';
import { type CliRun, runStepback } from '../support/cli.ts';
import { objectNames, tableRows } from '../support/logical.ts';
import { createTestInstance, type TestInstance } from '../support/mariadb.ts';
import { tempDir } from '../support/root.ts';

let source: TestInstance;
let dest: TestInstance;
let storageRoot: string;
let storage: FileBackupStorage;

const awkwardTable = 'odd name-ü';

beforeAll(async () => {
  [source, dest] = await Promise.all([
    createTestInstance({ name: 'multirestore-source' }),
    createTestInstance({ name: 'multirestore-dest' }),
  ]);
  storageRoot = await tempDir('multirestore-storage');
  storage = new FileBackupStorage(storageRoot);
  const c = await source.connect();
  try {
    await c.query('CREATE DATABASE awk');
    await c.query(`CREATE TABLE awk.\`${awkwardTable}\` (
      id INT AUTO_INCREMENT PRIMARY KEY,
      bin VARBINARY(64), txt TEXT, nul_or_n VARCHAR(10), emoji VARCHAR(20),
      doc JSON, dec65 DECIMAL(65,30), dt DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL,
      b1 BIT(1), b8 BIT(8), b64 BIT(64), e ENUM('a','b,c','d"e'), s SET('x','y z'),
      gen_v INT AS (id * 2) VIRTUAL, gen_s VARCHAR(300) AS (CONCAT(IFNULL(txt, ''), '!')) STORED,
      u UUID, ip INET6, f DOUBLE, y YEAR, tm TIME(6), blobby LONGBLOB
    )`);
    const columns =
      'bin, txt, nul_or_n, emoji, doc, dec65, dt, ts, b1, b8, b64, e, s, u, ip, f, y, tm, blobby';
    const rows = [
      [
        Buffer.from([0, 0x2c, 0x22, 0x0a, 0x5c, 0x0d, 0xff, 0, 0x5c, 0x4e]),
        'line1\nline2\r\n"quoted", \\back\\slash\\',
        null,
        '😀🎉𝄞',
        '{"a": "x\\ny", "b": [1, 2.5, null], "c": "\\u0000"}',
        '12345678901234567890123456789012345.123456789012345678901234567890',
        '2024-02-29 23:59:59.999999',
        '2024-03-31 02:30:00.500000',
        1,
        10,
        0,
        'b,c',
        'x,y z',
        '123e4567-e89b-12d3-a456-426614174000',
        '2001:db8::ff',
        -1.5e300,
        1901,
        '-838:59:59.000000',
        randomBytes(300_000),
      ],
      [
        Buffer.from('\\N'),
        '\\N',
        '\\N',
        '',
        '[]',
        '-0.000000000000000000000000000001',
        '1000-01-01 00:00:00.000000',
        '1970-01-01 00:00:01.000000',
        0,
        92,
        44,
        'd"e',
        '',
        '00000000-0000-0000-0000-000000000000',
        '::1',
        0.1,
        2155,
        '12:00:00.500000',
        Buffer.alloc(0),
      ],
      [
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
      ],
      [
        Buffer.alloc(0),
        '',
        'N',
        'ü',
        '{}',
        '0.000000000000000000000000000000',
        '2038-01-19 03:14:08.000001',
        null,
        1,
        34,
        255,
        'a',
        'x',
        null,
        null,
        0,
        2000,
        '00:00:00.000000',
        Buffer.from('\n'),
      ],
      [
        Buffer.from('deleted'),
        'this row is deleted so the counter is past the last id',
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
      ],
    ];
    for (const row of rows)
      await c.query(`INSERT INTO awk.\`${awkwardTable}\` (${columns}) VALUES (?)`, [row]);
    await c.query(`UPDATE awk.\`${awkwardTable}\` SET b64 = 0xFFFFFFFFFFFFFFFF WHERE id = 1`);
    await c.query(`DELETE FROM awk.\`${awkwardTable}\` WHERE id = 5`);
    await c.query('CREATE TABLE awk.parent (id INT PRIMARY KEY, name VARCHAR(20))');
    await c.query(
      'CREATE TABLE awk.child (id INT PRIMARY KEY, parent_id INT NOT NULL, CONSTRAINT fk_parent FOREIGN KEY (parent_id) REFERENCES parent (id) ON DELETE CASCADE)',
    );
    await c.query('INSERT INTO awk.parent VALUES (1, "one"), (2, "two")');
    await c.query('INSERT INTO awk.child VALUES (10, 1), (11, 1), (12, 2)');
    await c.query('CREATE TABLE awk.nopk (a INT, b VARCHAR(20))');
    await c.query("INSERT INTO awk.nopk VALUES (1, 'a'), (1, 'a'), (2, NULL), (NULL, '\\\\N'), (NULL, NULL)");
    await c.query('CREATE TABLE awk.aria_t (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=Aria');
    await c.query('INSERT INTO awk.aria_t VALUES (1, "x"), (2, "y"), (3, "z")');
    await c.query(`CREATE VIEW awk.v1 AS SELECT id, txt FROM awk.\`${awkwardTable}\` WHERE id < 3`);
    await c.query('CREATE VIEW awk.v0 AS SELECT COUNT(*) AS n FROM awk.v1');

    for (const [shard, first] of [
      ['shard_a', 1],
      ['shard_b', 1001],
    ] as const) {
      await c.query(`CREATE DATABASE ${shard}`);
      await c.query(
        `CREATE TABLE ${shard}.items (id BIGINT AUTO_INCREMENT PRIMARY KEY, ksid BIGINT UNSIGNED NOT NULL, label VARCHAR(40)) AUTO_INCREMENT = ${first}`,
      );
      await c.query(`CREATE TABLE ${shard}.log (at INT, message VARCHAR(40))`);
      await c.query(`INSERT INTO ${shard}.items (ksid, label) VALUES ?`, [
        Array.from({ length: 300 }, (_, i) => [String(first * 1000 + i), `${shard} item ${i}`]),
      ]);
      await c.query(`INSERT INTO ${shard}.log VALUES ?`, [
        Array.from({ length: 50 }, (_, i) => [i % 10, 'same']),
      ]);
    }

    await c.query('CREATE DATABASE big');
    await c.query('CREATE TABLE big.events (at INT, payload VARCHAR(100))');
    await c.query('CREATE TABLE big.users (id INT PRIMARY KEY, name VARCHAR(100))');
    await c.query('INSERT INTO big.events VALUES ?', [
      Array.from({ length: 20_000 }, (_, i) => [i % 1000, `event ${i % 3000} ${'x'.repeat(i % 50)}`]),
    ]);
    await c.query('INSERT INTO big.users VALUES ?', [
      Array.from({ length: 5_000 }, (_, i) => [i, `user ${i}`]),
    ]);
  } finally {
    await c.end();
  }
});

afterAll(async () => {
  await Promise.all([source?.dispose(), dest?.dispose()]);
});

async function snapshot(dir: string, database: string, ...flags: string[]): Promise<string> {
  const run = await runStepback([
    'snapshot',
    '--defaults-file',
    source.cnf,
    '--storage',
    `file://${storageRoot}`,
    '--dir',
    dir,
    '--database',
    database,
    ...flags,
    '--json',
  ]);
  expect(run.code, run.stderr).toBe(0);
  return (run.json as { snapshots: { name: string }[] }).snapshots[0]!.name;
}

function restore(sources: string, database: string, ...flags: string[]): Promise<CliRun> {
  return restoreWith({}, sources, database, ...flags);
}

function restoreWith(
  options: { onSpawn?: (pid: number) => void },
  sources: string,
  database: string,
  ...flags: string[]
): Promise<CliRun> {
  return runStepback(
    [
      'multirestore',
      '--defaults-file',
      dest.cnf,
      '--storage',
      `file://${storageRoot}`,
      '--sources',
      sources,
      '--database',
      database,
      ...flags,
      '--json',
    ],
    options,
  );
}

interface RestoreJson {
  database: string;
  files: { total: number; loaded: number; alreadyLoaded: number };
  rows: number;
  resumed: boolean;
  checkpoints: boolean;
}

async function showCreate(instance: TestInstance, database: string, table: string): Promise<string> {
  const [row] = await instance.query<Record<string, string>[]>(
    `SHOW CREATE TABLE \`${database}\`.\`${table}\``,
  );
  return String(row?.['Create Table']);
}

async function ledgerCount(database: string): Promise<number> {
  const rows = await dest
    .query<{ n: number }[]>('SELECT COUNT(*) AS n FROM _stepback.multirestore_ledger WHERE db_name = ?', [
      database,
    ])
    .catch(() => [{ n: 0 }]);
  return Number(rows[0]?.n ?? 0);
}

describe('stepback multirestore', () => {
  it('restores data that breaks naive CSV byte for byte, with its schema, views, keys and AUTO_INCREMENT', async () => {
    await snapshot('awk/0', 'awk');
    const run = await restore('awk/0', 'awk_copy');
    expect(run.code, run.stderr).toBe(0);
    expect(run.json).toMatchObject({ database: 'awk_copy', tables: 5, views: 2, resumed: false });

    expect(await objectNames(dest, 'awk_copy')).toEqual(await objectNames(source, 'awk'));
    for (const table of [awkwardTable, 'parent', 'child', 'nopk', 'aria_t']) {
      expect(await tableRows(dest, 'awk_copy', table), table).toEqual(await tableRows(source, 'awk', table));
      expect(await showCreate(dest, 'awk_copy', table), table).toBe(await showCreate(source, 'awk', table));
    }
    expect(await dest.query('SELECT * FROM awk_copy.v1 ORDER BY id')).toEqual(
      await source.query('SELECT * FROM awk.v1 ORDER BY id'),
    );
    expect(await dest.query('SELECT n FROM awk_copy.v0')).toEqual([{ n: '2' }]);

    const [{ next }] = await source.query<[{ next: number }]>(
      'SELECT AUTO_INCREMENT AS next FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
      ['awk', awkwardTable],
    );
    const inserted = await dest.query<{ insertId: number }>(
      `INSERT INTO awk_copy.\`${awkwardTable}\` (txt) VALUES ('new')`,
    );
    expect(inserted.insertId).toBe(Number(next));
    await expect(dest.query('INSERT INTO awk_copy.child VALUES (99, 42)')).rejects.toThrow(
      /foreign key constraint fails/,
    );
  });

  it('loads nothing twice when run again after it finished', async () => {
    const before = await tableRows(dest, 'awk_copy', 'nopk');
    const run = await restore('awk/0', 'awk_copy');
    expect(run.code, run.stderr).toBe(0);
    expect((run.json as RestoreJson).files).toEqual({ total: 5, loaded: 0, alreadyLoaded: 5 });
    expect(await tableRows(dest, 'awk_copy', 'nopk')).toEqual(before);
  });

  it('empties and reloads a non-transactional table that was being loaded when a run stopped', async () => {
    // What a crash between LOAD DATA and the ledger update leaves for an Aria table: a file marked
    // as loading, its rows possibly in the table.
    await dest.query(
      "UPDATE _stepback.multirestore_ledger SET state = 'loading' WHERE db_name = 'awk_copy' AND table_name = 'aria_t'",
    );
    await dest.query("UPDATE _stepback.multirestore_run SET finished_at = NULL WHERE db_name = 'awk_copy'");
    const run = await restore('awk/0', 'awk_copy');
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain(
      'table aria_t (Aria, not transactional) was being loaded when the last run stopped',
    );
    expect((run.json as RestoreJson).files).toEqual({ total: 5, loaded: 1, alreadyLoaded: 4 });
    expect(await tableRows(dest, 'awk_copy', 'aria_t')).toEqual(await tableRows(source, 'awk', 'aria_t'));
  });

  it('merges two sources into one database that holds their union, and writes their checkpoints', async () => {
    const a = await snapshot('merge/a', 'shard_a');
    const b = await snapshot('merge/b', 'shard_b');
    const run = await restore(`merge/a@${a},merge/b`, 'merged', '--checkpoints', '--dont-start-replication');
    expect(run.code, run.stderr).toBe(0);
    expect(run.json).toMatchObject({ database: 'merged', rows: 700, checkpoints: true });
    for (const table of ['items', 'log']) {
      const union = [
        ...(await tableRows(source, 'shard_a', table)),
        ...(await tableRows(source, 'shard_b', table)),
      ];
      const sorted = (rows: unknown[]) => rows.map((row) => JSON.stringify(row)).sort();
      expect(sorted(await tableRows(dest, 'merged', table)), table).toEqual(sorted(union));
    }
    const [{ position }] = await source.query<[{ position: string }]>(
      'SELECT @@gtid_current_pos AS position',
    );
    expect(
      await dest.query(
        'SELECT source_index, source, position, flags FROM _stepback.checkpoint WHERE db_name = ? ORDER BY source_index',
        ['merged'],
      ),
    ).toEqual([
      { source_index: 0, source: `merge/a@${a}`, position, flags: 'dont-start' },
      { source_index: 1, source: `merge/b@${b}`, position, flags: 'dont-start' },
    ]);
    const inserted = await dest.query<{ insertId: number }>(
      "INSERT INTO merged.items (ksid, label) VALUES (1, 'next')",
    );
    expect(inserted.insertId).toBe(1301);
  });

  it('moves two tables into another database (a vertical split)', async () => {
    const name = await snapshot('awk/vertical', 'awk', '--tables', 'parent,child');
    const run = await restore(`awk/vertical@${name}`, 'moved');
    expect(run.code, run.stderr).toBe(0);
    expect(await objectNames(dest, 'moved')).toEqual(['child', 'parent']);
    for (const table of ['parent', 'child']) {
      expect(await tableRows(dest, 'moved', table)).toEqual(await tableRows(source, 'awk', table));
    }
  });

  it('says which view reads a table the snapshot does not hold', async () => {
    const name = await snapshot('awk/view-only', 'awk', '--tables', 'parent,v1');
    const run = await restore(`awk/view-only@${name}`, 'view_only');
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('cannot create view "v1"');
    expect(run.stderr).toContain('snapshot it too (--tables), or leave the view out');
  });

  it('loads only what is missing after being killed, and never a row twice', async () => {
    await snapshot('big/0', 'big', '--max-file-size', '4KiB');
    const { manifest } = await chooseSnapshot(storage, 'big/0', {}, silentLogger);
    const total = (manifest as LogicalManifest).files.length;
    expect(total).toBeGreaterThan(100);

    let pid = 0;
    const killed = restoreWith(
      { onSpawn: (spawned) => (pid = spawned) },
      'big/0',
      'big_copy',
      '--insert-concurrency',
      '1',
      '--fetch-concurrency',
      '1',
    );
    for (let i = 0; i < 600 && (await ledgerCount('big_copy')) < 10; i++) await sleep(20);
    process.kill(pid, 'SIGKILL');
    const first = await killed;
    expect(first.signal).toBe('SIGKILL');
    const loadedBefore = await ledgerCount('big_copy');
    expect(loadedBefore, 'the first run was killed while loading').toBeGreaterThan(0);
    expect(loadedBefore, 'the first run was killed while loading').toBeLessThan(total);

    const second = await restore('big/0', 'big_copy');
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toContain('was interrupted');
    expect(second.json).toMatchObject({
      resumed: true,
      files: { total, alreadyLoaded: loadedBefore, loaded: total - loadedBefore },
    });
    for (const table of ['events', 'users']) {
      expect(await tableRows(dest, 'big_copy', table), table).toEqual(await tableRows(source, 'big', table));
    }
    const leftovers = (await fs.readdir(dest.filesDir)).filter((entry) => entry.startsWith('stepback-'));
    expect(leftovers).toEqual([]);
  });

  it('refuses a database that already holds tables, and with --force replaces only the snapshot’s tables', async () => {
    await dest.query('CREATE DATABASE occupied');
    await dest.query('CREATE TABLE occupied.unrelated (x INT)');
    await dest.query('CREATE TABLE occupied.parent (stale INT)');
    const refused = await restore('awk/vertical', 'occupied');
    expect(refused.code).toBe(4);
    expect(refused.stderr).toContain(
      'database occupied already holds 2 tables and views (parent, unrelated)',
    );
    expect(refused.stderr).toContain('--force');

    const forced = await restore('awk/vertical', 'occupied', '--force');
    expect(forced.code, forced.stderr).toBe(0);
    expect(await objectNames(dest, 'occupied')).toEqual(['child', 'parent', 'unrelated']);
    expect(await tableRows(dest, 'occupied', 'parent')).toEqual(await tableRows(source, 'awk', 'parent'));
  });

  it('refuses sources whose schemas differ, listing the differences, before creating anything', async () => {
    await source.query('CREATE DATABASE shard_c');
    await source.query(
      'CREATE TABLE shard_c.items (id BIGINT PRIMARY KEY, ksid BIGINT UNSIGNED NOT NULL, label VARCHAR(80))',
    );
    await source.query('CREATE TABLE shard_c.extra (id INT)');
    await snapshot('merge/c', 'shard_c');
    const run = await restore('merge/a,merge/c', 'never');
    expect(run.code).toBe(5);
    expect(run.stderr).toContain('the sources do not hold the same schema');
    expect(run.stderr).toMatch(
      /table "items" has columns \(id bigint\(20\), ksid bigint\(20\) unsigned, label varchar\(40\)\) in merge\/a@\S+ but \(id bigint\(20\), ksid bigint\(20\) unsigned, label varchar\(80\)\) in merge\/c@\S+/,
    );
    expect(run.stderr).toContain('has no table "log"');
    expect(run.stderr).toContain('has an extra table "extra"');
    expect(await dest.query("SHOW DATABASES LIKE 'never'")).toEqual([]);
  });

  it('refuses a manifest whose CREATE TABLE reaches outside the destination, before creating anything', async () => {
    const { handle, manifest } = await chooseSnapshot(storage, 'awk/vertical', {}, silentLogger);
    const logical = manifest as LogicalManifest;
    const evil = await storage.startBackup('evil/0', logical.name);
    for (const file of logical.files) {
      await evil.writeFile(file.name, () => handle.readFile(file.name));
    }
    await evil.endBackup({
      ...logical,
      dir: 'evil/0',
      keyspace: 'evil',
      shard: '0',
      tables: logical.tables.map((table) =>
        table.type === 'table' && table.name === 'parent'
          ? {
              ...table,
              create: `${table.create.replace(/ENGINE=\w+/, "ENGINE=CONNECT TABLE_TYPE=CSV FILE_NAME='/etc/passwd'")}`,
            }
          : table,
      ),
    });
    const run = await restore('evil/0', 'evil');
    expect(run.code).toBe(5);
    expect(run.stderr).toContain('the CREATE TABLE of "parent" is refused: engine CONNECT is not allowed');
    expect(await dest.query("SHOW DATABASES LIKE 'evil'")).toEqual([]);
  });
});
