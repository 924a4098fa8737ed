import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../agent/mysql/connection.ts';
import { inspectBackups } from '../../core/backups.ts';
import { silentLogger } from '../../core/log.ts';
import { openTopology, type TopologyStore } from '../../core/topology/index.ts';
import { demoDatabase, loadSampleData } from '../../local/demo/sample-data.ts';
import { type ExecutionEvent, LocalStateMachines } from '../../local/runner.ts';
import { stateOf, tableChecksums } from '../support/data.ts';
import {
  createTestInstance,
  startReplication,
  type TestInstance,
  waitForReplica,
} from '../support/mariadb.ts';
import { tempDir } from '../support/root.ts';
import { startS3, type TestS3 } from '../support/s3.ts';

/**
 * The acceptance path of the state machines, run from the synthesized ASL exactly as
 * `stepback-local` runs them: a scheduled-style Backup of a replica found through the topology
 * store into S3 (s3rver), a console Restore into a fresh instance that then replicates from the
 * primary, and a Reshard of the keyspace into two key ranges whose diffs pass.
 */

const rows = 3000;
let machines: LocalStateMachines;
let s3: TestS3;
let storageUrl: string;
let topologyUrl: string;
let topology: TopologyStore;
let agentEnv: NodeJS.ProcessEnv;
let source: TestInstance;
let replica: TestInstance;
const instances: TestInstance[] = [];
const savedEnv = { ...process.env };

async function instance(name: string): Promise<TestInstance> {
  const created = await createTestInstance({ name });
  instances.push(created);
  return created;
}

beforeAll(async () => {
  // One synthesis for the file: it costs seconds.
  machines = new LocalStateMachines();
  [s3, source, replica] = await Promise.all([startS3(), instance('source'), instance('replica')]);
  storageUrl = s3.url('e2e');
  // The Lambdas run in this process and open storage with the SDK's credential chain, as in AWS.
  Object.assign(process.env, s3.env);
  agentEnv = { ...process.env, REPL_PASSWORD: '' };
  await startReplication(replica, source);
  const connection = await source.connect();
  try {
    await loadSampleData(connection, rows);
  } finally {
    await connection.end();
  }
  await waitForReplica(replica, source);

  topologyUrl = `file://${await tempDir('topology')}`;
  topology = await openTopology(topologyUrl);
  await topology.addCell('zone1');
  await topology.setShard({
    keyspace: demoDatabase,
    shard: '0',
    hosts: [
      { id: 'source', role: 'primary', healthy: true, cell: 'zone1', defaultsFile: source.cnf },
      { id: 'replica', role: 'replica', healthy: true, cell: 'zone1', defaultsFile: replica.cnf },
    ],
  });
  await topology.setVSchema(demoDatabase, {
    sharded: true,
    vindexes: { hash: { type: 'hash' } },
    tables: { customer: { column_vindexes: [{ column: 'id', name: 'hash' }] } },
  });
});

afterAll(async () => {
  process.env = savedEnv;
  await Promise.all(instances.map((i) => i.dispose()));
  await s3?.stop();
});

async function run(machine: 'backup' | 'restore' | 'reshard', input: unknown) {
  const events: ExecutionEvent[] = [];
  const outcome = await machines.run(machine, input, {
    storageUrl,
    topologyUrl,
    env: agentEnv,
    logger: silentLogger,
    onEvent: (event) => events.push(event),
  });
  if (outcome.status === 'FAILED') throw new Error(`${machine} failed: ${outcome.error}: ${outcome.cause}`);
  return { output: outcome.output as any, events };
}

const entered = (events: ExecutionEvent[]) => events.flatMap((e) => (e.type === 'entered' ? [e.state] : []));

let backupName: string;

