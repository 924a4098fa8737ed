import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectBackups } from '../../core/backups.ts';
import { silentLogger } from '../../core/log.ts';
import { openTopology } from '../../core/topology/index.ts';
import { demoDatabase, loadSampleData } from '../../local/demo/sample-data.ts';
import { LocalStateMachines } from '../../local/runner.ts';
import { stateOf, tableChecksums } from '../support/data.ts';
import { createTestInstance, type TestInstance, waitForReplica } from '../support/mariadb.ts';
import { tempDir } from '../support/root.ts';
import { startS3, type TestS3 } from '../support/s3.ts';

/**
 * The online engine through the synthesized state machines: a keyspace whose only host is its
 * primary is backed up there by the Backup machine with `engine: "online"` (SSM document, `stepback
 * run`, the agent), and the Restore machine restores that backup into a fresh instance that then
 * replicates from the primary.
 */

let machines: LocalStateMachines;
let s3: TestS3;
let storageUrl: string;
let topologyUrl: string;
let primary: TestInstance;
const instances: TestInstance[] = [];
const savedEnv = { ...process.env };

beforeAll(async () => {
  machines = new LocalStateMachines();
  [s3, primary] = await Promise.all([startS3(), createTestInstance({ name: 'online-e2e-primary' })]);
  instances.push(primary);
  storageUrl = s3.url('online-e2e');
  Object.assign(process.env, s3.env);
  const connection = await primary.connect();
  try {
    await loadSampleData(connection, 2000);
  } finally {
    await connection.end();
  }
  topologyUrl = `file://${await tempDir('online-topology')}`;
  const topology = await openTopology(topologyUrl);
  await topology.addCell('zone1');
  await topology.setShard({
    keyspace: demoDatabase,
    shard: '0',
    hosts: [{ id: 'primary', role: 'primary', healthy: true, cell: 'zone1', defaultsFile: primary.cnf }],
  });
});

afterAll(async () => {
  process.env = savedEnv;
  await Promise.all(instances.map((i) => i.dispose()));
  await s3?.stop();
});

async function run(machine: 'backup' | 'restore', input: unknown) {
  const outcome = await machines.run(machine, input, {
    storageUrl,
    topologyUrl,
    env: { ...process.env, REPL_PASSWORD: '' },
    logger: silentLogger,
  });
  return outcome as { status: string; output?: any; error?: string; cause?: string };
}

describe('the state machines with the online engine', () => {
  it('backs a shard without a replica up on its serving primary, and restores it into a replicating instance', async () => {
    const physical = await run('backup', { keyspaces: [demoDatabase] });
    expect(physical.status).toBe('FAILED');
    expect(physical.cause).toContain('NO_HEALTHY_REPLICA');

    const before = await stateOf(primary);
    const backup = await run('backup', { keyspaces: [demoDatabase], engine: 'online' });
    expect(backup.status, `${backup.error}: ${backup.cause}`).toBe('SUCCEEDED');
    const [shard] = backup.output.succeeded;
    expect(shard).toMatchObject({ dir: `${demoDatabase}/0`, host: 'primary' });
    expect(await stateOf(primary)).toEqual(before);
    const storage = s3.storage('online-e2e');
    const [stored] = await inspectBackups(storage, `${demoDatabase}/0`);
    await storage.close();
    expect(stored).toMatchObject({
      name: shard.backup,
      complete: true,
      manifest: { engine: 'online', role: 'primary' },
    });

    const fresh = await createTestInstance({ name: 'online-e2e-fresh' });
    instances.push(fresh);
    const restore = await run('restore', {
      keyspace: demoDatabase,
      shard: '0',
      host: fresh.cnf,
      replicateFrom: { host: '127.0.0.1', port: primary.port, user: 'root', passwordEnv: 'REPL_PASSWORD' },
    });
    expect(restore.status, `${restore.error}: ${restore.cause}`).toBe('SUCCEEDED');
    expect(restore.output).toMatchObject({ backup: shard.backup });
    await primary.query(`INSERT INTO ${demoDatabase}.audit_log (keyspace_id, happened) VALUES (3, NOW(6))`);
    await waitForReplica(fresh, primary);
    expect(await tableChecksums(fresh, demoDatabase)).toEqual(await tableChecksums(primary, demoDatabase));
  });
});
