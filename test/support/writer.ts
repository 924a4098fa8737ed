import type { PrivateInstance } from '../../local/private-instance.ts';

/** How many accounts the ledger holds; each starts with a balance of 1000. */
export const ACCOUNTS = 50;

/**
 * A ledger in `database`: accounts with a balance and the transfers that moved it, so that every
 * committed transaction keeps `balance = 1000 + SUM(transfers)` per account. A snapshot that read
 * the two tables at different points breaks that sum. `rows` transfers are there to begin with, so
 * a dump takes long enough for the writer to commit during it.
 */
export async function createLedger(instance: PrivateInstance, database: string, rows: number): Promise<void> {
  await instance.query(`CREATE DATABASE ${database}`);
  await instance.query(
    `CREATE TABLE ${database}.accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL) ENGINE=InnoDB`,
  );
  await instance.query(
    `CREATE TABLE ${database}.transfers (id BIGINT AUTO_INCREMENT PRIMARY KEY, account INT NOT NULL, amount INT NOT NULL, note VARCHAR(200)) ENGINE=InnoDB`,
  );
  const accounts = Array.from({ length: ACCOUNTS }, (_, i) => [i + 1, 1000]);
  await instance.query(`INSERT INTO ${database}.accounts VALUES ?`, [accounts]);
  const batch = 5000;
  for (let done = 0; done < rows; done += batch) {
    const values = Array.from({ length: Math.min(batch, rows - done) }, (_, i) => [
      ((done + i) % ACCOUNTS) + 1,
      0,
      `opening entry ${done + i} ${'x'.repeat(120)}`,
    ]);
    await instance.query(`INSERT INTO ${database}.transfers (account, amount, note) VALUES ?`, [values]);
  }
}

/** Accounts whose balance is not 1000 plus their transfers (none in a consistent copy). */
export async function unbalancedAccounts(instance: PrivateInstance, database: string): Promise<number[]> {
  const rows = await instance.query<{ id: number }[]>(
    `SELECT a.id FROM ${database}.accounts a LEFT JOIN (SELECT account, SUM(amount) AS moved FROM ${database}.transfers GROUP BY account) t ON t.account = a.id WHERE a.balance <> 1000 + COALESCE(t.moved, 0) ORDER BY a.id`,
  );
  return rows.map((row) => Number(row.id));
}

/** A running writer: each transaction inserts a transfer and moves its account's balance. */
export interface LedgerWriter {
  /** Stops after the transaction in flight; resolves with what the writer measured. */
  stop(): Promise<{ commits: number; maxLatencyMs: number }>;
  /** Transactions committed so far. */
  readonly commits: number;
}

/**
 * Starts writing to the ledger on one connection, as fast as the server takes it, measuring each
 * transaction from BEGIN to the end of COMMIT: a refused or blocked write shows as latency (an
 * error fails the writer, and `stop` rethrows it).
 */
export async function startLedgerWriter(instance: PrivateInstance, database: string): Promise<LedgerWriter> {
  const connection = await instance.connect();
  let running = true;
  let commits = 0;
  let maxLatencyMs = 0;
  const loop = (async () => {
    for (let i = 0; running; i++) {
      const account = (i % ACCOUNTS) + 1;
      const amount = (i % 7) - 3;
      const started = performance.now();
      await connection.query('BEGIN');
      await connection.query(`INSERT INTO ${database}.transfers (account, amount, note) VALUES (?, ?, ?)`, [
        account,
        amount,
        `transfer ${i}`,
      ]);
      await connection.query(`UPDATE ${database}.accounts SET balance = balance + ? WHERE id = ?`, [
        amount,
        account,
      ]);
      await connection.query('COMMIT');
      maxLatencyMs = Math.max(maxLatencyMs, performance.now() - started);
      commits++;
    }
  })();
  return {
    get commits() {
      return commits;
    },
    async stop() {
      running = false;
      try {
        await loop;
      } finally {
        await connection.end().catch(() => connection.destroy());
      }
      return { commits, maxLatencyMs };
    },
  };
}
