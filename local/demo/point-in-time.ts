import { formatSeconds } from '../../agent/report/format.ts';
import type { PrivateInstance } from '../private-instance.ts';
import { waitForReplica } from '../private-instance.ts';
import type { ExecutionOutcome } from '../runner.ts';
import { demoDatabase } from './sample-data.ts';
import type { ExecutionReport } from './summary.ts';

/** Runs one state machine of the demo, shown as it runs. */
export type RunMachine = (
  machine: 'binlogArchive' | 'restore',
  title: string,
  input: unknown,
) => Promise<{ outcome: ExecutionOutcome; seconds: number }>;

interface PointInTimeOutput {
  restore: {
    bytes: { raw: number; stored: number };
    pointInTime?: {
      transactions: number;
      binlogs: { file: string }[];
      lastApplied?: { gtid?: string; time: string };
    };
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether a row of corder reads the same on two instances. */
async function sameRow(a: PrivateInstance, b: PrivateInstance, id: unknown): Promise<boolean> {
  const read = async (instance: PrivateInstance) =>
    JSON.stringify(await instance.query(`SELECT * FROM ${demoDatabase}.corder WHERE id = ?`, [id]));
  return (await read(a)) === (await read(b));
}

/**
 * The demo's point-in-time restore, after its Backup: a row deleted on the source by mistake, the
 * binary logs archived (BinlogArchive, as its schedule starts it), a Restore to the second before
 * the DELETE into a fresh instance, and the row copied back from there into the source.
 */
export async function pointInTimePhase(
  run: RunMachine,
  instances: { source: PrivateInstance; replica: PrivateInstance; target: PrivateInstance },
  say: (text: string) => void,
): Promise<ExecutionReport> {
  const { source, replica, target } = instances;
  const table = `${demoDatabase}.corder`;
  // Binlog event times have one-second resolution: the write after the backup and the DELETE each
  // get a second of their own.
  await sleep(1100);
  const [row, updated] = await source.query<Record<string, unknown>[]>(
    `SELECT * FROM ${table} ORDER BY id LIMIT 2`,
  );
  await source.query(`UPDATE ${table} SET amount = amount + 1 WHERE id = ?`, [updated?.id]);
  await sleep(1100);
  const [{ now }] = await source.query<[{ now: number }]>('SELECT UNIX_TIMESTAMP() AS now');
  const point = new Date((Number(now) - 1) * 1000).toISOString();
  await source.query(`DELETE FROM ${table} WHERE id = ?`, [row?.id]);
  say('');
  say(`• deleted ${table} id ${String(row?.id)} on the source; the second before was ${point}`);
  await waitForReplica(replica, source, 60);

  const archive = await run(
    'binlogArchive',
    '2. BinlogArchive (every 5 minutes): the closed binary logs of each shard, from its replica',
    { keyspaces: [demoDatabase], maxAge: '0' },
  );
  const restore =
    archive.outcome.status === 'SUCCEEDED'
      ? await run('restore', '   Restore (console) to the second before the DELETE, into a fresh instance', {
          keyspace: demoDatabase,
          shard: '0',
          host: target.cnf,
          toTime: point,
        })
      : undefined;
  const seconds = archive.seconds + (restore?.seconds ?? 0);
  const failed = restore?.outcome ?? archive.outcome;
  if (!restore || failed.status !== 'SUCCEEDED') {
    return {
      machine: 'Point in time',
      status: 'FAILED',
      seconds,
      error: failed.status === 'FAILED' ? `${failed.error}: ${failed.cause}` : '',
      checks: [],
    };
  }
  const output = (failed.status === 'SUCCEEDED' ? failed.output : undefined) as PointInTimeOutput;
  const [found] = await target.query<Record<string, unknown>[]>(`SELECT * FROM ${table} WHERE id = ?`, [
    row?.id,
  ]);
  // Brought back: the restored copy of the row goes into the source again (generated columns follow).
  if (found) {
    const generated = await source.query<{ name: string }[]>(
      "SELECT column_name AS name FROM information_schema.columns WHERE table_schema = ? AND table_name = 'corder' AND extra LIKE '%GENERATED%'",
      [demoDatabase],
    );
    const values = { ...found };
    for (const { name } of generated) delete values[name];
    await source.query(`INSERT INTO ${table} SET ?`, [values]);
  }
  const [back] = await source.query<{ n: number }[]>(`SELECT COUNT(*) AS n FROM ${table} WHERE id = ?`, [
    row?.id,
  ]);
  const applied = output.restore.pointInTime;
  return {
    machine: 'Point in time',
    status: 'SUCCEEDED',
    seconds,
    bytes: output.restore.bytes,
    checks: [
      {
        name: 'binary logs replayed',
        ok: Boolean(applied && applied.transactions > 0) && (await sameRow(source, target, updated?.id)),
        detail: `${applied?.transactions ?? 0} transaction(s) after the backup from ${applied?.binlogs.length ?? 0} archived file(s), the last committed ${applied?.lastApplied?.time ?? '-'} (archived in ${formatSeconds(archive.seconds)})`,
      },
      {
        name: 'deleted row brought back',
        ok: JSON.stringify(found) === JSON.stringify(row) && Number(back?.n) === 1,
        detail: `${table} id ${String(row?.id)} as it was at ${point}, copied from the restored instance into the source`,
      },
    ],
  };
}
