import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AgentRun, type CliRun, runAgentRequest, runStepback } from '../support/cli.ts';
import { fillRandom } from '../support/data.ts';
import {
  createTestInstance,
  startReplication,
  type TestInstance,
  waitForReplica,
} from '../support/mariadb.ts';
import { tempDir } from '../support/root.ts';

/**
 * Each operation is one schema and one function: the CLI parses its flags into the request that
 * `stepback run` decodes from a state machine, and both get the same result value.
 */

let primary: TestInstance;
let replica: TestInstance;
let target: TestInstance;
let storage: string;

beforeAll(async () => {
  [primary, replica, target] = await Promise.all([
    createTestInstance({ name: 'ops-primary' }),
    createTestInstance({ name: 'ops-replica' }),
    createTestInstance({ name: 'ops-target' }),
  ]);
  storage = `file://${await tempDir('ops-storage')}`;
  await startReplication(replica, primary);
  await fillRandom(primary, 'shop', 'items', 300);
  await primary.query(
    'CREATE TABLE shop.customers (id BIGINT UNSIGNED PRIMARY KEY, ksid BIGINT UNSIGNED NOT NULL, name VARCHAR(40))',
  );
  await primary.query(
    "INSERT INTO shop.customers SELECT seq, CAST(CONV(SUBSTR(MD5(seq), 1, 16), 16, 10) AS UNSIGNED), CONCAT('c', seq) FROM shop.seq_1_to_200",
  );
  await waitForReplica(replica, primary);
});

afterAll(async () => {
  await Promise.all([primary?.dispose(), replica?.dispose(), target?.dispose()]);
});

/**
 * Timings, memory and run-specific names differ between two runs, and so do the sizes of a datadir
 * whose logs grew in between; everything else must not.
 */
function comparable(value: unknown, renames: [string, string][] = []): unknown {
  if (Array.isArray(value)) return value.map((item) => comparable(item, renames));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([key]) => !/seconds|Seconds|peakRssBytes|mbPerSecond|^bytes$/.test(key))
        .map(([key, item]) => [key, comparable(item, renames)]),
    );
  }
  if (typeof value === 'string')
    return renames.reduce((text, [from, to]) => text.split(from).join(to), value);
  return value;
}

function success(run: AgentRun): unknown {
  expect(run.outcome, run.stderr).toMatchObject({ callback: 'success' });
  return (run.outcome as { output: unknown }).output;
}

function printed(run: CliRun): unknown {
  expect(run.code, run.stderr).toBe(0);
  return run.json;
}

const uri = (instance: TestInstance, database: string) =>
  `mysql://root@localhost/${database}?socket=${encodeURIComponent(instance.socket)}`;

