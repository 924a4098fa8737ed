import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MysqlDaemon } from '../../agent/mysqld/daemon.ts';
import type { OperationContext } from '../../agent/operations/operation.ts';
import { replicationInstance } from '../../agent/operations/replication.ts';
import { writesInstance } from '../../agent/operations/writes.ts';
import { readEnvironment } from '../../core/environment.ts';
import { gtidPosition } from '../../core/gtid-position.ts';
import { silentLogger } from '../../core/log.ts';
import { ReplicationRequest } from '../../core/operations/replication.ts';
import { WritesRequest } from '../../core/operations/writes.ts';
import { stateOf } from '../support/data.ts';
import {
  createTestInstance,
  startReplication,
  type TestInstance,
  waitForReplica,
} from '../support/mariadb.ts';

let primary: TestInstance;
let replica: TestInstance;

function context(): OperationContext {
  return {
    logger: silentLogger,
    progress: () => {},
    signal: new AbortController().signal,
    env: readEnvironment(),
  };
}

const daemon = (instance: TestInstance) =>
  MysqlDaemon.open({ defaultsFile: instance.cnf, logger: silentLogger });

beforeAll(async () => {
  [primary, replica] = await Promise.all([
    createTestInstance({ name: 'freeze-primary' }),
    createTestInstance({ name: 'freeze-replica' }),
  ]);
  await startReplication(replica, primary);
  await primary.query('CREATE DATABASE shop');
  await primary.query('CREATE TABLE shop.items (id INT PRIMARY KEY) ENGINE=InnoDB');
  await waitForReplica(replica, primary);
});

afterAll(async () => {
  await Promise.all([primary?.dispose(), replica?.dispose()]);
});

describe('writes', () => {
  it('waits for a transaction that already wrote, freezes, and reports a position that holds it', async () => {
    const c = await primary.connect();
    await c.query('START TRANSACTION');
    await c.query('INSERT INTO shop.items VALUES (1)');
    const freezing = writesInstance(
      await daemon(primary),
      WritesRequest.parse({ defaultsFile: primary.cnf, action: 'stop', transactionWaitSeconds: 10 }),
      context(),
    );
    await sleep(300);
    await c.query('COMMIT');
    const [row] = (await c.query('SELECT @@SESSION.last_gtid AS gtid'))[0] as { gtid: string }[];
    const gtid = row!.gtid;
    await c.end();
    const frozen = await freezing;
    expect(frozen).toMatchObject({ action: 'stop', openTransactions: 0 });
    expect(gtidPosition('mariadb', frozen.position).covers(gtid)).toBe(true);
    expect((await stateOf(primary)).readOnly).toBe(true);

    const started = await writesInstance(
      await daemon(primary),
      WritesRequest.parse({ defaultsFile: primary.cnf, action: 'start' }),
      context(),
    );
    expect(started).toMatchObject({ action: 'start', position: frozen.position });
    expect((await stateOf(primary)).readOnly).toBe(false);
  });

  it('refuses to freeze a replica', async () => {
    const error = await writesInstance(
      await daemon(replica),
      WritesRequest.parse({ defaultsFile: replica.cnf, action: 'stop' }),
      context(),
    ).catch((e: unknown) => e as Error);
    expect((error as Error).message).toContain('is a replica');
    expect((await stateOf(replica)).readOnly).toBe(false);
  });
});

describe('replication', () => {
  it('stops a replica at a position it keeps while the primary writes on, then starts it again', async () => {
    const stopped = await replicationInstance(
      await daemon(replica),
      ReplicationRequest.parse({ defaultsFile: replica.cnf, action: 'stop' }),
      context(),
    );
    expect(stopped).toMatchObject({ action: 'stop', wasRunning: true });
    await primary.query('INSERT INTO shop.items VALUES (2)');
    expect((await stateOf(replica)).replication).toEqual({ configured: true, running: false });
    const [{ pos }] = await replica.query<[{ pos: string }]>('SELECT @@GLOBAL.gtid_current_pos AS pos');
    expect(pos).toBe(stopped.position);

    await replicationInstance(
      await daemon(replica),
      ReplicationRequest.parse({ defaultsFile: replica.cnf, action: 'start' }),
      context(),
    );
    expect((await stateOf(replica)).replication).toEqual({ configured: true, running: true });
    await waitForReplica(replica, primary);
  });
});
