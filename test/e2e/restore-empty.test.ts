import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../core/log.ts';
import { type ExecutionEvent, LocalStateMachines } from '../../local/runner.ts';
import { stateOf, tableChecksums } from '../support/data.ts';
import { createTestInstance, type TestInstance } from '../support/mariadb.ts';
import { tempDir } from '../support/root.ts';

/**
 * The Restore state machine, from the synthesized ASL, for a new shard that has no backup yet:
 * with allowEmpty its first replica starts empty through the SSM document and `stepback run`, and
 * replicates the primary from its first binary log; without it the execution fails NO_BACKUP.
 */

let machines: LocalStateMachines;
let primary: TestInstance;
let fresh: TestInstance;
let storageUrl: string;

beforeAll(async () => {
  machines = new LocalStateMachines();
  [primary, fresh] = await Promise.all([
    createTestInstance({ name: 'e2e-empty-primary' }),
    createTestInstance({ name: 'e2e-empty-fresh' }),
  ]);
  storageUrl = `file://${await tempDir('e2e-empty-storage')}`;
  await primary.query('CREATE DATABASE shop');
  await primary.query('CREATE TABLE shop.orders (id INT PRIMARY KEY, note VARCHAR(50)) ENGINE=InnoDB');
  await primary.query("INSERT INTO shop.orders SELECT seq, CONCAT('order ', seq) FROM shop.seq_1_to_200");
}, 60_000);

afterAll(async () => {
  await Promise.all([primary?.dispose(), fresh?.dispose()]);
});

async function runRestore(input: unknown) {
  const events: ExecutionEvent[] = [];
  const outcome = await machines.run('restore', input, {
    storageUrl,
    env: { ...process.env, REPL_PASSWORD: '' },
    logger: silentLogger,
    onEvent: (event) => events.push(event),
  });
  return { outcome, entered: events.flatMap((e) => (e.type === 'entered' ? [e.state] : [])) };
}

describe('the Restore state machine for a shard without a backup', () => {
  it('fails NO_BACKUP without allowEmpty, before the agent runs', async () => {
    const { outcome, entered } = await runRestore({ keyspace: 'shop', shard: '-80', host: fresh.cnf });
    expect(outcome.status).toBe('FAILED');
    expect(outcome.status === 'FAILED' && outcome.error).toBe('NO_BACKUP');
    expect(entered).not.toContain('AgentRestore');
  });

  it('with allowEmpty starts the instance empty, says so, and replicates the primary from its first binary log', async () => {
    await fresh.stop();
    const { outcome, entered } = await runRestore({
      keyspace: 'shop',
      shard: '-80',
      host: fresh.cnf,
      allowEmpty: true,
      localMetadata: { role: 'replica' },
      replicateFrom: { host: '127.0.0.1', port: primary.port, user: 'root', passwordEnv: 'REPL_PASSWORD' },
    });
    expect(outcome.status, JSON.stringify(outcome)).toBe('SUCCEEDED');
    const output = (outcome.status === 'SUCCEEDED' ? outcome.output : undefined) as any;
    expect(output).toMatchObject({
      keyspace: 'shop',
      shard: '-80',
      host: fresh.cnf,
      startedEmpty: true,
      restore: {
        startedEmpty: true,
        dir: 'shop/-80',
        localMetadataWritten: true,
        replication: { source: `127.0.0.1:${primary.port}` },
      },
    });
    expect(output.reason).toMatch(/^no complete backup/);
    // No manifest to validate: the choice goes straight to the agent.
    expect(entered).toEqual([
      'ValidateInput',
      'ListBackups',
      'ChooseBackup',
      'BackupOrEmpty',
      'AgentRestore',
      'RestoredOrStartedEmpty',
      'StartedEmpty',
    ]);
    expect(await stateOf(fresh)).toMatchObject({
      running: true,
      replication: { configured: true, running: true },
    });
    expect(await tableChecksums(fresh, 'shop')).toEqual(await tableChecksums(primary, 'shop'));
    expect(await fresh.query('SELECT name, value FROM _stepback.local_metadata')).toEqual([
      { name: 'role', value: 'replica' },
    ]);
  });
});
