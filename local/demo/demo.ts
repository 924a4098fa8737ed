import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { formatCount, formatSeconds } from '../../agent/report/format.ts';
import { messageOf } from '../../core/errors.ts';
import { createLogger, formatLogRecord } from '../../core/log.ts';
import { openTopology } from '../../core/topology/index.ts';
import { type DisplayStream, ExecutionDisplay } from '../display.ts';
import {
  createPrivateInstance,
  type PrivateInstance,
  serverBinaries,
  startReplication,
  waitForReplica,
} from '../private-instance.ts';
import { type ExecutionOutcome, LocalStateMachines } from '../runner.ts';
import { demoEpilogue } from './epilogue.ts';
import { pointInTimePhase } from './point-in-time.ts';
import { demoDatabase, loadSampleData } from './sample-data.ts';
import { allPassed, type Check, type ExecutionReport, renderSummary } from './summary.ts';
import { startDemoWriter } from './writer.ts';

export interface DemoOptions {
  /** Rows of sample data in all (default 200,000). */
  rows: number;
  /** Leave the instances running and the files in place, and say how to reach them. */
  keep: boolean;
  /** Backup storage; default a directory inside the demo's temp directory. */
  storageUrl?: string;
  /** Where the demo's directory is made (default the system temp directory). */
  parent?: string;
  /** Progress (states, agent progress). */
  stderr: DisplayStream;
  /** The summary. */
  stdout: DisplayStream;
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

const stepbackBin = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'bin',
  'stepback.js',
);
/** The replication user of the private instances is root without a password; the variable is empty. */
const passwordEnv = 'STEPBACK_DEMO_REPLICATION_PASSWORD';
const instanceNames = ['source', 'replica', 'pitr', 'restored', 'dest-80', 'dest80-'] as const;
type InstanceName = (typeof instanceNames)[number];

/**
 * `npm run demo`: private MariaDB instances in a temp directory (a source with sample data, its
 * replica, fresh restore targets and one destination per key range), then the state machines
 * exactly as deployed, run locally — a scheduled-style Backup of the replica, a Drill of that
 * backup on the still-empty restore target, a row deleted and brought back by BinlogArchive and a
 * Restore to the second before, a console Restore that then replicates from the source, a Reshard
 * into two key ranges with diffs — and a
 * summary of what each took and what was verified. Exit 0 only when every check passed.
 */
