import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RestoreResult } from '../../agent/operations/restore.ts';
import { runStepback } from '../support/cli.ts';
import { stateOf, tableChecksums } from '../support/data.ts';
import { createTestInstance, type TestInstance } from '../support/mariadb.ts';
import { tempDir } from '../support/root.ts';

let primary: TestInstance;
let fresh: TestInstance;
let holding: TestInstance;
let storage: string;

beforeAll(async () => {
  [primary, fresh, holding] = await Promise.all([
    createTestInstance({ name: 'empty-primary' }),
    createTestInstance({ name: 'empty-fresh' }),
    createTestInstance({ name: 'empty-holding' }),
  ]);
  storage = `file://${await tempDir('empty-storage')}`;
  // A new shard: its primary has data and all of its binary logs, and no backup exists yet.
  await primary.query('CREATE DATABASE shop');
  await primary.query('CREATE TABLE shop.orders (id INT PRIMARY KEY, note VARCHAR(50)) ENGINE=InnoDB');
  await primary.query("INSERT INTO shop.orders SELECT seq, CONCAT('order ', seq) FROM shop.seq_1_to_300");
  await holding.query('CREATE DATABASE own');
  await holding.query('CREATE TABLE own.kept (id INT PRIMARY KEY) ENGINE=InnoDB');
  await holding.query('INSERT INTO own.kept VALUES (1), (2)');
});

afterAll(async () => {
  await Promise.all([primary?.dispose(), fresh?.dispose(), holding?.dispose()]);
});

function restore(instance: TestInstance, ...extra: string[]) {
  return runStepback([
    'restore',
    '--defaults-file',
    instance.cnf,
    '--storage',
    storage,
    '--dir',
    'shop/-80',
    ...extra,
    '--json',
  ]);
}

async function localMetadata(instance: TestInstance): Promise<unknown> {
  return instance.query('SELECT name, value FROM _stepback.local_metadata ORDER BY name');
}

describe('restore when there is nothing to restore', () => {
  it('fails NO_BACKUP (exit 3) but still writes the local metadata asked for', async () => {
    const run = await restore(fresh, '--local-metadata', 'role=replica', 'cell=eu-1');
    expect(run.code, run.stderr).toBe(3);
    expect(run.json).toMatchObject({ error: { code: 'NO_BACKUP' } });
    expect(run.stderr).toContain('local metadata written (role, cell) although nothing was restored');
    expect(await localMetadata(fresh)).toEqual([
      { name: 'cell', value: 'eu-1' },
      { name: 'role', value: 'replica' },
    ]);
  });

  it('writes the local metadata into a stopped instance too, and leaves it stopped', async () => {
    await fresh.stop();
    const run = await restore(fresh, '--local-metadata', 'role=spare');
    expect(run.code, run.stderr).toBe(3);
    expect(await fresh.isRunning()).toBe(false);
    await fresh.start();
    expect(await localMetadata(fresh)).toEqual([{ name: 'role', value: 'spare' }]);
  });

  it('fails EXISTING_DATA (exit 4) on an instance holding data, writing the local metadata and touching nothing else', async () => {
    // A backup exists now, so the refusal is about the data.
    const backup = await runStepback([
      'backup',
      '--defaults-file',
      primary.cnf,
      '--storage',
      storage,
      '--dir',
      'shop/0',
      '--json',
    ]);
    expect(backup.code, backup.stderr).toBe(0);
    const before = await tableChecksums(holding, 'own');
    const run = await runStepback([
      'restore',
      '--defaults-file',
      holding.cnf,
      '--storage',
      storage,
      '--dir',
      'shop/0',
      '--local-metadata',
      'role=rdonly',
      '--json',
    ]);
    expect(run.code, run.stderr).toBe(4);
    expect(run.json).toMatchObject({ error: { code: 'EXISTING_DATA' } });
    expect(await localMetadata(holding)).toEqual([{ name: 'role', value: 'rdonly' }]);
    expect(await tableChecksums(holding, 'own')).toEqual(before);
    expect(await holding.query('SHOW DATABASES LIKE ?', ['shop'])).toEqual([]);
  });

  it('--allow-empty: starts a stopped instance empty, as a new shard replica, and replicates the primary from its first binary log', async () => {
    await fresh.stop();
    const run = await restore(
      fresh,
      '--allow-empty',
      '--local-metadata',
      'role=replica',
      '--replicate-from',
      `127.0.0.1:${primary.port}`,
      '--replication-user',
      'root',
    );
    expect(run.code, run.stderr).toBe(0);
    const result = run.json as unknown as RestoreResult;
    expect(result).toMatchObject({
      startedEmpty: true,
      dir: 'shop/-80',
      localMetadataWritten: true,
      replication: { source: `127.0.0.1:${primary.port}` },
    });
    expect(result.startedEmpty && result.reason).toMatch(/^no complete backup/);
    expect(run.stderr).toContain('starting the instance empty (--allow-empty)');
    // Left running and replicating: that is the state it was started into, not the stopped one found.
    expect(await stateOf(fresh)).toMatchObject({
      running: true,
      replication: { configured: true, running: true },
    });
    expect(await tableChecksums(fresh, 'shop')).toEqual(await tableChecksums(primary, 'shop'));
    expect(await localMetadata(fresh)).toEqual([{ name: 'role', value: 'replica' }]);
    await fresh.query('STOP SLAVE');
    await fresh.query('RESET SLAVE ALL');
  });

  it('--allow-empty refuses an instance that holds user data (exit 4), which is not empty', async () => {
    const run = await restore(holding, '--allow-empty');
    expect(run.code, run.stderr).toBe(4);
    expect(run.json).toMatchObject({ error: { code: 'EXISTING_DATA' } });
    expect((run.json as { error: { message: string } }).error.message).toContain(
      '--allow-empty starts only an instance without user data',
    );
  });

  it('--allow-empty does not stand in for a named backup that does not exist (exit 3)', async () => {
    const run = await restore(fresh, '--allow-empty', '--backup', '2026-01-01.000000.nowhere');
    expect(run.code, run.stderr).toBe(3);
  });
});