describe('the Backup state machine', () => {
  it("backs up the keyspace's healthy replica into S3 and leaves it replicating", async () => {
    const before = await stateOf(replica);
    const { output, events } = await run('backup', { keyspaces: [demoDatabase] });

    expect(output).toMatchObject({ ok: true, total: 1, failed: [] });
    const [shard] = output.succeeded;
    expect(shard).toMatchObject({ dir: `${demoDatabase}/0`, host: 'replica' });
    expect(shard.bytes.stored).toBeGreaterThan(0);
    backupName = shard.backup;

    const storage = s3.storage('e2e');
    const backups = await inspectBackups(storage, `${demoDatabase}/0`);
    expect(backups.map((b) => [b.name, b.complete])).toEqual([[backupName, true]]);
    expect(shard.position).toBe(backups[0]!.complete ? backups[0]!.manifest.position : undefined);
    await storage.close();

    expect(entered(events)).toEqual([
      'ValidateInput',
      'ResolveTargets',
      // One shard: one inline Map, no batches.
      'InBatches',
      'BackupShards',
      'AgentBackup',
      'ValidateManifest',
      'PruneBackups',
      'ShardDone',
      'SummarizeShards',
      'AllShardsBackedUp',
      'BackedUp',
    ]);
    const progress = events.filter((e) => e.type === 'progress' && e.state === 'AgentBackup');
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.some((e) => e.type === 'progress' && (e.progress.bytesDone ?? 0) > 0)).toBe(true);

    expect(await stateOf(replica)).toEqual(before);
    await source.query(`INSERT INTO ${demoDatabase}.audit_log (keyspace_id, happened) VALUES (1, NOW(6))`);
    await waitForReplica(replica, source);
  });
});

describe('the Restore state machine', () => {
  it('restores the newest backup into a fresh instance that then replicates from the primary', async () => {
    const fresh = await instance('fresh');
    const { output } = await run('restore', {
      keyspace: demoDatabase,
      shard: '0',
      host: fresh.cnf,
      backup: 'latest',
      replicateFrom: { host: '127.0.0.1', port: source.port, user: 'root', passwordEnv: 'REPL_PASSWORD' },
    });
    expect(output).toMatchObject({ keyspace: demoDatabase, shard: '0', backup: backupName });
    expect(output.restore.replication).toMatchObject({ source: `127.0.0.1:${source.port}` });

    // Written after the backup: it reaches the restored instance only through replication.
    await source.query(`INSERT INTO ${demoDatabase}.audit_log (keyspace_id, happened) VALUES (2, NOW(6))`);
    await waitForReplica(fresh, source);
    expect(await tableChecksums(fresh, demoDatabase)).toEqual(await tableChecksums(source, demoDatabase));
  });
});

/**
 * Writes to the primary until stopped: new customers, customers given a new keyspace id (which may
 * move them to the other range), audit lines (a table without a primary key), deleted orders.
 */