export async function runDemo(options: DemoOptions): Promise<number> {
  const started = performance.now();
  const display = new ExecutionDisplay(options.stderr, { plainIntervalMs: 3000 });
  const say = (text: string) => display.line(text);
  const logger = createLogger((record) => display.line(`  ${formatLogRecord(record)}`), 'warn');

  const binaries = await serverBinaries();
  if (binaries.flavor !== 'mariadb') {
    say(
      `error: the demo's private instances need MariaDB; found ${binaries.flavor} ${binaries.version} at ${binaries.mysqld}`,
    );
    say(
      '  what to do: install MariaDB (Debian: apt-get install mariadb-server); no system server is started or touched',
    );
    return 1;
  }
  const root = await fs.mkdtemp(path.join(options.parent ?? os.tmpdir(), 'stepback-demo-'));
  const instances = new Map<InstanceName, PrivateInstance>();
  const reports: ExecutionReport[] = [];
  const topologyUrl = pathToFileURL(path.join(root, 'topology')).href;
  const storageUrl = options.storageUrl ?? pathToFileURL(path.join(root, 'backups')).href;
  let exitCode = 1;
  try {
    say(`stepback demo in ${root} (MariaDB ${binaries.version})`);
    say(`• starting ${instanceNames.length} private instances: ${instanceNames.join(', ')}`);
    const starting = Promise.allSettled(
      instanceNames.map((name) => createPrivateInstance({ parent: root, name })),
    );
    // Synthesizing the stack keeps this process busy for seconds; the servers start meanwhile.
    say('• synthesizing the CDK stack: the state machines as deployed');
    const machines = new LocalStateMachines();
    const settled = await starting;
    settled.forEach((result, index) => {
      if (result.status === 'fulfilled') instances.set(instanceNames[index]!, result.value);
    });
    const failed = settled.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
    options.signal?.throwIfAborted();
    const instance = (name: InstanceName) => instances.get(name)!;
    const source = instance('source');
    const replica = instance('replica');
    const hostNames = new Map([...instances].map(([name, i]) => [i.cnf, name]));
    const run = new ExecutionDisplay(options.stderr, { hostNames, plainIntervalMs: 3000 });

    let mark = performance.now();
    await startReplication(replica, source);
    const connection = await source.connect();
    let loaded: Record<string, number>;
    try {
      loaded = (await loadSampleData(connection, options.rows)).tables;
    } finally {
      await connection.end();
    }
    await waitForReplica(replica, source, 300);
    options.signal?.throwIfAborted();
    const loadedRows = Object.values(loaded).reduce((a, b) => a + b, 0);
    say(
      `• loaded ${formatCount(loadedRows)} rows into ${demoDatabase} (${Object.entries(loaded)
        .map(([t, n]) => `${t} ${formatCount(n)}`)
        .join(', ')}) and replicated them in ${formatSeconds((performance.now() - mark) / 1000)}`,
    );

    const topology = await openTopology(topologyUrl);
    await topology.addCell('local');
    await topology.setShard({
      keyspace: demoDatabase,
      shard: '0',
      hosts: [
        { id: 'source', role: 'primary', healthy: true, cell: 'local', defaultsFile: source.cnf },
        { id: 'replica', role: 'replica', healthy: true, cell: 'local', defaultsFile: replica.cnf },
      ],
    });
    await topology.setVSchema(demoDatabase, {
      sharded: true,
      vindexes: { hash: { type: 'hash' } },
      tables: Object.fromEntries(
        ['customer', 'corder', 'audit_log'].map((table) => [
          table,
          { column_vindexes: [{ column: 'keyspace_id', name: 'hash' }] },
        ]),
      ),
    });
    const env = { ...options.env, [passwordEnv]: '' };

    const execute = async (
      machine: 'backup' | 'restore' | 'reshard' | 'drill' | 'binlogArchive',
      title: string,
      input: unknown,
    ) => {
      options.signal?.throwIfAborted();
      say('');
      say(title);
      say(`  input: ${JSON.stringify(input)}`);
      mark = performance.now();
      const outcome = await machines.run(machine, input, {
        storageUrl,
        topologyUrl,
        env,
        logger,
        signal: options.signal,
        onEvent: (event) => run.event(event),
        onNotice: (notice) => run.line(`  notice: ${notice.subject}`),
      });
      run.done();
      const seconds = (performance.now() - mark) / 1000;
      say(`  ${outcome.status} in ${formatSeconds(seconds)}`);
      return { outcome, seconds };
    };
    const failedReport = (machine: string, outcome: ExecutionOutcome, seconds: number): ExecutionReport => ({
      machine,
      status: 'FAILED',
      seconds,
      error: outcome.status === 'FAILED' ? `${outcome.error}: ${outcome.cause}` : '',
      checks: [],
    });

    // 1. Backup, as the schedule starts it: the keyspace's shards from the topology store.
    const replicaBefore = await replicationState(replica);
    const backup = await execute(
      'backup',
      '1. Backup (scheduled): every shard of the keyspace, on its healthy replica',
      {
        keyspaces: [demoDatabase],
        retention: { keepCount: 3, keepDays: 7 },
      },
    );
    if (backup.outcome.status !== 'SUCCEEDED') {
      reports.push(failedReport('Backup', backup.outcome, backup.seconds));
    } else {
      const summary = backup.outcome.output as BackupSummary;
      const shard = summary.succeeded[0]!;
      const replicaAfter = await replicationState(replica);
      reports.push({
        machine: 'Backup',
        status: 'SUCCEEDED',
        seconds: backup.seconds,
        bytes: shard.bytes,
        throughput: {
          unit: 'bytes',
          amount: shard.bytes.raw,
          counted: 'raw',
          seconds: shard.seconds,
          during: 'agent backup',
        },
        checks: [
          {
            name: 'backup',
            ok: summary.ok && shard.host === 'replica',
            detail: `${shard.dir}/${shard.backup} from ${shard.host} at ${shard.position}, manifest and files validated`,
          },
          {
            name: 'replica put back',
            ok: replicaAfter === replicaBefore && replicaAfter.startsWith('replicating'),
            detail: replicaAfter,
          },
        ],
      });
    }

    // A drill of the new backup, on the instance the Restore uses next: empty now, and left so.
    const restored = instance('restored');
    if (backup.outcome.status === 'SUCCEEDED') reports.push(await drillReport(execute, restored));

    // A row deleted by mistake, brought back by a restore to the second before the DELETE.
    reports.push(
      await pointInTimePhase(execute, { source, replica, target: instance('pitr') }, (text) => say(text)),
    );

    // Restore, as an operator starts it from the console, into a fresh instance.
    const restore = await execute(
      'restore',
      '3. Restore (console): the newest backup into a fresh instance, then replicate from the source',
      {
        keyspace: demoDatabase,
        shard: '0',
        host: restored.cnf,
        backup: 'latest',
        replicateFrom: { host: '127.0.0.1', port: source.port, user: 'root', passwordEnv },
        localMetadata: { Alias: 'local-restored' },
      },
    );
    if (restore.outcome.status !== 'SUCCEEDED') {
      reports.push(failedReport('Restore', restore.outcome, restore.seconds));
    } else {
      const output = restore.outcome.output as RestoreOutput;
      const marker = `written after the restore ${Date.now()}`;
      await source.query(
        `INSERT INTO ${demoDatabase}.audit_log (keyspace_id, happened, line) VALUES (42, NOW(6), ?)`,
        [marker],
      );
      const caughtUp = await waitForReplica(restored, source, 60).then(
        () => true,
        () => false,
      );
      const [row] = await restored.query<{ n: string }[]>(
        `SELECT COUNT(*) AS n FROM ${demoDatabase}.audit_log WHERE line = ?`,
        [marker],
      );
      const diff = await diffDatabases(env, source, restored);
      reports.push({
        machine: 'Restore',
        status: 'SUCCEEDED',
        seconds: restore.seconds,
        bytes: output.restore.bytes,
        throughput: {
          unit: 'bytes',
          amount: output.restore.bytes.raw,
          counted: 'raw',
          seconds: output.restore.seconds,
          during: 'agent restore',
        },
        checks: [
          {
            name: 'replication caught up',
            ok: caughtUp && Number(row?.n) === 1,
            detail: `from ${output.restore.replication?.source ?? '(none)'}: restored at ${output.position}, a row written afterwards arrived`,
          },
          diffCheck('diff source/restored', diff),
        ],
      });
    }

    // 4. Reshard: split the keyspace into -80 and 80- while an application keeps writing, catch each
    // copy up, freeze the primary, diff each copy at its final position and switch the serving shards.
    await waitForReplica(replica, source, 60);
    const low = instance('dest-80');
    const high = instance('dest80-');
    const uri = (i: PrivateInstance) => `mysql://root@127.0.0.1:${i.port}/${demoDatabase}`;
    const stopWriting = await startDemoWriter(source);
    const reshard = await execute(
      'reshard',
      '4. Reshard (console): split the keyspace into two key ranges while it takes writes, cut over',
      {
        keyspace: demoDatabase,
        shard: '0',
        sourceHost: replica.cnf,
        sourceUri: uri(replica),
        database: demoDatabase,
        keyColumn: 'keyspace_id',
        keyType: 'uint64',
        cutover: true,
        // Host ids as the topology records them; each defaults file says which instance it is.
        destinations: [
          { host: 'dest-80', defaultsFile: low.cnf, keyRange: '-80', uri: uri(low) },
          { host: 'dest80-', defaultsFile: high.cnf, keyRange: '80-', uri: uri(high) },
        ],
      },
    );
    const written = await stopWriting();
    if (reshard.outcome.status !== 'SUCCEEDED') {
      reports.push(failedReport('Reshard', reshard.outcome, reshard.seconds));
    } else {
      const output = reshard.outcome.output as ReshardOutput;
      const copied = output.destinations.reduce((sum, d) => sum + d.restored.rows, 0);
      // The source is frozen: its rows are those at the position cut over at.
      const sourceRows = await rowCount(replica);
      const compared = output.destinations.reduce((sum, d) => sum + d.diff.total.matching, 0);
      const shards = await topology.listShards(demoDatabase);
      const serving = shards.filter((s) => s.serving !== false).map((s) => s.shard);
      reports.push({
        machine: 'Reshard',
        status: 'SUCCEEDED',
        seconds: reshard.seconds,
        bytes: { stored: output.snapshots.reduce((sum, s) => sum + s.bytes, 0) },
        throughput: {
          unit: 'rows',
          amount: copied,
          counted: 'rows loaded',
          seconds: reshard.seconds,
          during: 'execution',
        },
        checks: [
          ...output.destinations.map((d) => diffCheck(`diff ${d.keyRange} at the cutover`, d.diff)),
          {
            name: 'every acknowledged write in one range',
            ok: compared === sourceRows && written.committed > 0,
            detail: `${formatCount(written.committed)} transactions written during the reshard; ${formatCount(compared)} rows in the copies of ${formatCount(sourceRows)} at ${output.cutover.position}`,
          },
          {
            name: 'freeze window',
            ok: output.cutover.frozenSeconds > 0,
            detail: `writes frozen for ${output.cutover.frozenSeconds.toFixed(2)}s${written.frozenOut ? '; the writer was stopped by it' : ''}`,
          },
          {
            name: 'serving shards switched',
            ok: serving.join(',') === '-80,80-',
            detail: `serving ${serving.join(', ')}; shard 0 not serving`,
          },
          {
            name: 'serving vschema',
            ok: output.vschema.cells?.every((c) => c.ok) === true,
            detail: `rebuilt in ${output.vschema.cells?.map((c) => c.cell).join(', ') ?? '(no cells)'}`,
          },
        ],
      });
    }

    exitCode = allPassed(reports) && reports.length === 4 ? 0 : 1;
    options.stdout.write(`\n${renderSummary(reports)}\n\n`);
    options.stdout.write(
      `${exitCode === 0 ? 'every verification passed' : 'SOME VERIFICATIONS FAILED'} in ${formatSeconds(
        (performance.now() - started) / 1000,
      )}\n`,
    );
  } catch (error) {
    display.done();
    say(`error: ${messageOf(error)}`);
    if (reports.length > 0) options.stdout.write(`\n${renderSummary(reports)}\n`);
    exitCode = 1;
  } finally {
    display.done();
    if (!options.keep) {
      await Promise.allSettled([...instances.values()].map((i) => i.dispose()));
      await fs.rm(root, { recursive: true, force: true });
    }
    options.stdout.write(
      await demoEpilogue({ root, storageUrl, topologyUrl, instances, keep: options.keep }),
    );
  }
  return exitCode;
}

