import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { type DiffOptions, diffDatabases } from '../../agent/diff/engine.ts';
import { keyRangeSql } from '../../agent/diff/sql.ts';
import { VerificationError } from '../../core/errors.ts';
import { KeyRange, uint64KeyspaceId } from '../../core/keyrange.ts';
import { recordingLogger, silentLogger } from '../../core/log.ts';
import type { PrivateInstance as TestInstance } from '../../local/private-instance.ts';
import { runStepback } from './cli.ts';

/**
 * The diff suite, run against two servers of one flavor: each test file that calls
 * `defineDiffSuite` gets its own pair (MariaDB 10.11 in diff.test.ts, MySQL 9.7 in mysql-diff.test.ts).
 */
export interface DiffServer {
  /** How the suite's titles name the server, e.g. "MySQL 9.7". */
  name: string;
  /** A private server of its own, reachable as root over its socket and over TCP from 127.0.0.1. */
  create(name: string): Promise<TestInstance>;
  /** A FROM clause whose `seq` column counts 1 to `n`. */
  numbers(n: number): string;
}

let server: DiffServer;
let left: TestInstance;
let right: TestInstance;
let databases = 0;

/** The two servers of the running suite. */
export function diffServers(): { left: TestInstance; right: TestInstance } {
  return { left, right };
}

/** A fresh database on both sides, created by the same statements. */
export async function both(statements: string[]): Promise<string> {
  const database = `d${++databases}`;
  for (const instance of [left, right]) {
    const connection = await instance.connect();
    try {
      await connection.query(`CREATE DATABASE ${database}`);
      await connection.query(`USE ${database}`);
      for (const sql of statements) await connection.query(sql);
    } finally {
      await connection.end();
    }
  }
  return database;
}

export async function run(instance: TestInstance, database: string, statements: string[]): Promise<void> {
  const connection = await instance.connect(database);
  try {
    for (const sql of statements) await connection.query(sql);
  } finally {
    await connection.end();
  }
}

export function diff(database: string, options: Partial<DiffOptions> = {}) {
  return diffDatabases({
    left: { socket: left.socket, user: 'root', database },
    right: { socket: right.socket, user: 'root', database },
    logger: silentLogger,
    chunkRows: 1000,
    ...options,
  });
}

export const counts = (t: {
  processed: number;
  matching: number;
  mismatched: number;
  extraLeft: number;
  extraRight: number;
}) => ({
  processed: t.processed,
  matching: t.matching,
  mismatched: t.mismatched,
  extraLeft: t.extraLeft,
  extraRight: t.extraRight,
});

const ordersTable = () => [
  `CREATE TABLE orders (
     id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
     customer VARCHAR(64) NOT NULL,
     note TEXT NULL,
     amount DECIMAL(12,2) NULL,
     placed DATETIME(6) NULL,
     payload VARBINARY(32) NULL,
     score DOUBLE NULL
   )`,
  `INSERT INTO orders SELECT seq, CONCAT('customer-', seq % 97), IF(seq % 5 = 0, NULL, CONCAT('note\\t"', seq, '"\\n')),
          IF(seq % 7 = 0, NULL, seq / 4), '2024-01-01' + INTERVAL seq SECOND + INTERVAL seq MICROSECOND,
          IF(seq % 3 = 0, NULL, UNHEX(SHA2(seq, 256))), IF(seq % 11 = 0, NULL, seq * 1.5)
     FROM ${server.numbers(5000)}`,
];

/** Registers the suite's servers and tests; call once, at the top of a test file. */
export function defineDiffSuite(of: DiffServer): void {
  server = of;
  beforeAll(async () => {
    [left, right] = await Promise.all([of.create('diff-left'), of.create('diff-right')]);
  }, 120_000);
  afterAll(async () => {
    await Promise.all([left?.dispose(), right?.dispose()]);
  });
  describeDiffDatabases();
  describeDiffCommand();
}

