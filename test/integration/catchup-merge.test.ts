import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MysqlDaemon } from '../../agent/mysqld/daemon.ts';
import { catchupInstance } from '../../agent/operations/catchup.ts';
import { multirestoreInstance } from '../../agent/operations/multirestore.ts';
import type { OperationContext } from '../../agent/operations/operation.ts';
import { snapshotInstance } from '../../agent/operations/snapshot.ts';
import { readEnvironment } from '../../core/environment.ts';
import { silentLogger } from '../../core/log.ts';
import { CatchupRequest } from '../../core/operations/catchup.ts';
import { MultirestoreRequest } from '../../core/operations/multirestore.ts';
import { SnapshotRequest } from '../../core/operations/snapshot.ts';
import { FileBackupStorage } from '../../core/storage/file.ts';
import { tableRows } from '../support/logical.ts';
import { createTestInstance, type TestInstance } from '../support/mariadb.ts';
import { tempDir } from '../support/root.ts';
import { createShardSchema, seedShard, startWriter } from '../support/shard-writer.ts';

/** A merge: two source shards loaded into one database, each caught up from its own binary log. */

let sources: TestInstance[];
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

beforeAll(async () => {
  [dest, ...sources] = await Promise.all([
    createTestInstance({ name: 'merge-dest' }),
    // Each source allocates its own ids, as shards that are to be merged must.
    createTestInstance({
      name: 'merge-a',
      extraCnf: ['auto-increment-increment=2', 'auto-increment-offset=1'],
    }),
    createTestInstance({
      name: 'merge-b',
      extraCnf: ['auto-increment-increment=2', 'auto-increment-offset=2'],
    }),
  ]);
  storage = new FileBackupStorage(await tempDir('merge-storage'));
  for (const source of sources) {
    await createShardSchema(source, 'shop', 'uint64');
    await seedShard(source, 'shop', 'uint64', 100);
  }
});

afterAll(async () => {
  await Promise.all([dest?.dispose(), ...(sources ?? []).map((s) => s.dispose())]);
});

describe('a merge caught up from both sources', () => {
  it('applies each source from its own checkpoint until the destination holds the rows of both', async () => {
    const entries: string[] = [];
    for (const [index, source] of sources.entries()) {
      const snapshot = await snapshotInstance(
        await MysqlDaemon.open({ defaultsFile: source.cnf, logger: silentLogger }),
        storage,
        SnapshotRequest.parse({
          storage: storage.url,
          defaultsFile: source.cnf,
          dir: `shop/${index ? '80-' : '-80'}`,
          database: 'shop',
        }),
        context(),
      );
      entries.push(`${snapshot.snapshots[0]!.dir}@${snapshot.snapshots[0]!.name}`);
    }
    await multirestoreInstance(
      await MysqlDaemon.open({ defaultsFile: dest.cnf, logger: silentLogger }),
      storage,
      MultirestoreRequest.parse({
        storage: storage.url,
        defaultsFile: dest.cnf,
        sources: entries,
        database: 'merged',
        checkpoints: true,
      }),
      context(),
    );
    const writers = await Promise.all(sources.map((source) => startWriter(source, 'shop', 'uint64')));
    await sleep(400);
    for (const writer of writers) await writer.stop();

    for (const [index, source] of sources.entries()) {
      const [{ pos }] = await source.query<[{ pos: string }]>('SELECT @@GLOBAL.gtid_binlog_pos AS pos');
      const result = await catchupInstance(
        await MysqlDaemon.open({ defaultsFile: dest.cnf, logger: silentLogger }),
        CatchupRequest.parse({
          defaultsFile: dest.cnf,
          database: 'merged',
          source: `mysql://root@localhost/shop?socket=${encodeURIComponent(source.socket)}`,
          sourceIndex: index,
          until: pos,
        }),
        context(),
      );
      expect(result).toMatchObject({
        sourceIndex: index,
        source: entries[index],
        stoppedAt: 'position',
        position: pos,
      });
    }
    for (const table of ['customers', 'orders', 'audit']) {
      const union = [
        ...(await tableRows(sources[0]!, 'shop', table)),
        ...(await tableRows(sources[1]!, 'shop', table)),
      ];
      const merged = await tableRows(dest, 'merged', table);
      const key = (row: unknown) => JSON.stringify(row);
      expect(merged.map(key).sort(), table).toEqual(union.map(key).sort());
    }
  });

  it('asks which source is meant when the destination has several checkpoints', async () => {
    const error = await catchupInstance(
      await MysqlDaemon.open({ defaultsFile: dest.cnf, logger: silentLogger }),
      CatchupRequest.parse({
        defaultsFile: dest.cnf,
        database: 'merged',
        source: `mysql://root@localhost/shop?socket=${encodeURIComponent(sources[0]!.socket)}`,
      }),
      context(),
    ).catch((e: unknown) => e as Error);
    expect((error as Error).message).toMatch(
      /was loaded from 2 sources \(0: shop\/-80@.*, 1: shop\/80-@.*\): say which one/,
    );
  });
});