interface BackupSummary {
  ok: boolean;
  succeeded: {
    dir: string;
    host: string;
    backup: string;
    position: string;
    bytes: { raw: number; stored: number };
    seconds: number;
  }[];
}

interface RestoreOutput {
  position: string;
  restore: {
    bytes: { raw: number; stored: number };
    seconds: number;
    replication?: { source: string; caughtUpTo: string };
  };
}

interface DiffTotals {
  total: { processed: number; matching: number; mismatched: number; extraLeft: number; extraRight: number };
}

interface ReshardOutput {
  snapshots: { keyRange: string; bytes: number; rows: number }[];
  destinations: { keyRange: string; restored: { rows: number }; diff: DiffTotals }[];
  cutover: { position: string; frozenSeconds: number };
  vschema: { cells?: { cell: string; ok: boolean }[] };
}

function diffCheck(name: string, diff: DiffTotals | Error): Check {
  if (diff instanceof Error) return { name, ok: false, detail: diff.message };
  const { matching, mismatched, extraLeft, extraRight } = diff.total;
  const differing = mismatched + extraLeft + extraRight;
  return {
    name,
    ok: differing === 0 && matching > 0,
    detail: `${formatCount(matching)} rows match, ${formatCount(mismatched)} differ, ${formatCount(extraLeft)} only in the source, ${formatCount(extraRight)} only in the copy`,
  };
}

