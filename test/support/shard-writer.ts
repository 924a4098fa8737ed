import { randomBytes } from 'node:crypto';
import type { Connection } from '../../agent/mysql/connection.ts';
import type { TestInstance } from './mariadb.ts';

/**
 * A shard's schema for resharding tests: one table keyed by a uint64 keyspace id and one by a
 * varbinary id would need two split columns, so a database holds one or the other.
 */
export async function createShardSchema(
  instance: TestInstance,
  database: string,
  keyType: 'uint64' | 'bytes',
): Promise<void> {
  const ksid = keyType === 'uint64' ? 'ksid BIGINT UNSIGNED' : 'ksid VARBINARY(16)';
  await instance.query(`CREATE DATABASE ${database}`);
  await instance.query(
    `CREATE TABLE ${database}.customers (id BIGINT AUTO_INCREMENT PRIMARY KEY, ${ksid} NOT NULL, name VARCHAR(64) NOT NULL, note TEXT NULL, blob_data VARBINARY(64) NULL, amount DECIMAL(12,2) NULL, seen DATETIME(6) NULL) ENGINE=InnoDB`,
  );
  await instance.query(
    `CREATE TABLE ${database}.orders (customer_id BIGINT NOT NULL, line INT NOT NULL, ${ksid} NOT NULL, item VARCHAR(32) NOT NULL, qty INT NULL, PRIMARY KEY (customer_id, line)) ENGINE=InnoDB`,
  );
  // No primary key: rows are found by all their columns.
  await instance.query(
    `CREATE TABLE ${database}.audit (${ksid} NOT NULL, line VARCHAR(64) NULL) ENGINE=InnoDB`,
  );
}

export function randomKeyspaceId(keyType: 'uint64' | 'bytes'): string | Buffer {
  return keyType === 'uint64'
    ? randomBytes(8).readBigUInt64BE().toString()
    : randomBytes(1 + (randomBytes(1)[0]! % 8));
}

async function insertCustomer(c: Connection, database: string, keyType: 'uint64' | 'bytes'): Promise<void> {
  const nullable = Math.random() < 0.3;
  await c.query(`INSERT INTO ${database}.audit (ksid, line) VALUES (?, ?)`, [
    randomKeyspaceId(keyType),
    nullable ? null : 'inserted',
  ]);
  await c.query(
    `INSERT INTO ${database}.customers (ksid, name, note, blob_data, amount, seen) VALUES (?, ?, ?, ?, ?, ?)`,
    [
      randomKeyspaceId(keyType),
      `c${Math.floor(Math.random() * 1e6)}`,
      nullable ? null : 'line one\nline "two"\t\\',
      nullable ? null : randomBytes(12),
      nullable ? null : (Math.random() * 1000).toFixed(2),
      nullable ? null : '2026-11-30 12:34:56.123456',
    ],
  );
}

/** Seeds `rows` customers with a few orders each. */
export async function seedShard(
  instance: TestInstance,
  database: string,
  keyType: 'uint64' | 'bytes',
  rows: number,
): Promise<void> {
  const c = await instance.connect();
  try {
    await c.query('START TRANSACTION');
    for (let i = 0; i < rows; i++) await insertCustomer(c, database, keyType);
    await c.query(
      `INSERT INTO ${database}.orders (customer_id, line, ksid, item, qty) SELECT id, 1, ksid, 'widget', 2 FROM ${database}.customers`,
    );
    await c.query('COMMIT');
  } finally {
    await c.end();
  }
}

export interface Writer {
  /** Stops writing and resolves with how many transactions committed. */
  stop(): Promise<number>;
}

/**
 * Keeps writing to `database` on `instance` until stopped: inserts, updates that give a row a new
 * keyspace id (so it may move between ranges), updates of other columns (to NULL too), deletes, and
 * transactions of several statements.
 */
export async function startWriter(
  instance: TestInstance,
  database: string,
  keyType: 'uint64' | 'bytes',
): Promise<Writer> {
  const c = await instance.connect();
  let running = true;
  let committed = 0;
  const pick = async (): Promise<string | undefined> => {
    const [rows] = await c.query(`SELECT id FROM ${database}.customers ORDER BY RAND() LIMIT 1`);
    return (rows as { id: string }[])[0]?.id;
  };
  const step = async () => {
    const roll = Math.random();
    const id = await pick();
    if (roll < 0.4 || id === undefined) return insertCustomer(c, database, keyType);
    if (roll < 0.6) {
      const ksid = randomKeyspaceId(keyType);
      await c.query(`UPDATE ${database}.customers SET ksid = ? WHERE id = ?`, [ksid, id]);
      await c.query(`UPDATE ${database}.orders SET ksid = ? WHERE customer_id = ?`, [ksid, id]);
      await c.query(`UPDATE ${database}.audit SET ksid = ?, line = 'moved' ORDER BY RAND() LIMIT 1`, [ksid]);
      return;
    }
    if (roll < 0.75) {
      await c.query(
        `UPDATE ${database}.customers SET note = IF(note IS NULL, 'back', NULL), amount = amount + 1 WHERE id = ?`,
        [id],
      );
      return;
    }
    if (roll < 0.85) {
      await c.query(
        `INSERT INTO ${database}.orders (customer_id, line, ksid, item, qty) SELECT id, 1 + (SELECT COUNT(*) FROM ${database}.orders WHERE customer_id = ?), ksid, 'gadget', NULL FROM ${database}.customers WHERE id = ?`,
        [id, id],
      );
      return;
    }
    await c.query(`DELETE FROM ${database}.orders WHERE customer_id = ?`, [id]);
    await c.query(`DELETE FROM ${database}.audit ORDER BY RAND() LIMIT 1`);
    await c.query(`DELETE FROM ${database}.customers WHERE id = ?`, [id]);
  };
  const loop = (async () => {
    while (running) {
      const statements = Math.random() < 0.3 ? 3 : 1;
      await c.query('START TRANSACTION');
      for (let i = 0; i < statements; i++) await step();
      await c.query('COMMIT');
      committed++;
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      await c.end();
      return committed;
    },
  };
}