async function keepWriting(instance: TestInstance): Promise<() => Promise<number>> {
  // An application's user, without SUPER: once a cutover freezes the primary (read_only) its writes
  // are refused, and the writer stops there.
  await instance.query("CREATE USER IF NOT EXISTS 'app'@'localhost' IDENTIFIED BY 'app'");
  await instance.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ${demoDatabase}.* TO 'app'@'localhost'`);
  const c = await connect({ socket: instance.socket, user: 'app', password: 'app', database: demoDatabase });
  let running = true;
  let committed = 0;
  const ksid = () => randomBytes(8).readBigUInt64BE().toString();
  const loop = (async () => {
    while (running) {
      await c.query('START TRANSACTION');
      await c.query(
        "INSERT INTO customer (keyspace_id, name, balance, created) VALUES (?, 'new', 1.5, '2026-12-01 10:00:00.000001')",
        [ksid()],
      );
      await c.query('UPDATE customer SET keyspace_id = ? ORDER BY RAND() LIMIT 1', [ksid()]);
      await c.query('INSERT INTO audit_log (keyspace_id, happened, line) VALUES (?, NOW(6), NULL)', [ksid()]);
      await c.query('DELETE FROM corder ORDER BY RAND() LIMIT 1');
      await c.query('COMMIT');
      committed++;
    }
  })().catch(async (error: { errno?: number }) => {
    // 1290: the server runs with read_only.
    if (error.errno !== 1290) throw error;
    await c.query('ROLLBACK');
  });
  return async () => {
    running = false;
    await loop;
    await c.end();
    return committed;
  };
}

describe('the Reshard state machine', () => {
  it('splits the keyspace into two key ranges while the primary takes writes, diffs each at a consistent point, rehearses the cutover and rebuilds the vschema', async () => {
    await waitForReplica(replica, source);
    const replicaState = await stateOf(replica);
    const stopWriting = await keepWriting(source);
    const [left, right] = [await instance('dest-80'), await instance('dest80-')];
    const uri = (i: TestInstance) => `mysql://root@127.0.0.1:${i.port}/${demoDatabase}`;
    const { output, events } = await run('reshard', {
      keyspace: demoDatabase,
      shard: '0',
      sourceHost: replica.cnf,
      sourceUri: uri(replica),
      database: demoDatabase,
      keyColumn: 'keyspace_id',
      keyType: 'uint64',
      // A rehearsal of the cutover: everything up to the freeze, nothing frozen or switched.
      cutover: true,
      dryRun: true,
      destinations: [
        { host: left.cnf, keyRange: '-80', uri: uri(left) },
        { host: right.cnf, keyRange: '80-', uri: uri(right) },
      ],
    }).finally(stopWriting);
    expect(output.wouldSwitch).toEqual({ freeze: 'source', serving: ['-80', '80-'], notServing: ['0'] });
    expect(output.cutover).toEqual({});
    expect((await stateOf(source)).readOnly).toBe(false);
    expect((await topology.listShards(demoDatabase)).map((s) => s.shard)).toEqual(['0']);

    expect(output.snapshots.map((s: any) => [s.keyRange, s.dir])).toEqual([
      ['-80', `${demoDatabase}/0/-80`],
      ['80-', `${demoDatabase}/0/80-`],
    ]);
    expect(output.destinations.map((d: any) => [d.host, d.keyRange])).toEqual([
      [left.cnf, '-80'],
      [right.cnf, '80-'],
    ]);
    // Each destination was diffed at the position the source replica stopped at, holding its range of
    // every row written before it: the rows it loaded plus what it caught up with.
    for (const destination of output.destinations) {
      expect(destination.diff.total).toMatchObject({ mismatched: 0, extraLeft: 0, extraRight: 0 });
      expect(destination.caughtUp).toMatchObject({
        stoppedAt: 'position',
        position: output.consistentPoint.position,
      });
      expect(destination.restored.rows).toBeGreaterThan(0);
    }
    // The writer kept going between the snapshot and the consistent point: there was something to catch up.
    expect(output.consistentPoint.position).not.toBe(output.snapshotPosition);
    expect(
      output.destinations.reduce((sum: number, d: any) => sum + d.caughtUp.rowsApplied, 0),
    ).toBeGreaterThan(0);
    // Replication runs again, and the replica caught up with every write the primary took.
    expect(await stateOf(replica)).toEqual(replicaState);
    await waitForReplica(replica, source);
    expect(
      Number(
        (
          await left.query<[{ n: string }]>(
            `SELECT COUNT(*) AS n FROM ${demoDatabase}.customer WHERE keyspace_id >= 9223372036854775808`,
          )
        )[0].n,
      ),
    ).toBe(0);

    expect(output.vschema).toEqual({ keyspaces: [demoDatabase], cells: [{ cell: 'zone1', ok: true }] });
    expect(await topology.getSrvVSchema('zone1')).toEqual({
      keyspaces: { [demoDatabase]: await topology.getVSchema(demoDatabase) },
    });
    expect(entered(events)).toContain('RebuildVSchema');
    expect(events.filter((e) => e.type === 'entered' && e.state === 'AgentDiff')).toHaveLength(2);
    expect(entered(events)).toEqual(
      expect.arrayContaining([
        'AgentCatchUp',
        'AgentStopSourceReplication',
        'AgentCatchUpToPoint',
        'AgentStartSourceReplication',
      ]),
    );
  });
});