/** `replicating, read_only=OFF` or `not replicating (…)`: what a backup must put back as found. */
async function replicationState(instance: PrivateInstance): Promise<string> {
  const [status] = await instance.query<Record<string, string>[]>('SHOW SLAVE STATUS');
  const [{ ro }] = await instance.query<[{ ro: number }]>('SELECT @@GLOBAL.read_only AS ro');
  const replicating = status?.Slave_IO_Running === 'Yes' && status?.Slave_SQL_Running === 'Yes';
  return `${replicating ? 'replicating' : 'not replicating'}, read_only=${Number(ro) ? 'ON' : 'OFF'}`;
}

async function rowCount(instance: PrivateInstance): Promise<number> {
  const [row] = await instance.query<{ n: string }[]>(
    `SELECT (SELECT COUNT(*) FROM ${demoDatabase}.customer) + (SELECT COUNT(*) FROM ${demoDatabase}.corder) + (SELECT COUNT(*) FROM ${demoDatabase}.audit_log) AS n`,
  );
  return Number(row?.n);
}

/** `stepback diff --json` of the demo database on two instances, as an operator would run it. */
function diffDatabases(
  env: NodeJS.ProcessEnv,
  left: PrivateInstance,
  right: PrivateInstance,
): Promise<DiffTotals | Error> {
  const uri = (i: PrivateInstance) =>
    `mysql://root@localhost/${demoDatabase}?socket=${encodeURIComponent(i.socket)}`;
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [stepbackBin, 'diff', '--left', uri(left), '--right', uri(right), '--json', '--quiet'],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (data: Buffer) => {
      stdout += data.toString();
    });
    child.stderr.on('data', (data: Buffer) => {
      stderr += data.toString();
    });
    child.once('error', (error) => resolve(error));
    child.once('close', (code) => {
      try {
        const result = JSON.parse(stdout.trim().split('\n').pop() ?? '') as DiffTotals;
        if (result.total) return resolve(result);
      } catch {}
      resolve(
        new Error(`stepback diff exited with ${code}: ${stderr.trim().split('\n').slice(-3).join(' ')}`),
      );
    });
  });
}

