import { randomBytes } from 'node:crypto';
import { connect } from '../../agent/mysql/connection.ts';
import type { PrivateInstance } from '../private-instance.ts';
import { demoDatabase } from './sample-data.ts';

/** What the demo's application wrote while the keyspace was resharded. */
export interface WriterTally {
  /** Transactions the primary acknowledged (committed). */
  committed: number;
  /** The writer was stopped by the cutover's freeze (read_only). */
  frozenOut: boolean;
}

/**
 * An application writing to the primary while it is resharded: new customers, customers given a new
 * keyspace id (which may move them to the other range), audit lines, deleted orders. It connects as
 * an application user without SUPER, so a cutover's freeze (read_only) stops it.
 */
export async function startDemoWriter(primary: PrivateInstance): Promise<() => Promise<WriterTally>> {
  await primary.query("CREATE USER IF NOT EXISTS 'app'@'localhost' IDENTIFIED BY 'app'");
  await primary.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ${demoDatabase}.* TO 'app'@'localhost'`);
  const c = await connect({ socket: primary.socket, user: 'app', password: 'app', database: demoDatabase });
  const tally: WriterTally = { committed: 0, frozenOut: false };
  let running = true;
  const keyspaceId = () => randomBytes(8).readBigUInt64BE().toString();
  const loop = (async () => {
    while (running) {
      await c.query('START TRANSACTION');
      await c.query(
        "INSERT INTO customer (keyspace_id, name, balance, created) VALUES (?, 'written during the reshard', 1, NOW(6))",
        [keyspaceId()],
      );
      await c.query('UPDATE customer SET keyspace_id = ? ORDER BY RAND() LIMIT 1', [keyspaceId()]);
      await c.query('INSERT INTO audit_log (keyspace_id, happened, line) VALUES (?, NOW(6), NULL)', [
        keyspaceId(),
      ]);
      await c.query('DELETE FROM corder ORDER BY RAND() LIMIT 1');
      await c.query('COMMIT');
      tally.committed++;
    }
  })().catch(async (error: { errno?: number }) => {
    // 1290: the server runs with read_only — the cutover froze it.
    if (error.errno !== 1290) throw error;
    tally.frozenOut = true;
    await c.query('ROLLBACK');
  });
  return async () => {
    running = false;
    await loop;
    await c.end();
    return tally;
  };
}