describe('one operation, two edges: the CLI and stepback run', () => {
  it('backup: the same result, named and stored alike', async () => {
    const cli = await runStepback([
      'backup',
      '--storage',
      storage,
      '--dir',
      'shop/cli',
      '--defaults-file',
      replica.cnf,
      '--name',
      'b1',
      '--concurrency',
      '2',
      '--json',
    ]);
    const agent = await runAgentRequest({
      operation: 'backup',
      storage,
      dir: 'shop/run',
      defaultsFile: replica.cnf,
      name: 'b1',
      concurrency: 2,
    });
    const fromCli = printed(cli) as { position: string; bytes: { stored: number } };
    const fromRun = success(agent) as { position: string; bytes: { stored: number } };
    expect(fromCli.position).not.toBe('');
    expect(fromRun.bytes.stored).toBeGreaterThan(0);
    expect(comparable(fromRun, [['shop/run', 'shop/cli']])).toEqual(comparable(fromCli));
  });

  it('restore: the same result, the same restored data', async () => {
    await target.query('CREATE DATABASE shop');
    await target.query('CREATE TABLE shop.old (id INT PRIMARY KEY)');
    const cli = await runStepback([
      'restore',
      '--storage',
      storage,
      '--dir',
      'shop/cli',
      '--defaults-file',
      target.cnf,
      '--delete-before-restore',
      '--local-metadata',
      'role=replica',
      '--json',
    ]);
    const fromCli = printed(cli);
    const agent = await runAgentRequest({
      operation: 'restore',
      storage,
      dir: 'shop/run',
      defaultsFile: target.cnf,
      deleteBeforeRestore: true,
      localMetadata: { role: 'replica' },
      backup: null,
    });
    const fromRun = success(agent);
    expect(comparable(fromRun, [['shop/run', 'shop/cli']])).toEqual(comparable(fromCli));
    const [row] = await target.query<{ n: number }[]>('SELECT COUNT(*) AS n FROM shop.items');
    expect(Number(row?.n)).toBe(300);
  });

  it('snapshot and multirestore: the same results for the same key ranges', async () => {
    const flags = [
      '--key-column',
      'ksid',
      '--key-type',
      'uint64',
      '--key-ranges',
      '-80,80-',
      '--tables',
      'customers',
    ];
    const refused = await runStepback([
      'snapshot',
      '--storage',
      storage,
      '--dir',
      'shop/snapcli',
      '--defaults-file',
      replica.cnf,
      '--database',
      'shop',
      ...flags,
      '--json',
    ]);
    expect(refused.code).toBe(2);
    const agentRefused = await runAgentRequest({
      operation: 'snapshot',
      storage,
      dir: 'shop/snaprun',
      defaultsFile: replica.cnf,
      database: 'shop',
      keyColumn: 'ksid',
      keyType: 'uint64',
      keyRanges: ['-80', '80-'],
      tables: ['customers'],
    });
    expect(agentRefused.outcome).toMatchObject({ callback: 'failure', error: 'USAGE' });
    expect((agentRefused.outcome as { cause: string }).cause).toMatch(
      /^request\.tables: copies whole tables/,
    );
    expect(refused.stderr).toMatch(/--tables: copies whole tables/);

    const cli = await runStepback([
      'snapshot',
      '--storage',
      storage,
      '--dir',
      'shop/snapcli',
      '--defaults-file',
      replica.cnf,
      '--database',
      'shop',
      ...flags.slice(0, 6),
      '--exclude-tables',
      'items',
      '--json',
    ]);
    const agent = await runAgentRequest({
      operation: 'snapshot',
      storage,
      dir: 'shop/snaprun',
      defaultsFile: replica.cnf,
      database: 'shop',
      keyColumn: 'ksid',
      keyType: 'uint64',
      keyRanges: ['-80', '80-'],
      excludeTables: ['items'],
    });
    const fromCli = printed(cli) as { snapshots: { name: string }[] };
    const fromRun = success(agent) as { snapshots: { name: string }[] };
    const names: [string, string][] = [
      ['shop/snaprun', 'shop/snapcli'],
      [fromRun.snapshots[0]!.name, fromCli.snapshots[0]!.name],
    ];
    expect(comparable(fromRun, names)).toEqual(comparable(fromCli));

    const loadCli = await runStepback([
      'multirestore',
      '--storage',
      storage,
      '--defaults-file',
      target.cnf,
      '--sources',
      'shop/snapcli/-80,shop/snapcli/80-',
      '--database',
      'merged_cli',
      '--json',
    ]);
    const loadRun = await runAgentRequest({
      operation: 'multirestore',
      storage,
      defaultsFile: target.cnf,
      sources: ['shop/snaprun/-80', 'shop/snaprun/80-'],
      database: 'merged_run',
    });
    expect(comparable(success(loadRun), [...names, ['merged_run', 'merged_cli']])).toEqual(
      comparable(printed(loadCli)),
    );

    const diffCli = await runStepback([
      'diff',
      '--left',
      uri(replica, 'shop'),
      '--right',
      uri(target, 'merged_cli'),
      '--tables',
      'customers',
      '--json',
    ]);
    const diffRun = await runAgentRequest({
      operation: 'diff',
      left: uri(replica, 'shop'),
      right: uri(target, 'merged_run'),
      tables: ['customers'],
    });
    const fromDiffCli = printed(diffCli) as { total: { matching: number } };
    expect(fromDiffCli.total.matching).toBe(200);
    expect(comparable(success(diffRun))).toEqual(comparable(fromDiffCli));
  });

  it('diff: rows that differ fail both edges alike, exit 5 and VERIFICATION_FAILED', async () => {
    await target.query('UPDATE merged_cli.customers SET name = NULL WHERE id = 7');
    const cli = await runStepback([
      'diff',
      '--left',
      uri(replica, 'shop'),
      '--right',
      uri(target, 'merged_cli'),
      '--tables',
      'customers',
      '--json',
    ]);
    expect(cli.code).toBe(5);
    expect(cli.json).toMatchObject({ total: { mismatched: 1 } });
    const agent = await runAgentRequest({
      operation: 'diff',
      left: uri(replica, 'shop'),
      right: uri(target, 'merged_cli'),
      tables: ['customers'],
    });
    expect(agent.code).toBe(5);
    expect(agent.outcome).toMatchObject({ callback: 'failure', error: 'VERIFICATION_FAILED' });
    expect((agent.outcome as { cause: string }).cause).toContain('"mismatched":1');
  });

  it('two operations on one instance: the second is refused with INSTANCE_BUSY, the first completes', async () => {
    let second: Promise<AgentRun> | undefined;
    const first = await runAgentRequest(
      { operation: 'backup', storage, dir: 'shop/busy', defaultsFile: replica.cnf, name: 'busy' },
      {},
      (stderr) => {
        if (!second && stderr.includes('stopping replication')) {
          second = runAgentRequest({
            operation: 'snapshot',
            storage,
            dir: 'shop/busy2',
            defaultsFile: replica.cnf,
            database: 'shop',
          });
        }
      },
    );
    expect(second).toBeDefined();
    const refused = await second!;
    expect(refused.outcome).toMatchObject({ callback: 'failure', error: 'INSTANCE_BUSY' });
    expect(refused.code).toBe(6);
    expect(first.outcome, first.stderr).toMatchObject({ callback: 'success' });
  });

  it('never shows a password given through a variable: not in logs, progress, results or errors', async () => {
    const secret = 'Pa55-w0rd-never-shown';
    await replica.query(`CREATE USER IF NOT EXISTS 'differ'@'localhost' IDENTIFIED BY '${secret}'`);
    await replica.query("GRANT SELECT ON *.* TO 'differ'@'localhost'");
    await target.query(`CREATE USER IF NOT EXISTS 'differ'@'localhost' IDENTIFIED BY '${secret}'`);
    await target.query("GRANT SELECT ON *.* TO 'differ'@'localhost'");
    const side = (instance: TestInstance, database: string) =>
      `mysql://differ@localhost/${database}?socket=${encodeURIComponent(instance.socket)}`;
    const env = { DIFF_PASSWORD: secret, WRONG_PASSWORD: `${secret}-wrong` };
    const captured: string[] = [];
    const good = await runStepback(
      [
        'diff',
        '--left',
        side(replica, 'shop'),
        '--right',
        side(target, 'merged_run'),
        '--tables',
        'customers',
        '--left-password-env',
        'DIFF_PASSWORD',
        '--right-password-env',
        'DIFF_PASSWORD',
        '--json',
        '--verbose',
      ],
      { env },
    );
    expect(good.code, good.stderr).toBe(0);
    captured.push(good.stdout, good.stderr);
    const bad = await runStepback(
      [
        'diff',
        '--left',
        side(replica, 'shop'),
        '--right',
        side(target, 'merged_run'),
        '--left-password-env',
        'WRONG_PASSWORD',
        '--json',
        '--verbose',
      ],
      { env },
    );
    expect(bad.code).toBe(1);
    captured.push(bad.stdout, bad.stderr);
    for (const passwordEnv of ['DIFF_PASSWORD', 'WRONG_PASSWORD']) {
      const agent = await runAgentRequest(
        {
          operation: 'diff',
          left: side(replica, 'shop'),
          right: side(target, 'merged_run'),
          tables: ['customers'],
          leftPasswordEnv: passwordEnv,
          rightPasswordEnv: 'DIFF_PASSWORD',
        },
        env,
      );
      captured.push(agent.stderr, JSON.stringify(agent.callbacks));
    }
    const restore = await runAgentRequest(
      {
        operation: 'restore',
        storage,
        dir: 'shop/cli',
        defaultsFile: target.cnf,
        deleteBeforeRestore: true,
        replicateFrom: {
          host: '127.0.0.1',
          port: primary.port,
          user: 'nobody',
          passwordEnv: 'DIFF_PASSWORD',
        },
        replicationTimeout: 5,
      },
      env,
    );
    captured.push(restore.stderr, JSON.stringify(restore.callbacks));
    expect(captured.join('\n').length).toBeGreaterThan(1000);
    for (const text of captured) expect(text).not.toContain(secret);
  });

  it('a wrong field: the CLI names the flag, stepback run the field path in the failure cause', async () => {
    const cli = await runStepback([
      'restore',
      '--storage',
      storage,
      '--dir',
      'shop/cli',
      '--defaults-file',
      target.cnf,
      '--replicate-from',
      'db1:70000',
      '--replication-user',
      'repl',
    ]);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toContain('--replicate-from');
    const agent = await runAgentRequest({
      operation: 'restore',
      storage,
      dir: 'shop/cli',
      defaultsFile: target.cnf,
      replicateFrom: { host: 'db1', port: 70000, user: 'repl' },
    });
    expect(agent.code).toBe(2);
    expect(agent.outcome).toEqual({
      callback: 'failure',
      error: 'USAGE',
      cause: expect.stringMatching(/^request\.replicateFrom\.port: must be at most 65535/),
    });
  });
});