type Execute = (
  machine: 'drill',
  title: string,
  input: unknown,
) => Promise<{ outcome: ExecutionOutcome; seconds: number }>;

/**
 * The Drill machine on the backup just made: restored on `drillHost`, started, checked against the
 * backup's evidence, then the drill instance's own (empty) files put back.
 */
async function drillReport(execute: Execute, drillHost: PrivateInstance): Promise<ExecutionReport> {
  const drill = await execute(
    'drill',
    "1b. Drill (scheduled): restore the new backup on a drill instance and prove every table's checksum",
    { host: drillHost.cnf },
  );
  if (drill.outcome.status !== 'SUCCEEDED') {
    const error = drill.outcome.status === 'FAILED' ? `${drill.outcome.error}: ${drill.outcome.cause}` : '';
    return { machine: 'Drill', status: 'FAILED', seconds: drill.seconds, error, checks: [] };
  }
  const output = drill.outcome.output as { ok: boolean; passed: string[]; overdue: unknown[] };
  const databases = await drillHost.query<{ Database: string }[]>('SHOW DATABASES');
  return {
    machine: 'Drill',
    status: 'SUCCEEDED',
    seconds: drill.seconds,
    checks: [
      {
        name: 'drill',
        ok: output.ok && output.passed.length === 1 && output.overdue.length === 0,
        detail: `${output.passed.join(', ') || 'nothing'} passed: restored, started, CHECK TABLE, checksums equal to the backup's; DRILL.json written`,
      },
      {
        name: 'drill instance put back',
        ok: !databases.some((d) => d.Database === demoDatabase),
        detail: `holds no ${demoDatabase} database after the drill`,
      },
    ],
  };
}