function describeDiffDatabases(): void {
  describe(`diffDatabases on ${server.name}`, () => {
    it('reports identical tables as identical, in every chunk', async () => {
      const database = await both(ordersTable());
      const { result, notes } = await diff(database);
      expect(result.tables).toHaveLength(1);
      expect(counts(result.tables[0]!)).toEqual({
        processed: 5000,
        matching: 5000,
        mismatched: 0,
        extraLeft: 0,
        extraRight: 0,
      });
      expect(result.total.matching).toBe(5000);
      expect(notes[0]).toMatchObject({ orderedBy: 'primary key', chunks: 6, chunksConfirmed: 6 });
      expect(result.tables[0]!.samples).toEqual({ mismatched: [], extraLeft: [], extraRight: [] });
    });

    it.each([
      ['with chunk checksums', true],
      ['streaming every row', false],
    ])('reports N updates, M deletes and K inserts exactly (%s)', async (_name, checksums) => {
      const database = await both(ordersTable());
      await run(right, database, [
        // 12 updates, spread over chunks, touching different columns (one NULL to a value, one value to NULL).
        "UPDATE orders SET customer = 'changed' WHERE id IN (3, 1500, 2999)",
        'UPDATE orders SET note = NULL WHERE id IN (4, 4001)',
        "UPDATE orders SET note = 'now set' WHERE id = 5",
        'UPDATE orders SET amount = amount + 0.01 WHERE id IN (6, 3333)',
        "UPDATE orders SET placed = '2030-01-01 00:00:00.000001' WHERE id = 8",
        'UPDATE orders SET payload = 0x00ff WHERE id = 10',
        'UPDATE orders SET score = 0 WHERE id IN (13, 4999)',
        // 7 deletes.
        'DELETE FROM orders WHERE id IN (1, 2, 1000, 1001, 2500, 4998, 5000)',
        // 4 inserts: before, between and after the left's keys.
        "INSERT INTO orders (id, customer) VALUES (0, 'new'), (5001, 'new'), (6000, 'new'), (99999999999, 'new')",
      ]);
      const { result } = await diff(database, { checksums });
      const table = result.tables[0]!;
      expect(counts(table)).toEqual({
        processed: 5004,
        matching: 4981,
        mismatched: 12,
        extraLeft: 7,
        extraRight: 4,
      });
      expect(table.samples.mismatched.map((s) => s.key)).toEqual(
        [3, 4, 5, 6, 8, 10, 13, 1500, 2999, 3333].map((id) => ({ id: String(id) })),
      );
      expect(table.samples.mismatched[0]).toMatchObject({
        columns: ['customer'],
        left: { id: '3', customer: 'customer-3' },
        right: { id: '3', customer: 'changed' },
      });
      expect(table.samples.mismatched.find((s) => s.key.id === '4')!.columns).toEqual(['note']);
      expect(table.samples.mismatched.find((s) => s.key.id === '10')!.right!.payload).toEqual({
        hex: '00ff',
      });
      expect(table.samples.extraLeft.map((s) => s.key!.id)).toEqual([
        '1',
        '2',
        '1000',
        '1001',
        '2500',
        '4998',
        '5000',
      ]);
      expect(table.samples.extraLeft[0]!.row).toMatchObject({ id: '1', customer: 'customer-1' });
      expect(table.samples.extraRight.map((s) => s.key!.id)).toEqual(['0', '5001', '6000', '99999999999']);
    });

    it('is not fooled by values swapped between rows or a row duplicated in place of another', async () => {
      const database = await both([
        'CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(10), b VARCHAR(10))',
        "INSERT INTO t VALUES (1, 'x', 'y'), (2, 'y', 'x'), (3, 'p', 'q'), (4, 'r', 's'), (5, CONCAT('x', CHAR(0)), 'y')",
        'CREATE TABLE bag (a INT, b VARCHAR(10))',
        "INSERT INTO bag VALUES (1, 'one'), (2, 'two'), (3, 'three')",
      ]);
      await run(right, database, [
        "UPDATE t SET a = 'y', b = 'x' WHERE id = 1",
        "UPDATE t SET a = 'x', b = 'y' WHERE id = 2",
        // Column boundaries moved: 'p','q' → 'pq',''.
        "UPDATE t SET a = 'pq', b = '' WHERE id = 3",
        // A 0x00 byte (the separator of the row encoding) moved from one column into the next.
        "UPDATE t SET a = 'x', b = CONCAT(CHAR(0), 'y') WHERE id = 5",
        "UPDATE bag SET a = 1, b = 'one' WHERE a = 3",
      ]);
      const { result, notes } = await diff(database);
      const [bag, t] = result.tables;
      expect(counts(t!)).toEqual({ processed: 5, matching: 1, mismatched: 4, extraLeft: 0, extraRight: 0 });
      expect(counts(bag!)).toEqual({ processed: 4, matching: 2, mismatched: 0, extraLeft: 1, extraRight: 1 });
      expect(bag!.samples.extraLeft).toEqual([{ key: null, row: { a: 3, b: 'three' } }]);
      expect(bag!.samples.extraRight).toEqual([{ key: null, row: { a: 1, b: 'one' } }]);
      expect(notes.find((n) => n.table === 'bag')!.orderedBy).toBe('row digest');
    });

    it('hashes the bytes of columns in mixed character sets and collations without converting them', async () => {
      const database = await both([
        `CREATE TABLE mix (id INT PRIMARY KEY, a VARCHAR(10) COLLATE utf8mb4_general_ci,
         b VARCHAR(10) COLLATE utf8mb4_unicode_ci, c VARCHAR(10) CHARACTER SET latin1, d VARBINARY(10),
         e ENUM('x', 'y'), f BIT(8))`,
        "INSERT INTO mix VALUES (1, '\u00e9', '\u00e9', '\u00e9', 0xff, 'x', b'1'), (2, 'a', 'b', 'c', 0xfe, 'y', b'0')",
        'CREATE TABLE bag (d VARBINARY(10), c VARCHAR(10) CHARACTER SET latin1, a VARCHAR(10))',
        "INSERT INTO bag VALUES (0xff, '\u00e9', 'a'), (0xfe, '\u00e9', 'a')",
      ]);
      expect((await diff(database)).result.total).toMatchObject({ matching: 4, mismatched: 0, extraLeft: 0 });
      await run(right, database, [
        'UPDATE mix SET d = 0xfd WHERE id = 1',
        "UPDATE mix SET c = 'e' WHERE id = 2",
        'UPDATE bag SET d = 0xfd WHERE d = 0xff',
      ]);
      const { result } = await diff(database);
      const [bag, mix] = result.tables;
      expect(mix!.samples.mismatched.map((s) => [s.key.id, s.columns])).toEqual([
        [1, ['d']],
        [2, ['c']],
      ]);
      expect(counts(bag!)).toMatchObject({ matching: 1, extraLeft: 1, extraRight: 1 });
    });

    it('compares a table without a primary key by full-row order, duplicates included', async () => {
      const database = await both([
        'CREATE TABLE log (at DATE, message VARCHAR(20) NULL)',
        "INSERT INTO log VALUES ('2024-01-01', 'a'), ('2024-01-01', 'a'), ('2024-01-02', NULL), ('2024-01-03', '')",
      ]);
      const logger = recordingLogger();
      expect(counts((await diff(database, { logger })).result.tables[0]!)).toEqual({
        processed: 4,
        matching: 4,
        mismatched: 0,
        extraLeft: 0,
        extraRight: 0,
      });
      expect(logger.records.some((r) => r.message.includes('no primary key'))).toBe(true);
      await run(right, database, [
        "DELETE FROM log WHERE message = 'a' LIMIT 1",
        "UPDATE log SET message = 'NULL' WHERE message IS NULL",
      ]);
      expect(counts((await diff(database)).result.tables[0]!)).toEqual({
        processed: 5,
        matching: 2,
        mismatched: 0,
        extraLeft: 2,
        extraRight: 1,
      });
    });

    it('tells NULL from an empty string and from the text NULL in non-key columns', async () => {
      const database = await both([
        'CREATE TABLE n (id INT PRIMARY KEY, a VARCHAR(10) NULL, b INT NULL, c VARCHAR(10) NULL)',
        "INSERT INTO n VALUES (1, NULL, NULL, NULL), (2, '', 0, 'x'), (3, 'NULL', NULL, ''), (4, NULL, 1, NULL)",
      ]);
      expect((await diff(database)).result.total.mismatched).toBe(0);
      await run(right, database, [
        "UPDATE n SET a = '' WHERE id = 1",
        'UPDATE n SET a = NULL WHERE id = 2',
        'UPDATE n SET a = NULL WHERE id = 3',
        // NULLs moved between columns: (NULL, 1, NULL) → (1, NULL, NULL) as text.
        "UPDATE n SET a = '1', b = NULL WHERE id = 4",
      ]);
      const { result } = await diff(database);
      expect(result.tables[0]!.samples.mismatched.map((s) => [s.key.id, s.columns])).toEqual([
        [1, ['a']],
        [2, ['a']],
        [3, ['a']],
        [4, ['a', 'b']],
      ]);
    });

    it('tells a 0x00 byte moved across a column boundary from the same bytes where they were', async () => {
      const database = await both([
        'CREATE TABLE z (id INT PRIMARY KEY, a VARBINARY(10), b VARCHAR(10), c VARBINARY(10), n INT)',
        "INSERT INTO z VALUES (1, 0x7800, 'y', 0x7a, 1), (2, 0x70, 'q', 0x0072, 2), (3, 0x61, 'b', 0x63, 3)",
      ]);
      expect((await diff(database)).result.total.mismatched).toBe(0);
      await run(right, database, [
        // Same bytes in the row, one column boundary further on: x|0y where x0|y was, q0|r where q|0r was.
        "UPDATE z SET a = 0x78, b = CONCAT(CHAR(0), 'y') WHERE id = 1",
        "UPDATE z SET b = CONCAT('q', CHAR(0)), c = 0x72 WHERE id = 2",
      ]);
      const { result } = await diff(database);
      expect(result.tables[0]!.samples.mismatched.map((s) => [s.key.id, s.columns])).toEqual([
        [1, ['a', 'b']],
        [2, ['b', 'c']],
      ]);
      expect(counts(result.tables[0]!)).toMatchObject({ matching: 1, mismatched: 2 });
    });

    it('orders a case-insensitive key the way the server does: no false extras, a changed case is a mismatch', async () => {
      // Keys that are distinct under each collation; the UCA one ignores control characters.
      const ciKeys = [
        'a',
        'B',
        'b\t',
        'c ',
        'C\u00e9',
        'D',
        '\u00e9',
        'f1',
        'Z',
        '\u00c5x',
        'a\u0000',
        ' x',
        '😀',
      ];
      const ucaKeys = ['a', 'B', 'c ', 'C\u00e9', 'D', '\u00e9', 'f1', 'Z', '\u00c5x', ' x', '😀', 'ß'];
      const rows = (keys: string[]) =>
        Array.from({ length: 3000 }, (_, i) => `${keys[i % keys.length]}${Math.floor(i / keys.length)}`);
      const database = await both([
        'CREATE TABLE ci (k VARCHAR(40) COLLATE utf8mb4_general_ci PRIMARY KEY, v INT)',
        `CREATE TABLE uca (k VARCHAR(40) COLLATE utf8mb4_unicode_ci PRIMARY KEY, v INT)`,
        `CREATE TABLE padded (k VARCHAR(10) COLLATE utf8mb4_general_ci PRIMARY KEY, v INT)`,
        `INSERT INTO ci VALUES ${rows(ciKeys)
          .map((k, i) => `(${quote(k)}, ${i})`)
          .join(', ')}`,
        `INSERT INTO uca VALUES ${rows(ucaKeys)
          .map((k, i) => `(${quote(k)}, ${i})`)
          .join(', ')}`,
        `INSERT INTO padded VALUES ('a', 1), ('a\\t', 2), ('a\\tb', 3), ('ab', 4), ('b ', 5), ('b\\t', 6), ('', 7), (' \\t', 8)`,
      ]);
      const identical = await diff(database, { chunkRows: 1000 });
      expect(identical.result.total).toMatchObject({
        mismatched: 0,
        extraLeft: 0,
        extraRight: 0,
        matching: 6008,
      });
      await run(right, database, [
        "UPDATE ci SET k = UPPER(k) WHERE k = 'a0'",
        "UPDATE padded SET k = 'B' WHERE k = 'b '",
      ]);
      const changed = await diff(database, { chunkRows: 1000 });
      const byTable = Object.fromEntries(changed.result.tables.map((t) => [t.table, t]));
      expect(counts(byTable.ci!)).toEqual({
        processed: 3000,
        matching: 2999,
        mismatched: 1,
        extraLeft: 0,
        extraRight: 0,
      });
      expect(byTable.ci!.samples.mismatched[0]).toMatchObject({
        key: { k: 'a0' },
        columns: ['k'],
        right: { k: 'A0' },
      });
      expect(counts(byTable.padded!)).toMatchObject({ mismatched: 1, extraLeft: 0, extraRight: 0 });
    });

    it('compares composite and binary keys across chunk bounds', async () => {
      const database = await both([
        'CREATE TABLE c (tenant INT, name VARCHAR(20) COLLATE utf8mb4_general_ci, part VARBINARY(8), v INT, PRIMARY KEY (tenant, name, part))',
        `INSERT INTO c SELECT seq % 7, CONCAT(IF(seq % 2, 'n', 'N'), seq % 13), UNHEX(LPAD(HEX(seq), 8, '0')), seq FROM ${server.numbers(4000)}`,
        'CREATE TABLE b (k VARBINARY(16) PRIMARY KEY, v INT)',
        `INSERT INTO b SELECT IF(seq % 4 = 0, UNHEX(LPAD(HEX(seq), 8, '0')), CONCAT(CHAR(seq % 256), 0x00ff, seq)), seq FROM ${server.numbers(3000)}`,
      ]);
      const identical = await diff(database, { chunkRows: 1000 });
      expect(identical.result.total).toMatchObject({ processed: 7000, matching: 7000 });
      await run(right, database, [
        'UPDATE c SET v = -1 WHERE tenant = 3 AND v > 3000',
        'DELETE FROM b WHERE v IN (1, 2000)',
        "INSERT INTO b VALUES (X'', 0), (0x00, 0), (0xffffffffffff, 0)",
      ]);
      const changed = await diff(database, { chunkRows: 1000 });
      const [b, c] = changed.result.tables;
      const updated = (
        await left.query<Array<{ n: number }>>(
          `SELECT COUNT(*) AS n FROM ${database}.c WHERE tenant = 3 AND v > 3000`,
        )
      )[0]!.n;
      expect(counts(c!)).toMatchObject({ mismatched: Number(updated), extraLeft: 0, extraRight: 0 });
      expect(counts(b!)).toMatchObject({ mismatched: 0, extraLeft: 2, extraRight: 3 });
      expect(b!.samples.extraRight.map((s) => s.key)).toEqual([
        { k: { hex: '' } },
        { k: { hex: '00' } },
        { k: { hex: 'ffffffffffff' } },
      ]);
    });

    it('compares columns whose types differ after a cast to a common type', async () => {
      const database = `d${++databases}`;
      await run(left, 'mysql', [
        `CREATE DATABASE ${database}`,
        `CREATE TABLE ${database}.t (id INT PRIMARY KEY, amount DECIMAL(10,2), name VARCHAR(20) CHARACTER SET latin1, at DATETIME)`,
        `INSERT INTO ${database}.t VALUES (1, 1.5, 'caf\u00e9', '2024-01-01 10:00:00'), (2, NULL, NULL, NULL)`,
      ]);
      await run(right, 'mysql', [
        `CREATE DATABASE ${database}`,
        `CREATE TABLE ${database}.t (id BIGINT PRIMARY KEY, amount DECIMAL(14,4), name TEXT CHARACTER SET utf8mb4, at DATETIME(6))`,
        `INSERT INTO ${database}.t VALUES (1, 1.5, 'caf\u00e9', '2024-01-01 10:00:00'), (2, NULL, NULL, NULL)`,
      ]);
      expect((await diff(database)).result.total).toMatchObject({ matching: 2, mismatched: 0 });
      await run(right, database, ["UPDATE t SET amount = 1.5001, at = '2024-01-01 10:00:00.5' WHERE id = 1"]);
      const changed = await diff(database);
      expect(changed.result.tables[0]!.samples.mismatched[0]!.columns).toEqual(['amount', 'at']);
    });

    it('checks that the right is a subset of the left with --subset', async () => {
      const database = await both([
        'CREATE TABLE s (id INT PRIMARY KEY, v INT)',
        `INSERT INTO s SELECT seq, seq FROM ${server.numbers(100)}`,
      ]);
      await run(right, database, ['DELETE FROM s WHERE id > 50']);
      const subset = await diff(database, { subset: true });
      expect(subset.subset).toBe(true);
      expect(counts(subset.result.tables[0]!)).toEqual({
        processed: 100,
        matching: 50,
        mismatched: 0,
        extraLeft: 50,
        extraRight: 0,
      });
      await run(right, database, ['INSERT INTO s VALUES (1000, 1)', 'UPDATE s SET v = 0 WHERE id = 1']);
      const wrong = await diff(database, { subset: true });
      expect(wrong.result.total).toMatchObject({ mismatched: 1, extraRight: 1 });
    });

    it.each([
      [
        'uint64',
        'BIGINT UNSIGNED',
        (i: string) => `CAST(CONV(LEFT(SHA2(${i}, 256), 16), 16, 10) AS UNSIGNED)`,
      ],
      ['bytes', 'VARBINARY(16)', (i: string) => `UNHEX(LEFT(SHA2(${i}, 256), 16))`],
    ] as const)(
      'checks one destination of a hand-split table with --left-key-range (%s ids)',
      async (type, columnType, id) => {
        const database = await both([
          `CREATE TABLE customer (id INT PRIMARY KEY, keyspace_id ${columnType} NOT NULL, name VARCHAR(20))`,
          `INSERT INTO customer SELECT seq, ${id('seq')}, CONCAT('c', seq) FROM ${server.numbers(4000)}`,
          'CREATE TABLE events (keyspace_id ' + columnType + ' NOT NULL, what VARCHAR(20))',
          `INSERT INTO events SELECT ${id('seq')}, CONCAT('e', seq) FROM ${server.numbers(500)}`,
        ]);
        // The destination -80 keeps the rows whose id's first byte is below 0x80.
        await run(right, database, [
          `DELETE FROM customer WHERE ${type === 'uint64' ? 'keyspace_id >= 9223372036854775808' : 'keyspace_id >= 0x80'}`,
          `DELETE FROM events WHERE ${type === 'uint64' ? 'keyspace_id >= 9223372036854775808' : 'keyspace_id >= 0x80'}`,
        ]);
        const kept = Number(
          (await right.query<Array<{ n: number }>>(`SELECT COUNT(*) AS n FROM ${database}.customer`))[0]!.n,
        );
        expect(kept).toBeGreaterThan(1500);
        expect(kept).toBeLessThan(2500);
        const options = { leftKeyRange: { range: KeyRange.parse('-80'), column: 'keyspace_id', type } };
        const split = await diff(database, options);
        const [customer, events] = split.result.tables;
        expect(counts(customer!)).toEqual({
          processed: kept,
          matching: kept,
          mismatched: 0,
          extraLeft: 0,
          extraRight: 0,
        });
        expect(events!.extraLeft + events!.extraRight + events!.mismatched).toBe(0);

        // A row that belongs to the other destination, and one that is missing here.
        const [outside] = await left.query<Array<{ id: number }>>(
          `SELECT id FROM ${database}.customer WHERE ${type === 'uint64' ? 'keyspace_id >= 9223372036854775808' : 'keyspace_id >= 0x80'} ORDER BY id LIMIT 1`,
        );
        await run(right, database, [
          `INSERT INTO customer SELECT * FROM (SELECT ${outside!.id} AS id, ${id(String(outside!.id))} AS k, 'stray' AS n) x`,
          `DELETE FROM customer WHERE name <> 'stray' ORDER BY id LIMIT 1`,
        ]);
        const wrong = await diff(database, options);
        expect(counts(wrong.result.tables[0]!)).toMatchObject({ mismatched: 0, extraLeft: 1, extraRight: 1 });
      },
    );

    it('filters keyspace ids on the server exactly as KeyRange.contains does', async () => {
      const uint64s = [
        0n,
        1n,
        2n ** 62n - 1n,
        2n ** 62n,
        2n ** 63n - 1n,
        2n ** 63n,
        2n ** 63n + 1n,
        0xc0n << 56n,
        2n ** 64n - 1n,
      ];
      const bytes = [
        '',
        '00',
        '3f',
        '40',
        '4000',
        '7f',
        '7fffffffffffffff',
        '80',
        '8000000000000000',
        '800000000000000000',
        'c0',
        'ff',
        'ffff',
      ];
      const database = await both([
        'CREATE TABLE u (k BIGINT UNSIGNED PRIMARY KEY)',
        `INSERT INTO u VALUES ${uint64s.map((v) => `(${v})`).join(', ')}`,
        'CREATE TABLE b (k VARBINARY(16) PRIMARY KEY)',
        `INSERT INTO b VALUES ${bytes.map((v) => `(X'${v}')`).join(', ')}`,
      ]);
      const ranges = [
        '-80',
        '80-',
        '40-80',
        '-40',
        'c0-',
        '4000000000000000-8000000000000001',
        '-800000000000000000',
        '800000000000000000-',
        '7f-8000000000000000',
      ];
      for (const text of ranges) {
        const range = KeyRange.parse(text);
        const selectedU = await left.query<Array<{ k: string }>>(
          `SELECT k FROM ${database}.u WHERE ${keyRangeSql(range, 'k', 'uint64') ?? 'TRUE'} ORDER BY k`,
        );
        expect(
          selectedU.map((r) => BigInt(r.k)),
          `uint64 ${text}`,
        ).toEqual(uint64s.filter((v) => range.contains(uint64KeyspaceId(v))));
        const selectedB = await left.query<Array<{ k: Buffer }>>(
          `SELECT k FROM ${database}.b WHERE ${keyRangeSql(range, 'k', 'bytes') ?? 'TRUE'} ORDER BY k`,
        );
        expect(
          selectedB.map((r) => r.k.toString('hex')),
          `bytes ${text}`,
        ).toEqual(bytes.filter((v) => range.contains(Buffer.from(v, 'hex'))));
      }
    });

    it('stops at once when interrupted and leaves no connection behind', async () => {
      const database = await both(ordersTable());
      // One probe connection for every count: a connection per count could still be listed while the
      // server tears it down, and be taken for one the diff left behind.
      const probe = await left.connect();
      onTestFinished(() => probe.end());
      const connections = async () => {
        const [rows] = await probe.query(
          "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE USER = 'root'",
        );
        return Number((rows as Array<{ n: number }>)[0]!.n);
      };
      const before = await connections();
      const controller = new AbortController();
      const interrupted = diff(database, {
        checksums: false,
        signal: controller.signal,
        onProgress: () => controller.abort(new Error('interrupted by SIGTERM')),
      });
      await expect(interrupted).rejects.toThrow('interrupted by SIGTERM');
      for (let i = 0; i < 100 && (await connections()) > before; i++)
        await new Promise((r) => setTimeout(r, 50));
      expect(await connections()).toBe(before);
    });

    it('refuses tables whose structure differs, naming them', async () => {
      const database = `d${++databases}`;
      await run(left, 'mysql', [
        `CREATE DATABASE ${database}`,
        `CREATE TABLE ${database}.a (id INT PRIMARY KEY, v INT)`,
        `CREATE TABLE ${database}.b (id INT PRIMARY KEY)`,
        `CREATE TABLE ${database}.c (k VARCHAR(5) COLLATE utf8mb4_bin PRIMARY KEY)`,
      ]);
      await run(right, 'mysql', [
        `CREATE DATABASE ${database}`,
        `CREATE TABLE ${database}.a (id INT PRIMARY KEY, w INT)`,
        `CREATE TABLE ${database}.c (k VARCHAR(5) COLLATE utf8mb4_general_ci PRIMARY KEY)`,
      ]);
      const failure = await diff(database).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(VerificationError);
      expect((failure as Error).message).toMatch(
        /a columns only on the left: v; columns only on the right: w/,
      );
      expect((failure as Error).message).toMatch(/b is missing on the right/);
      expect((failure as Error).message).toMatch(
        /c key column k sorts by utf8mb4_bin on the left and utf8mb4_general_ci/,
      );
    });
  });
}

