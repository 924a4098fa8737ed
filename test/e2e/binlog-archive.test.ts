import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBinlogArchive } from '../../core/binlogs/catalog.ts';
import { silentLogger } from '../../core/log.ts';
import { FileBackupStorage } from '../../core/storage/file.ts';
import { type ExecutionEvent, LocalStateMachines } from '../../local/runner.ts';
import { createTestInstance, type TestInstance } from '../support/mariadb.ts';
import { tempDir } from '../support/root.ts';

/**
 * The BinlogArchive state machine as the schedule starts it, from the synthesized ASL: each target
 * shard's closed binary logs archived through the SSM document and `stepback run`.
 */

let machines: LocalStateMachines;
let instance: TestInstance;
let storageRoot: string;

beforeAll(async () => {
  machines = new LocalStateMachines();
  instance = await createTestInstance({ name: 'archive-source' });
  storageRoot = await tempDir('archive-storage');
  await instance.query('CREATE DATABASE shop');
  await instance.query('CREATE TABLE shop.t (id INT PRIMARY KEY) ENGINE=InnoDB');
  await instance.query('INSERT INTO shop.t VALUES (1), (2), (3)');
}, 60_000);

afterAll(async () => {
  await instance?.dispose();
});

async function run(input: unknown) {
  const events: ExecutionEvent[] = [];
  const outcome = await machines.run('binlogArchive', input, {
    storageUrl: `file://${storageRoot}`,
    logger: silentLogger,
    onEvent: (event) => events.push(event),
  });
  return { outcome, events };
}

describe('the BinlogArchive state machine', () => {
  it("archives each target shard's closed binary logs, then finds nothing new on the next run", async () => {
    const input = { targets: [{ keyspace: 'shop', shard: '0', host: instance.cnf }], maxAge: '0' };
    const { outcome, events } = await run(input);
    expect(outcome.status, JSON.stringify(outcome)).toBe('SUCCEEDED');
    expect(outcome.status === 'SUCCEEDED' && outcome.output).toMatchObject({
      ok: true,
      total: 1,
      failed: [],
    });
    expect(events.flatMap((e) => (e.type === 'entered' ? [e.state] : []))).toEqual(
      expect.arrayContaining(['ValidateInput', 'ResolveTargets', 'AgentBinlogArchive', 'SummarizeShards']),
    );
    const storage = new FileBackupStorage(storageRoot);
    const first = await readBinlogArchive(storage, 'shop/0');
    expect(first.gaps).toEqual([]);
    expect(first.entries.length).toBeGreaterThan(0);
    const [{ pos }] = await instance.query<[{ pos: string }]>('SELECT @@GLOBAL.gtid_binlog_pos AS pos');
    expect(first.ranges.at(-1)?.gtidsTo).toBe(pos);

    // Nothing written since, and the current file is younger than the default 5 minutes.
    const again = await run({ targets: input.targets });
    expect(again.outcome.status).toBe('SUCCEEDED');
    expect((await readBinlogArchive(storage, 'shop/0')).entries.length).toBe(first.entries.length);
  });

  it('fails naming the shard whose host cannot archive, after trying every shard', async () => {
    const { outcome } = await run({
      targets: [
        { keyspace: 'shop', shard: '0', host: instance.cnf },
        { keyspace: 'shop', shard: '1', host: `${storageRoot}/missing.cnf` },
      ],
    });
    expect(outcome.status).toBe('FAILED');
    expect(outcome.status === 'FAILED' && outcome.cause).toMatch(/shop\/1/);
  });
});
