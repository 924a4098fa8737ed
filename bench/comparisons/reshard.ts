import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { connect } from '../../agent/mysql/connection.ts';
import { createLogger } from '../../core/log.ts';
import { openTopology } from '../../core/topology/index.ts';
import { createPrivateInstance, type PrivateInstance } from '../../local/private-instance.ts';
import { LocalStateMachines } from '../../local/runner.ts';
import { type BenchContext, stepback, stepbackCommandMissing } from '../context.ts';
import { benchDatabase, benchTables } from '../dataset.ts';
import type { Comparison, Sample } from '../harness.ts';

const tables = Array.from({ length: benchTables }, (_, i) => `sbtest${i + 1}`);
const sourceUri = (instance: PrivateInstance, database = benchDatabase) =>
  `mysql://root@localhost/${database}?socket=${encodeURIComponent(instance.socket)}`;

async function gtidBinlogPos(instance: PrivateInstance): Promise<string> {
  const [{ pos }] = await instance.query<[{ pos: string }]>('SELECT @@GLOBAL.gtid_binlog_pos AS pos');
  return pos;
}

/** Row events the source writes per catch-up round: updates in transactions of 100 rows, as an application's. */
const transactionRows = 100;

/**
 * Catch-up throughput: the source's binary log applied to a destination loaded by multirestore
 * --checkpoints, counted in row events applied per second. Each round the source first updates
 * `events` rows (untimed), then `stepback catchup --until` applies them; the next round continues
 * from the checkpoint the last one left.
 */
export function catchup(context: BenchContext): Comparison {
  const { source, target, work } = context;
  const store = path.join(work, 'store-catchup');
  const database = 'sbtest_catchup';
  const perTable = Math.min(context.dataset.tableSize, 25_000);
  const events = perTable * benchTables;
  let until = '';
  let round = 0;
  return {
    name: 'catch-up',
    rawBytes: 0,
    rows: events,
    setup: async () => {
      await target.query(`DROP DATABASE IF EXISTS ${database}`);
      await target.query('DROP DATABASE IF EXISTS _stepback');
      const storage = ['--storage', pathToFileURL(store).href];
      await stepback([
        'snapshot',
        '--defaults-file',
        source.cnf,
        ...storage,
        '--dir',
        'bench/catchup',
        '--database',
        benchDatabase,
      ]);
      await stepback([
        'multirestore',
        '--defaults-file',
        target.cnf,
        ...storage,
        '--sources',
        'bench/catchup',
        '--database',
        database,
        '--checkpoints',
      ]);
    },
    contenders: [
      {
        name: 'stepback catchup',
        role: 'stepback',
        missing: () => stepbackCommandMissing('catchup'),
        before: async () => {
          round++;
          const c = await connect({ socket: source.socket, user: 'root', database: benchDatabase });
          try {
            for (const table of tables) {
              for (let first = 1; first <= perTable; first += transactionRows) {
                await c.query(`UPDATE ${table} SET k = k + 1, c = ? WHERE id BETWEEN ? AND ?`, [
                  `catch-up round ${round}`,
                  first,
                  Math.min(first + transactionRows - 1, perTable),
                ]);
              }
            }
          } finally {
            await c.end();
          }
          until = await gtidBinlogPos(source);
        },
        run: async (): Promise<Sample> => {
          const run = await stepback([
            'catchup',
            '--defaults-file',
            target.cnf,
            '--database',
            database,
            '--source',
            sourceUri(source),
            '--until',
            until,
          ]);
          return { seconds: run.seconds, peakRssMb: run.peakRssMb, phases: run.phases };
        },
      },
    ],
  };
}

