import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectBackups } from '../../core/backups.ts';
import { readDrillRecord } from '../../core/drills.ts';
import { silentLogger } from '../../core/log.ts';
import { openTopology } from '../../core/topology/index.ts';
import { type ExecutionEvent, LocalStateMachines } from '../../local/runner.ts';
import { createTestInstance, type TestInstance } from '../support/mariadb.ts';
import { tempDir } from '../support/root.ts';
import { startS3, type TestS3 } from '../support/s3.ts';

/**
 * The Drill state machine from the synthesized ASL, as `stepback-local drill` runs it: a Backup of
 * a shard into S3 (s3rver), then a Drill that restores that backup on a drill instance through the
 * SSM document, proves it, writes DRILL.json, and reports the drill age; a second run finds nothing
 * new to drill; a drill host the topology lists as serving is refused before anything runs.
 */

let machines: LocalStateMachines;
let s3: TestS3;
let storageUrl: string;
let topologyUrl: string;
let source: TestInstance;
let drillInstance: TestInstance;
const savedEnv = { ...process.env };

beforeAll(async () => {
  machines = new LocalStateMachines();
  [s3, source, drillInstance] = await Promise.all([
    startS3(),
    createTestInstance({ name: 'e2e-drill-source' }),
    createTestInstance({ name: 'e2e-drill-instance' }),
  ]);
  storageUrl = s3.url('drills');
  Object.assign(process.env, s3.env);
  await source.query('CREATE DATABASE shop');
  await source.query('CREATE TABLE shop.orders (id INT PRIMARY KEY, note VARCHAR(50))');
  await source.query("INSERT INTO shop.orders SELECT seq, CONCAT('n', seq) FROM shop.seq_1_to_500");
  topologyUrl = `file://${await tempDir('drill-topology')}`;
  const topology = await openTopology(topologyUrl);
  await topology.setShard({
    keyspace: 'shop',
    shard: '0',
    hosts: [{ id: 'shop-primary', role: 'primary', healthy: true, defaultsFile: source.cnf }],
  });
});

afterAll(async () => {
  process.env = savedEnv;
  await Promise.all([source?.dispose(), drillInstance?.dispose()]);
  await s3?.stop();
});

async function run(machine: 'backup' | 'drill', input: unknown) {
  const events: ExecutionEvent[] = [];
  const outcome = await machines.run(machine, input, {
    storageUrl,
    topologyUrl,
    env: process.env,
    logger: silentLogger,
    onEvent: (event) => events.push(event),
  });
  const entered = events.flatMap((e) => (e.type === 'entered' ? [e.state] : []));
  return {
    outcome: outcome as { status: string; output?: unknown; error?: string; cause?: string },
    entered,
  };
}

describe('the Drill state machine', () => {
  it("drills the shard's newest backup on the drill host and records that it passed", async () => {
    const backup = await run('backup', { targets: [{ keyspace: 'shop', shard: '0', host: source.cnf }] });
    expect(backup.outcome.status, JSON.stringify(backup.outcome)).toBe('SUCCEEDED');

    const { outcome, entered } = await run('drill', { host: drillInstance.cnf, maxAgeDays: 8 });
    expect(outcome.status, JSON.stringify(outcome)).toBe('SUCCEEDED');
    const storage = s3.storage('drills');
    const [newest] = await inspectBackups(storage, 'shop/0');
    expect(outcome.output).toMatchObject({
      ok: true,
      drilled: 1,
      passed: [`shop/0/${newest!.name}`],
      failed: [],
      shards: 1,
      overdue: [],
    });
    expect(entered).toEqual([
      'ValidateInput',
      'PlanDrills',
      'DrillBackups',
      'AgentDrill',
      'DrillPassed',
      'DrillAge',
      'AllDrillsPassed',
      'Drilled',
    ]);
    const record = await readDrillRecord(storage.openBackup('shop/0', newest!.name));
    expect(record).toMatchObject({ outcome: 'passed', tablesChecked: 1, evidence: true });
    await storage.close();
    expect(await drillInstance.isRunning()).toBe(true);
  });

  it('finds nothing to drill when the newest backup was drilled', async () => {
    const { outcome } = await run('drill', { host: drillInstance.cnf });
    expect(outcome.status).toBe('SUCCEEDED');
    expect(outcome.output).toMatchObject({ ok: true, drilled: 0, overdue: [] });
  });

  it('refuses a drill host the topology lists as serving, before any drill runs', async () => {
    const { outcome, entered } = await run('drill', { host: 'shop-primary', defaultsFile: source.cnf });
    expect(outcome.status).toBe('FAILED');
    expect(outcome).toMatchObject({ error: 'SERVING_HOST' });
    expect(outcome.cause).toContain('shop/0');
    expect(entered).not.toContain('AgentDrill');
  });
});
