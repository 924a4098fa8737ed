import { describe, expect, it } from 'vitest';
import { both, counts, defineDiffSuite, diff, diffServers, quote, run } from '../support/diff-suite.ts';
import { createMysqlInstance } from '../support/mysql.ts';

/**
 * The diff suite on two MySQL 9.7 servers (needs .stepback-mysql/). MySQL has no sequence engine:
 * each server gets numbers.seq, 1 to 10000, in a database no diff looks at; and root over TCP from
 * 127.0.0.1 with no password, as the MariaDB servers have it.
 */
defineDiffSuite({
  name: 'MySQL 9.7',
  async create(name) {
    const instance = await createMysqlInstance({ name, extraCnf: ['cte-max-recursion-depth=20000'] });
    await instance.query('CREATE DATABASE numbers');
    await instance.query('CREATE TABLE numbers.seq (seq INT PRIMARY KEY)');
    await instance.query(
      'INSERT INTO numbers.seq WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 10000) SELECT n FROM s',
    );
    await instance.query("CREATE USER 'root'@'127.0.0.1'");
    await instance.query("GRANT ALL ON *.* TO 'root'@'127.0.0.1'");
    return instance;
  },
  numbers: (n) => `numbers.seq WHERE seq <= ${n}`,
});

describe('diffDatabases on what only MySQL has', () => {
  it("orders a key in MySQL's default collation (utf8mb4_0900_ai_ci, NO PAD: 'a' and 'a ' are two keys) and compares JSON", async () => {
    const keys = ['a', 'a ', 'b\t', 'B0', '\u00e9', 'f1', 'Z', '\u00c5x', ' x', '\ud83d\ude00', '\u00df'];
    const rows = Array.from(
      { length: 2000 },
      (_, i) => `${keys[i % keys.length]}${Math.floor(i / keys.length)}`,
    );
    const database = await both([
      'CREATE TABLE ai (k VARCHAR(40) COLLATE utf8mb4_0900_ai_ci PRIMARY KEY, v INT, doc JSON)',
      `INSERT INTO ai VALUES ${rows.map((k, i) => `(${quote(k)}, ${i}, JSON_OBJECT('i', ${i}, 'k', ${quote(k)}))`).join(', ')}`,
      `CREATE TABLE nopad (k VARCHAR(10) COLLATE utf8mb4_0900_ai_ci PRIMARY KEY, v INT)`,
      `INSERT INTO nopad VALUES ('a', 1), ('a ', 2), ('a  ', 3), ('b', 4)`,
    ]);
    const identical = await diff(database, { chunkRows: 500 });
    expect(identical.result.total).toMatchObject({
      mismatched: 0,
      extraLeft: 0,
      extraRight: 0,
      matching: 2004,
    });
    await run(diffServers().right, database, [
      `UPDATE ai SET doc = JSON_SET(doc, '$.i', -1) WHERE v = 7`,
      "DELETE FROM nopad WHERE k = 'a '",
    ]);
    const changed = await diff(database, { chunkRows: 500 });
    const byTable = Object.fromEntries(changed.result.tables.map((t) => [t.table, t]));
    expect(counts(byTable.ai!)).toMatchObject({ mismatched: 1, extraLeft: 0, extraRight: 0 });
    expect(byTable.ai!.samples.mismatched[0]!.columns).toEqual(['doc']);
    expect(counts(byTable.nopad!)).toEqual({
      processed: 4,
      matching: 3,
      mismatched: 0,
      extraLeft: 1,
      extraRight: 0,
    });
    expect(byTable.nopad!.samples.extraLeft[0]!.key).toEqual({ k: 'a ' });
  });
});