/** An application on the source primary during the reshard: it stops at the freeze (read_only). */
async function startWriter(source: PrivateInstance): Promise<() => Promise<number>> {
  await source.query("CREATE USER IF NOT EXISTS 'benchapp'@'localhost' IDENTIFIED BY 'benchapp'");
  await source.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ${benchDatabase}.* TO 'benchapp'@'localhost'`);
  const c = await connect({
    socket: source.socket,
    user: 'benchapp',
    password: 'benchapp',
    database: benchDatabase,
  });
  let running = true;
  let committed = 0;
  const loop = (async () => {
    while (running) {
      const table = tables[committed % tables.length]!;
      await c.query('START TRANSACTION');
      await c.query(
        `INSERT INTO ${table} (k, c, pad, ksid) VALUES (1, 'written during the reshard', '', CONV(LEFT(MD5(RAND()), 16), 16, 10))`,
      );
      await c.query(`UPDATE ${table} SET k = k + 1 WHERE id = ?`, [1 + (committed % 1000)]);
      await c.query('COMMIT');
      committed++;
    }
  })().catch(async (error: { errno?: number }) => {
    // 1290: the server runs with read_only — the cutover froze it.
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

/** The states inside the freeze window, as phases (the slowest destination's where there are several). */
const freezeStates: Record<string, string> = {
  AgentFreezeSource: 'freeze',
  AgentCatchUpToPointAtFreeze: 'catch-up at freeze',
  AgentDiffAtFreeze: 'diff at freeze',
  SwitchTopology: 'switch',
};

interface ReshardOutput {
  cutover: { position: string; frozenSeconds: number };
  destinations: {
    keyRange: string;
    diff: { total: { mismatched: number; extraLeft: number; extraRight: number } };
  }[];
}

/**
 * The freeze window: the Reshard state machine (run locally, as deployed) splits sbtest into -80 and
 * 80- while an application writes to the source primary, and cuts over. The time is the whole
 * execution; the freeze window (writes refused on the primary until the topology switched) is its
 * phase. Each round starts from fresh destinations, a fresh topology and an unfrozen primary.
 */
export function reshardCutover(context: BenchContext): Comparison {
  const { source, work, dataset } = context;
  const instances: PrivateInstance[] = [];
  let replica: PrivateInstance | undefined;
  let low: PrivateInstance | undefined;
  let high: PrivateInstance | undefined;
  let machines: LocalStateMachines | undefined;
  let round = 0;
  const logger = createLogger(() => {}, 'error');
  return {
    name: 'reshard cutover under writes',
    rawBytes: dataset.datadirBytes,
    rows: dataset.rows,
    setup: async () => {
      context.log('  starting a replica of the source and two destinations; synthesizing the state machines');
      replica = await createPrivateInstance({
        parent: work,
        name: 'reshard-replica',
        seedDatadir: dataset.datadir,
      });
      instances.push(replica);
      low = await createPrivateInstance({ parent: work, name: 'reshard-low' });
      instances.push(low);
      high = await createPrivateInstance({ parent: work, name: 'reshard-high' });
      instances.push(high);
      // The replica is a copy of the dataset as the source was seeded: it replicates the source's
      // binary log from where that copy is (nothing written since has been purged).
      await replica.query('STOP SLAVE');
      await replica.query('SET GLOBAL gtid_slave_pos = ?', [await gtidBinlogPos(replica)]);
      await replica.query(
        `CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=${source.port}, MASTER_USER='root', MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos`,
      );
      await replica.query('START SLAVE');
      machines = new LocalStateMachines();
    },
    teardown: async () => {
      for (const instance of instances) await instance.kill();
    },
    contenders: [
      {
        name: 'stepback Reshard with cutover',
        role: 'stepback',
        missing: () => stepbackCommandMissing('catchup'),
        before: async () => {
          for (const instance of [low!, high!]) {
            await instance.query(`DROP DATABASE IF EXISTS ${benchDatabase}`);
            await instance.query('DROP DATABASE IF EXISTS _stepback');
          }
          await replica!.query(`SELECT MASTER_GTID_WAIT(?, 600)`, [await gtidBinlogPos(source)]);
        },
        run: async (): Promise<Sample> => {
          round++;
          const topologyUrl = pathToFileURL(path.join(work, `topology-${round}`)).href;
          const topology = await openTopology(topologyUrl);
          await topology.addCell('local');
          await topology.setShard({
            keyspace: benchDatabase,
            shard: '0',
            hosts: [
              { id: 'source', role: 'primary', healthy: true, cell: 'local', defaultsFile: source.cnf },
              { id: 'replica', role: 'replica', healthy: true, cell: 'local', defaultsFile: replica!.cnf },
            ],
          });
          const uri = (i: PrivateInstance) => `mysql://root@127.0.0.1:${i.port}/${benchDatabase}`;
          const during: Record<string, number> = {};
          const stopWriting = await startWriter(source);
          const started = process.hrtime.bigint();
          const outcome = await machines!.run(
            'reshard',
            {
              keyspace: benchDatabase,
              shard: '0',
              sourceHost: replica!.cnf,
              sourceUri: uri(replica!),
              database: benchDatabase,
              keyColumn: 'ksid',
              keyType: 'uint64',
              cutover: true,
              destinations: [
                { host: 'reshard-low', defaultsFile: low!.cnf, keyRange: '-80', uri: uri(low!) },
                { host: 'reshard-high', defaultsFile: high!.cnf, keyRange: '80-', uri: uri(high!) },
              ],
            },
            {
              storageUrl: pathToFileURL(path.join(work, 'store-reshard')).href,
              topologyUrl,
              logger,
              onEvent: (event) => {
                const phase = freezeStates[event.state];
                if (event.type === 'exited' && phase)
                  during[phase] = Math.max(during[phase] ?? 0, event.seconds);
              },
            },
          );
          const seconds = Number(process.hrtime.bigint() - started) / 1e9;
          const committed = await stopWriting();
          if (outcome.status !== 'SUCCEEDED') throw new Error(`${outcome.error}: ${outcome.cause}`);
          const output = outcome.output as ReshardOutput;
          const differing = output.destinations.filter(
            (d) => d.diff.total.mismatched + d.diff.total.extraLeft + d.diff.total.extraRight > 0,
          );
          if (differing.length)
            throw new Error(`the copies differ at the cutover: ${JSON.stringify(differing)}`);
          context.log(
            `  reshard round ${round}: ${committed} transactions written during it; writes frozen ${output.cutover.frozenSeconds.toFixed(2)}s`,
          );
          return { seconds, phases: { 'freeze window': output.cutover.frozenSeconds, ...during } };
        },
        after: async () => {
          // The cutover leaves the old primary frozen; the next round needs it writable.
          await stepback(['writes', '--defaults-file', source.cnf, '--action', 'start']);
        },
      },
    ],
  };
}