export function quote(text: string): string {
  return `'${text
    .replace(/\\/g, '\\\\')
    .replace(/'/g, "''")
    .replace(/\u0000/g, '\\0')
    .replace(/\t/g, '\\t')}'`;
}

function describeDiffCommand(): void {
  describe(`stepback diff on ${server.name}`, () => {
    const uri = (instance: TestInstance, database: string, user = 'root') =>
      `mysql://${user}@localhost/${database}?socket=${encodeURIComponent(instance.socket)}`;

    it('prints the result as JSON and exits 5 when rows differ, 0 when they match', async () => {
      const database = await both([
        'CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(10))',
        "INSERT INTO a VALUES (1, 'x'), (2, 'y'), (3, 'z')",
        'CREATE TABLE b (id INT PRIMARY KEY)',
        'INSERT INTO b VALUES (1)',
      ]);
      for (const instance of [left, right]) {
        await run(instance, database, [
          "CREATE USER IF NOT EXISTS 'differ'@'localhost' IDENTIFIED BY 'se cret'",
          "GRANT SELECT ON *.* TO 'differ'@'localhost'",
        ]);
      }
      const args = [
        'diff',
        '--left',
        uri(left, database, 'differ'),
        '--right',
        uri(right, database, 'differ'),
        '--left-password-env',
        'DIFF_PASSWORD',
        '--right-password-env',
        'DIFF_PASSWORD',
      ];
      const env = { DIFF_PASSWORD: 'se cret' };
      const same = await runStepback([...args, '--json'], { env });
      expect(same.code).toBe(0);
      expect(same.json).toMatchObject({
        total: { processed: 4, matching: 4, mismatched: 0, extraLeft: 0, extraRight: 0 },
      });

      await run(right, database, ["UPDATE a SET v = 'changed' WHERE id = 2", 'DELETE FROM b']);
      const differs = await runStepback([...args, '--json'], { env });
      expect(differs.code).toBe(5);
      const result = differs.json as {
        tables: Array<Record<string, unknown>>;
        total: Record<string, unknown>;
      };
      expect(Object.keys(result)).toEqual(['tables', 'total']);
      expect(result.tables.map((t) => Object.keys(t).sort())).toEqual(
        Array(2).fill([
          'extraLeft',
          'extraRight',
          'matching',
          'mismatched',
          'processed',
          'samples',
          'seconds',
          'table',
        ]),
      );
      expect(result.tables[0]).toMatchObject({
        table: 'a',
        processed: 3,
        matching: 2,
        mismatched: 1,
        extraLeft: 0,
        extraRight: 0,
        samples: {
          mismatched: [
            { key: { id: 2 }, columns: ['v'], left: { id: 2, v: 'y' }, right: { id: 2, v: 'changed' } },
          ],
          extraLeft: [],
          extraRight: [],
        },
      });
      expect(result.tables[1]).toMatchObject({
        table: 'b',
        extraLeft: 1,
        samples: { extraLeft: [{ key: { id: 1 }, row: { id: 1 } }] },
      });
      expect(result.total).toEqual({ processed: 4, matching: 2, mismatched: 1, extraLeft: 1, extraRight: 0 });

      const human = await runStepback(args, { env });
      expect(human.code).toBe(5);
      expect(human.stdout).toMatch(
        /^TABLE +ROWS +MATCHING +MISMATCHED +EXTRA LEFT +EXTRA RIGHT +ROWS\/S +SECONDS$/m,
      );
      expect(human.stdout).toContain('a: mismatched id=2 (v)');
      expect(human.stdout).toContain('b: only on the left id=1');
      expect(human.stdout).toContain('DIFFERENT: 1 mismatched, 1 only on the left, 0 only on the right');
    });

    it('refuses a password in the URI, a missing password variable and a key range without its column', async () => {
      const database = await both(['CREATE TABLE a (id INT PRIMARY KEY)']);
      const withPassword = await runStepback([
        'diff',
        '--left',
        `mysql://root:pw@127.0.0.1:${left.port}/${database}`,
        '--right',
        uri(right, database),
      ]);
      expect(withPassword.code).toBe(2);
      expect(withPassword.stderr).toContain('has a password in it');
      const unset = await runStepback([
        'diff',
        '--left',
        uri(left, database),
        '--right',
        uri(right, database),
        '--left-password-env',
        'STEPBACK_TEST_UNSET_VARIABLE',
      ]);
      expect(unset.code).toBe(2);
      expect(unset.stderr).toContain('STEPBACK_TEST_UNSET_VARIABLE is not set');
      const range = await runStepback([
        'diff',
        '--left',
        uri(left, database),
        '--right',
        uri(right, database),
        '--left-key-range',
        '-80',
      ]);
      expect(range.code).toBe(2);
      expect(range.stderr).toContain('--key-column');
      const noDatabase = await runStepback([
        'diff',
        '--left',
        `mysql://root@localhost/?socket=${left.socket}`,
        '--right',
        uri(right, database),
      ]);
      expect(noDatabase.code).toBe(2);
      expect(noDatabase.stderr).toContain('names no database');
    });

    it('checks a split destination over TCP with --left-key-range', async () => {
      const database = await both([
        'CREATE TABLE c (id INT PRIMARY KEY, keyspace_id BIGINT UNSIGNED NOT NULL)',
        'INSERT INTO c VALUES (1, 1), (2, 9223372036854775807), (3, 9223372036854775808), (4, 18446744073709551615)',
      ]);
      await run(right, database, ['DELETE FROM c WHERE keyspace_id < 9223372036854775808']);
      const run80 = await runStepback([
        'diff',
        '--left',
        `mysql://root@127.0.0.1:${left.port}/${database}`,
        '--right',
        `mysql://root@127.0.0.1:${right.port}/${database}`,
        '--left-key-range',
        '80-',
        '--key-column',
        'keyspace_id',
        '--json',
      ]);
      expect(run80.code).toBe(0);
      expect(run80.json).toMatchObject({ total: { processed: 2, matching: 2, withoutKeyspaceId: 0 } });
    });

    it('counts left rows without a keyspace id, which no key range holds, as a difference', async () => {
      const database = await both([
        'CREATE TABLE n (id INT PRIMARY KEY, keyspace_id BIGINT UNSIGNED NULL)',
        'INSERT INTO n VALUES (1, 1), (2, NULL), (3, 18446744073709551615), (4, NULL)',
      ]);
      await run(right, database, [
        'DELETE FROM n WHERE keyspace_id IS NULL OR keyspace_id >= 9223372036854775808',
      ]);
      const split = await runStepback([
        'diff',
        '--left',
        uri(left, database),
        '--right',
        uri(right, database),
        '--left-key-range',
        '-80',
        '--key-column',
        'keyspace_id',
        '--json',
      ]);
      expect(split.code).toBe(5);
      expect(split.json).toMatchObject({
        tables: [{ table: 'n', processed: 1, matching: 1, withoutKeyspaceId: 2 }],
        total: { matching: 1, withoutKeyspaceId: 2 },
      });
      const shown = await runStepback([
        'diff',
        '--left',
        uri(left, database),
        '--right',
        uri(right, database),
        '--left-key-range',
        '-80',
        '--key-column',
        'keyspace_id',
      ]);
      expect(shown.stdout).toContain('n: 2 left rows have no keyspace id (NULL): no key range holds them');
    });
  });
}