describe('a Reshard with cutover', () => {
  const uri = (i: TestInstance) => `mysql://root@127.0.0.1:${i.port}/${demoDatabase}`;
  const readOnly = async (i: TestInstance) =>
    Number((await i.query<[{ ro: number }]>('SELECT @@GLOBAL.read_only AS ro'))[0].ro);
  const input = (left: TestInstance, right: TestInstance, leftUri = uri(left)) => ({
    keyspace: demoDatabase,
    shard: '0',
    sourceHost: replica.cnf,
    sourceUri: uri(replica),
    database: demoDatabase,
    keyColumn: 'keyspace_id',
    keyType: 'uint64',
    cutover: true,
    // Host ids as the topology records them; the defaults files say which instance each is here.
    destinations: [
      { host: `${left.name}-80`, defaultsFile: left.cnf, keyRange: '-80', uri: leftUri },
      { host: `${right.name}80-`, defaultsFile: right.cnf, keyRange: '80-', uri: uri(right) },
    ],
  });

  it('lets writes in again and leaves the topology untouched when a diff fails after the freeze', async () => {
    const [left, right] = [await instance('fail-80'), await instance('fail80-')];
    const shardsBefore = await topology.listShards(demoDatabase);
    const events: ExecutionEvent[] = [];
    // The -80 copy is compared with the 80- destination's rows: its diff fails after the freeze.
    const outcome = await machines.run('reshard', input(left, right, uri(right)), {
      storageUrl,
      topologyUrl,
      env: agentEnv,
      logger: silentLogger,
      onEvent: (event) => events.push(event),
    });
    expect(outcome.status === 'FAILED' && outcome.error).toBe('VERIFICATION_FAILED');
    expect(entered(events)).toEqual(expect.arrayContaining(['AgentFreezeSource', 'AgentUnfreezeSource']));
    expect(entered(events)).not.toContain('SwitchTopology');
    expect(await readOnly(source)).toBe(0);
    expect(await topology.listShards(demoDatabase)).toEqual(shardsBefore);
  });

  it('freezes the primary, diffs every destination at its final position and switches the serving shards, with a writer running', async () => {
    await waitForReplica(replica, source);
    const [left, right] = [await instance('cut-80'), await instance('cut80-')];
    const stopWriting = await keepWriting(source);
    const { output, events } = await run('reshard', input(left, right)).finally(stopWriting);

    // Every write the primary acknowledged is in the final position, and each destination matched
    // its range of the source there.
    const [{ pos }] = await source.query<[{ pos: string }]>('SELECT @@GLOBAL.gtid_binlog_pos AS pos');
    expect(output.cutover.position).toBe(pos);
    expect(output.cutover.frozenSeconds).toBeGreaterThan(0);
    for (const destination of output.destinations) {
      expect(destination.diff.total).toMatchObject({ mismatched: 0, extraLeft: 0, extraRight: 0 });
      expect(destination.caughtUp.position).toBe(pos);
    }
    expect(await readOnly(source)).toBe(1);
    const shards = Object.fromEntries((await topology.listShards(demoDatabase)).map((s) => [s.shard, s]));
    expect(shards['0']!.serving).toBe(false);
    expect(shards['-80']).toMatchObject({
      serving: true,
      hosts: [{ id: `${left.name}-80`, role: 'primary', defaultsFile: left.cnf }],
    });
    expect(shards['80-']).toMatchObject({
      serving: true,
      hosts: [{ id: `${right.name}80-`, role: 'primary', defaultsFile: right.cnf }],
    });
    expect(entered(events)).toEqual(expect.arrayContaining(['SwitchTopology', 'RebuildVSchema']));
    expect(entered(events)).not.toContain('AgentUnfreezeSource');
  });
});
