import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../core/log.ts';
import type { PhysicalManifest } from '../../core/manifest.ts';
import { openStorage } from '../../core/storage/index.ts';
import type { BackupStorage } from '../../core/storage/types.ts';
import { openTopology } from '../../core/topology/index.ts';
import type { FunctionSettings } from '../../functions/environment.ts';
import { functionNamed } from '../../functions/index.ts';
import { causeMessage } from '../../functions/notify.ts';
import { chooseBackupHost } from '../../functions/resolve-targets.ts';
import { type FunctionContext, invokeFunction } from '../../functions/runtime.ts';
import { physicalManifest } from '../support/manifests.ts';
import { tempDir } from '../support/root.ts';
import { startS3, type TestS3 } from '../support/s3.ts';

let s3: TestS3;
const savedEnv = { ...process.env };

beforeAll(async () => {
  s3 = await startS3();
  // The functions open storage from a URL with the SDK's credential chain, as in Lambda.
  Object.assign(process.env, s3.env);
});

afterAll(async () => {
  process.env = savedEnv;
  await s3?.stop();
});

function contextFor(
  storageUrl: string,
  now = new Date('2026-11-30T00:00:00Z'),
  topologyUrl?: string,
): FunctionContext {
  const settings: FunctionSettings = {
    storageUrl,
    topologyUrl,
    defaults: {
      defaultsFile: '/etc/mysql/my.cnf',
      retention: { keepCount: 2, keepDays: 3 },
      backup: { engine: 'physical', compression: 'zstd', concurrency: 4, shardsPerExecution: 400 },
    },
    region: 'us-east-1',
    hostsAreDefaultsFiles: false,
  };
  return { settings, logger: silentLogger, now: () => now };
}

function call(name: string, event: unknown, context: FunctionContext): Promise<any> {
  return invokeFunction(functionNamed(name)!, event, context);
}

/** A complete backup of ks/0 with one file, finished at `finishedAt`. */
async function completeBackup(
  storage: BackupStorage,
  name: string,
  finishedAt: string,
): Promise<PhysicalManifest> {
  const handle = await storage.startBackup('ks/0', name);
  const content = Buffer.from(`data of ${name}`);
  const stored = await handle.writeFile('0000', () => Readable.from([content]));
  const manifest = physicalManifest({
    name,
    dir: 'ks/0',
    keyspace: 'ks',
    shard: '0',
    finishedAt,
    position: `0-1-${name.slice(8, 10)}`,
    files: [
      {
        name: '0000',
        base: 'data',
        path: 'ibdata1',
        rawSize: content.length,
        storedSize: stored.size,
        sha256: stored.sha256,
      },
    ],
  });
  await handle.endBackup(manifest);
  return manifest;
}

const storages: [string, () => Promise<string>][] = [
  ['a directory', async () => `file://${await tempDir('functions')}`],
  ['S3 (s3rver)', async () => s3.url(`functions-${Math.random().toString(36).slice(2)}`)],
];

describe.each(storages)('the backup functions on %s', (_label, makeUrl) => {
  let context: FunctionContext;
  let storage: BackupStorage;

  beforeAll(async () => {
    const url = await makeUrl();
    context = contextFor(url);
    storage = await openStorage(url, { region: 'us-east-1' });
    await completeBackup(storage, '2026-11-20.000000.db1', '2026-11-20T00:10:00Z');
    await completeBackup(storage, '2026-11-22.000000.db1', '2026-11-22T00:10:00Z');
    await completeBackup(storage, '2026-11-28.000000.db1', '2026-11-28T00:10:00Z');
    const partial = await storage.startBackup('ks/0', '2026-11-29.000000.db1');
    await partial.writeFile('0000', () => Readable.from([Buffer.from('partial')]));
  });

  afterAll(async () => {
    await storage?.close();
  });

  it('list-backups counts complete and incomplete backups and names the newest and oldest', async () => {
    const listed = await call('list-backups', { dir: 'ks/0' }, context);
    expect(listed).toMatchObject({ total: 4, complete: 3, incomplete: 1 });
    expect(listed.newest.name).toBe('2026-11-28.000000.db1');
    expect(listed.oldest.name).toBe('2026-11-20.000000.db1');
  });

  it('choose-backup picks the newest complete one, a named one, or the newest at or before a time', async () => {
    const latest = await call('choose-backup', { dir: 'ks/0', name: null, atOrBefore: null }, context);
    expect(latest.name).toBe('2026-11-28.000000.db1');
    expect(latest.selection).toEqual({ backup: '2026-11-28.000000.db1' });
    expect(latest.skipped.map((s: { name: string }) => s.name)).toEqual(['2026-11-29.000000.db1']);
    const named = await call('choose-backup', { dir: 'ks/0', name: '2026-11-20.000000.db1' }, context);
    expect(named.position).toBe('0-1-20');
    const before = await call('choose-backup', { dir: 'ks/0', atOrBefore: '2026-11-23T00:00:00Z' }, context);
    expect(before.name).toBe('2026-11-22.000000.db1');
  });

  it('choose-backup fails with NO_BACKUP when nothing qualifies', async () => {
    await expect(call('choose-backup', { dir: 'ks/1' }, context)).rejects.toMatchObject({
      name: 'NO_BACKUP',
    });
    await expect(
      call('choose-backup', { dir: 'ks/0', atOrBefore: '2026-01-01T00:00:00Z' }, context),
    ).rejects.toMatchObject({
      name: 'NO_BACKUP',
      message: expect.stringMatching(/at or before 2026-01-01/),
    });
  });

  it('validate-manifest passes a complete backup and names every missing file of a broken one', async () => {
    const ok = await call('validate-manifest', { dir: 'ks/0', name: '2026-11-28.000000.db1' }, context);
    expect(ok.backups).toEqual([
      { dir: 'ks/0', name: '2026-11-28.000000.db1', files: 1, position: '0-1-28' },
    ]);
    const broken = await storage.startBackup('ks/2', '2026-11-28.000000.db2');
    await broken.endBackup(
      physicalManifest({ name: '2026-11-28.000000.db2', dir: 'ks/2', keyspace: 'ks', shard: '2' }),
    );
    const failure = call(
      'validate-manifest',
      { backups: [{ dir: 'ks/2', name: '2026-11-28.000000.db2' }] },
      context,
    );
    await expect(failure).rejects.toMatchObject({ name: 'VERIFICATION_FAILED' });
    await expect(failure).rejects.toThrow(
      /3 problem\(s\): ks\/2\/2026-11-28\.000000\.db2 0000\.zst: missing/,
    );
  });

  it('validate-manifest fails with INVALID_MANIFEST for a backup without one', async () => {
    await expect(
      call('validate-manifest', { dir: 'ks/0', name: '2026-11-29.000000.db1' }, context),
    ).rejects.toMatchObject({
      name: 'INVALID_MANIFEST',
    });
  });

  it('prune-backups removes what retention no longer keeps', async () => {
    const dry = await call(
      'prune-backups',
      { dir: 'ks/0', retention: { keepCount: 1, keepDays: 3 }, dryRun: true },
      context,
    );
    expect(dry.removed).toEqual(['2026-11-20.000000.db1', '2026-11-22.000000.db1']);
    const pruned = await call(
      'prune-backups',
      { dir: 'ks/0', retention: { keepCount: 2, keepDays: 3 } },
      context,
    );
    expect(pruned.removed).toEqual(['2026-11-20.000000.db1']);
    expect((await storage.listBackups('ks/0')).map((h) => h.name)).not.toContain('2026-11-20.000000.db1');
  });
});

describe('validate-input', () => {
  const context = contextFor('s3://bucket/backups');

  it('fills in the deployment defaults and builds nothing the operator did not ask for', async () => {
    const backup = await call(
      'validate-input',
      { machine: 'backup', input: { targets: [{ keyspace: 'ks', shard: '-80', host: 'i-1' }] } },
      context,
    );
    expect(backup).toEqual({
      storage: 's3://bucket/backups',
      targets: [{ keyspace: 'ks', shard: '-80', host: 'i-1', defaultsFile: '/etc/mysql/my.cnf' }],
      keyspaces: [],
      retention: { keepCount: 2, keepDays: 3 },
      backup: { engine: 'physical', compression: 'zstd', concurrency: 4 },
    });
    const restore = await call(
      'validate-input',
      { machine: 'restore', input: { keyspace: 'ks', shard: '0', host: 'i-2' } },
      context,
    );
    expect(restore.choice).toEqual({ name: null, atOrBefore: null, beforeGtid: null });
    expect(restore.request).toEqual({
      operation: 'restore',
      storage: 's3://bucket/backups',
      dir: 'ks/0',
      defaultsFile: '/etc/mysql/my.cnf',
      deleteBeforeRestore: false,
      localMetadata: null,
      replicateFrom: null,
    });
  });

  it('fails with USAGE naming the field of a bad input', async () => {
    const cases: [string, unknown, RegExp][] = [
      ['backup', {}, /^input\.targets: give targets/],
      ['backup', { targets: [{ keyspace: 'ks', shard: '0' }] }, /^input\.targets\[0\]\.host: /],
      ['restore', { keyspace: 'ks', shard: '0', host: 'i-1', backup: '../x' }, /^input\.backup: /],
      [
        'restore',
        { keyspace: 'ks', shard: '0', host: 'i-1', backup: 'b1', atOrBefore: '2026-11-01T00:00:00Z' },
        /^input\.atOrBefore: /,
      ],
      [
        'reshard',
        {
          keyspace: 'ks',
          shard: '0',
          sourceHost: 'i-1',
          sourceUri: 'mysql://root@h/db',
          database: 'db',
          keyColumn: 'k',
          keyType: 'uint64',
          destinations: [{ host: 'i-2', uri: 'mysql://root@h2/db' }],
        },
        /^input\.destinations\[0\]\.keyRange: /,
      ],
      [
        'reshard',
        {
          keyspace: 'ks',
          shard: '0',
          sourceHost: 'i-1',
          sourceUri: 'mysql://root:secret@h/db',
          database: 'db',
          tables: ['t'],
          destinations: [{ host: 'i-2', uri: 'mysql://root@h2/db' }],
        },
        /^input\.sourceUri: .*no password/,
      ],
    ];
    for (const [machine, input, message] of cases) {
      await expect(call('validate-input', { machine, input }, context)).rejects.toMatchObject({
        name: 'USAGE',
        message: expect.stringMatching(message),
      });
    }
  });

  it('refuses a request larger than States.Base64Encode takes, naming the field that made it so', async () => {
    const localMetadata = Object.fromEntries(
      Array.from({ length: 20 }, (_, i) => [`key${i}`, 'v'.repeat(1000)]),
    );
    await expect(
      call(
        'validate-input',
        { machine: 'restore', input: { keyspace: 'ks', shard: '0', host: 'i-1', localMetadata } },
        context,
      ),
    ).rejects.toMatchObject({
      name: 'USAGE',
      message: expect.stringMatching(
        /^input\.localMetadata: the restore request would be \d+ characters of JSON, .*States\.Base64Encode takes at most 10000/,
      ),
    });
    const tables = Array.from({ length: 400 }, (_, i) => `table_with_a_long_name_${i}`);
    await expect(
      call(
        'validate-input',
        {
          machine: 'reshard',
          input: {
            keyspace: 'ks',
            shard: '0',
            sourceHost: 'i-1',
            sourceUri: 'mysql://root@h/db',
            database: 'db',
            tables,
            destinations: [{ host: 'i-2', uri: 'mysql://root@h2/db' }],
          },
        },
        context,
      ),
    ).rejects.toMatchObject({
      name: 'USAGE',
      message: expect.stringMatching(/^input\.tables: the snapshot request/),
    });
    // Just under the limit still passes.
    const fits = Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`key${i}`, 'v'.repeat(1000)]));
    await expect(
      call(
        'validate-input',
        { machine: 'restore', input: { keyspace: 'ks', shard: '0', host: 'i-1', localMetadata: fits } },
        context,
      ),
    ).resolves.toMatchObject({ request: { localMetadata: fits } });
  });

  it('refuses keyspaces when the deployment has no topology store', async () => {
    await expect(
      call('validate-input', { machine: 'backup', input: { keyspaces: ['ks'] } }, context),
    ).rejects.toMatchObject({
      name: 'USAGE',
      message: expect.stringMatching(/^input\.keyspaces: this deployment has no topology store/),
    });
  });
});

describe('resolve-targets', () => {
  const context = contextFor('s3://bucket/backups');

  it('builds one backup request per explicit target and refuses a shard listed twice', async () => {
    const plan = await call(
      'validate-input',
      {
        machine: 'backup',
        input: {
          targets: [
            { keyspace: 'ks', shard: '-80', host: 'i-1' },
            { keyspace: 'ks', shard: '80-', host: 'i-2', defaultsFile: '/etc/my2.cnf' },
          ],
        },
      },
      context,
    );
    const resolved = await call('resolve-targets', { machine: 'backup', backup: plan }, context);
    expect(resolved.targets.map((t: any) => [t.dir, t.host, t.request.defaultsFile])).toEqual([
      ['ks/-80', 'i-1', '/etc/mysql/my.cnf'],
      ['ks/80-', 'i-2', '/etc/my2.cnf'],
    ]);
    expect(resolved.targets[0].request).toEqual({
      operation: 'backup',
      storage: 's3://bucket/backups',
      dir: 'ks/-80',
      defaultsFile: '/etc/mysql/my.cnf',
      engine: 'physical',
      compression: 'zstd',
      concurrency: 4,
    });
    const twice = { ...plan, targets: [plan.targets[0], plan.targets[0]] };
    await expect(call('resolve-targets', { machine: 'backup', backup: twice }, context)).rejects.toThrow(
      /listed twice/,
    );
  });

  it('splits more targets than one execution takes into batches', async () => {
    const small = contextFor('s3://bucket/backups');
    small.settings.defaults.backup.shardsPerExecution = 2;
    const targets = ['a', 'b', 'c'].map((shard) => ({ keyspace: 'ks', shard, host: `i-${shard}` }));
    const plan = await call('validate-input', { machine: 'backup', input: { targets } }, small);
    const resolved = await call('resolve-targets', { machine: 'backup', backup: plan }, small);
    expect(resolved.batched).toBe(true);
    expect(resolved.targets).toEqual([]);
    expect(resolved.batches.map((batch: any[]) => batch.map((t) => t.dir))).toEqual([
      ['ks/a', 'ks/b'],
      ['ks/c'],
    ]);
    const few = await call(
      'resolve-targets',
      { machine: 'backup', backup: { ...plan, targets: plan.targets.slice(0, 2) } },
      small,
    );
    expect(few).toMatchObject({ batched: false, batches: [] });
    expect(few.targets).toHaveLength(2);
  });

  it('names the systemd unit from the target, else the deployment default, in each request', async () => {
    const withUnit = contextFor('s3://bucket/backups');
    withUnit.settings.defaults.systemdService = 'mariadb';
    const plan = await call(
      'validate-input',
      {
        machine: 'backup',
        input: {
          targets: [
            { keyspace: 'ks', shard: '-80', host: 'i-1', systemdService: 'mysqld@a.service' },
            { keyspace: 'ks', shard: '80-', host: 'i-2' },
          ],
        },
      },
      withUnit,
    );
    const resolved = await call('resolve-targets', { machine: 'backup', backup: plan }, withUnit);
    expect(resolved.targets.map((t: any) => t.request.systemdService)).toEqual([
      'mysqld@a.service',
      'mariadb',
    ]);
    const restore = await call(
      'validate-input',
      {
        machine: 'restore',
        input: { keyspace: 'ks', shard: '0', host: 'i-2', systemdService: 'mysql.service' },
      },
      withUnit,
    );
    expect(restore.request.systemdService).toBe('mysql.service');
    await expect(
      call(
        'validate-input',
        { machine: 'restore', input: { keyspace: 'ks', shard: '0', host: 'i-2', systemdService: 'a b' } },
        withUnit,
      ),
    ).rejects.toMatchObject({
      name: 'USAGE',
      message: expect.stringMatching(/^input\.systemdService: must be a systemd unit name/),
    });
  });

  it('gives each reshard destination the snapshots inside its key range and a key-range diff', async () => {
    const reshard = await call(
      'validate-input',
      {
        machine: 'reshard',
        input: {
          keyspace: 'shop',
          shard: '0',
          sourceHost: 'i-src',
          sourceUri: 'mysql://root@src:3306/shop',
          sourcePasswordEnv: 'SRC_PW',
          database: 'shop',
          keyColumn: 'keyspace_id',
          keyType: 'uint64',
          destinations: [
            { host: 'i-a', keyRange: '-80', uri: 'mysql://root@a:3306/shop', systemdService: 'mariadb' },
            { host: 'i-b', keyRange: '80-', uri: 'mysql://root@b:3306/shop' },
          ],
        },
      },
      context,
    );
    expect(reshard.snapshotRequest.keyRanges).toEqual(['-80', '80-']);
    expect(reshard.snapshotRequest).not.toHaveProperty('systemdService');
    const snapshot = {
      snapshots: [
        { keyRange: '-80', dir: 'shop/0/-80', name: 's1', rows: 5, bytes: 10 },
        { keyRange: '80-', dir: 'shop/0/80-', name: 's1', rows: 6, bytes: 12 },
      ],
    };
    const resolved = await call(
      'resolve-targets',
      { machine: 'reshard', reshard: { ...reshard, snapshot } },
      context,
    );
    expect(
      resolved.destinations.map((d: any) => [d.host, d.multirestore.sources, d.diff.leftKeyRange]),
    ).toEqual([
      ['i-a', ['shop/0/-80@s1'], '-80'],
      ['i-b', ['shop/0/80-@s1'], '80-'],
    ]);
    expect(resolved.destinations[0].diff).toMatchObject({
      left: 'mysql://root@src:3306/shop',
      right: 'mysql://root@a:3306/shop',
      keyColumn: 'keyspace_id',
      keyType: 'uint64',
      leftPasswordEnv: 'SRC_PW',
    });
    expect(resolved.destinations.map((d: any) => d.multirestore.systemdService)).toEqual([
      'mariadb',
      undefined,
    ]);
    // Each destination loads with checkpoints and catches up from the source, into its binary log.
    expect(resolved.destinations[0].multirestore).toMatchObject({ checkpoints: true, writeBinlogs: true });
    expect(resolved.destinations[0].catchup).toMatchObject({
      operation: 'catchup',
      database: 'shop',
      source: 'mysql://root@src:3306/shop',
      sourcePasswordEnv: 'SRC_PW',
      keyRange: '-80',
      keyColumn: 'keyspace_id',
      writeBinlogs: true,
    });
    expect(resolved.cutover).toBeNull();
    expect(reshard.stopSourceReplication).toMatchObject({ operation: 'replication', action: 'stop' });
  });

  it('freezes the primary the topology store records when a cutover names none', async () => {
    const topologyUrl = `file://${await tempDir('cutover-topology')}`;
    const store = await openTopology(topologyUrl);
    await store.setShard({
      keyspace: 'shop',
      shard: '0',
      hosts: [{ id: 'i-primary', role: 'primary', healthy: true, defaultsFile: '/etc/mysql/primary.cnf' }],
    });
    const withTopology = contextFor('file:///var/tmp/unused', undefined, topologyUrl);
    const input = {
      keyspace: 'shop',
      shard: '0',
      sourceHost: 'i-src',
      sourceUri: 'mysql://root@src:3306/shop',
      database: 'shop',
      keyColumn: 'keyspace_id',
      keyType: 'uint64',
      cutover: true,
      skipDestinationBinlogs: true,
      destinations: [
        { host: 'i-a', keyRange: '-80', uri: 'mysql://root@a:3306/shop' },
        { host: 'i-b', keyRange: '80-', uri: 'mysql://root@b:3306/shop' },
      ],
    };
    const reshard = await call('validate-input', { machine: 'reshard', input }, withTopology);
    const snapshot = {
      snapshots: [
        { keyRange: '-80', dir: 'shop/0/-80', name: 's1' },
        { keyRange: '80-', dir: 'shop/0/80-', name: 's1' },
      ],
    };
    const resolved = await call(
      'resolve-targets',
      { machine: 'reshard', reshard: { ...reshard, snapshot } },
      withTopology,
    );
    expect(resolved.cutover).toMatchObject({
      host: 'i-primary',
      freeze: { operation: 'writes', defaultsFile: '/etc/mysql/primary.cnf', action: 'stop' },
      unfreeze: { operation: 'writes', action: 'start' },
      destinations: [
        { shard: '-80', host: 'i-a' },
        { shard: '80-', host: 'i-b' },
      ],
    });
    expect(resolved.destinations[0].multirestore.writeBinlogs).toBe(false);
    expect(resolved.wouldSwitch).toBeNull();
    // A rehearsal resolves the same primary but takes the path without a freeze.
    const rehearsal = await call(
      'validate-input',
      { machine: 'reshard', input: { ...input, dryRun: true } },
      withTopology,
    );
    const rehearsed = await call(
      'resolve-targets',
      { machine: 'reshard', reshard: { ...rehearsal, snapshot } },
      withTopology,
    );
    expect(rehearsed.cutover).toBeNull();
    expect(rehearsed.wouldSwitch).toEqual({
      freeze: 'i-primary',
      serving: ['-80', '80-'],
      notServing: ['0'],
    });
    // Without a topology store there is nothing to switch.
    const error = await call('validate-input', { machine: 'reshard', input }, context).catch((e: Error) => e);
    expect((error as Error).message).toContain('input.cutover: this deployment has no topology store');
  });
});

describe('resolve-targets with the topology store', () => {
  let topologyUrl: string;

  beforeAll(async () => {
    topologyUrl = `file://${await tempDir('topology')}`;
    const store = await openTopology(topologyUrl);
    const host = (id: string, role: 'primary' | 'replica' | 'rdonly', healthy = true) => ({
      id,
      role,
      healthy,
    });
    await store.setShard({
      keyspace: 'shop',
      shard: '-80',
      hosts: [
        host('i-p1', 'primary'),
        { ...host('i-r2', 'replica'), defaultsFile: '/etc/mysql/r2.cnf' },
        host('i-r1', 'replica'),
      ],
    });
    await store.setShard({
      keyspace: 'shop',
      shard: '80-',
      hosts: [
        host('i-p2', 'primary'),
        host('i-r3', 'replica'),
        { ...host('i-o1', 'rdonly'), systemdService: 'mariadb@80-.service' },
      ],
    });
    await store.setShard({
      keyspace: 'shop',
      shard: 'c0-',
      hosts: [host('i-p3', 'primary'), host('i-r4', 'replica', false)],
    });
  });

  it('picks a healthy rdonly or replica per shard, never the primary, and lists shards without one', async () => {
    const context = contextFor('s3://bucket/backups', undefined, topologyUrl);
    const plan = await call('validate-input', { machine: 'backup', input: { keyspaces: ['shop'] } }, context);
    const resolved = await call('resolve-targets', { machine: 'backup', backup: plan }, context);
    expect(resolved.targets.map((t: any) => [t.dir, t.host, t.request.defaultsFile])).toEqual([
      ['shop/-80', 'i-r1', '/etc/mysql/my.cnf'],
      ['shop/80-', 'i-o1', '/etc/mysql/my.cnf'],
    ]);
    // The host record's systemd unit goes to the agent; a host without one gets none.
    expect(resolved.targets.map((t: any) => t.request.systemdService)).toEqual([
      undefined,
      'mariadb@80-.service',
    ]);
    expect(resolved.unresolved).toEqual([
      {
        keyspace: 'shop',
        shard: 'c0-',
        error: 'NO_HEALTHY_REPLICA',
        cause: expect.stringMatching(/^shard shop\/c0- has no healthy replica .*i-r4 replica unhealthy/),
      },
    ]);
    expect(
      chooseBackupHost([{ id: 'i-r2', role: 'replica', healthy: true, defaultsFile: '/x.cnf' }]),
    ).toEqual({
      id: 'i-r2',
      role: 'replica',
      healthy: true,
      defaultsFile: '/x.cnf',
    });

    const summary = await call(
      'summarize-shards',
      {
        shards: resolved.targets.map((t: any) => ({ ...t, ok: true, backup: 'b1' })),
        unresolved: resolved.unresolved,
      },
      context,
    );
    expect(summary).toMatchObject({ ok: false, total: 3, error: 'NO_HEALTHY_REPLICA' });
    expect(summary.cause).toMatch(/^1 of 3 shard\(s\) failed: shop\/c0- on \(none\): NO_HEALTHY_REPLICA: /);
  });

  it('refuses a keyspace the topology store does not know', async () => {
    const context = contextFor('s3://bucket/backups', undefined, topologyUrl);
    const plan = await call(
      'validate-input',
      { machine: 'backup', input: { keyspaces: ['nonesuch'] } },
      context,
    );
    await expect(call('resolve-targets', { machine: 'backup', backup: plan }, context)).rejects.toMatchObject(
      {
        name: 'USAGE',
        message: expect.stringMatching(
          /^input\.keyspaces: keyspace nonesuch has no shards in the topology store/,
        ),
      },
    );
  });

  it('rebuild-vschema writes the serving vschema to every cell, and needs a topology store', async () => {
    const context = contextFor('s3://bucket/backups', undefined, topologyUrl);
    const store = await openTopology(topologyUrl);
    await store.addCell('zone1');
    await store.addCell('zone2');
    await store.setVSchema('shop', { sharded: true });
    expect(await call('rebuild-vschema', { cells: null }, context)).toEqual({
      keyspaces: ['shop'],
      cells: [
        { cell: 'zone1', ok: true },
        { cell: 'zone2', ok: true },
      ],
    });
    expect(await store.getSrvVSchema('zone2')).toEqual({ keyspaces: { shop: { sharded: true } } });
    await expect(call('rebuild-vschema', { cells: ['zone9'] }, context)).rejects.toMatchObject({
      name: 'USAGE',
      message: expect.stringMatching(/unknown cell: zone9/),
    });
    await expect(
      call('rebuild-vschema', { cells: null }, contextFor('s3://bucket/backups')),
    ).rejects.toMatchObject({ name: 'USAGE', message: expect.stringMatching(/no topology store/) });
  });
});

describe('summarize-shards and notify', () => {
  const context = contextFor('s3://bucket/backups');

  it('fails the run with the shared code and names every failed shard', async () => {
    const summary = await call(
      'summarize-shards',
      {
        shards: [
          { keyspace: 'ks', shard: '-80', host: 'i-1', ok: true, backup: 'b1' },
          {
            keyspace: 'ks',
            shard: '80-',
            host: 'i-2',
            ok: false,
            error: 'INSTANCE_BUSY',
            cause: 'held by a restore',
          },
        ],
      },
      context,
    );
    expect(summary).toMatchObject({ ok: false, error: 'INSTANCE_BUSY' });
    expect(summary.cause).toBe('1 of 2 shard(s) failed: ks/80- on i-2: INSTANCE_BUSY: held by a restore');
    const mixed = await call(
      'summarize-shards',
      {
        shards: [
          { keyspace: 'ks', shard: '-80', host: 'i-1', ok: false, error: 'USAGE', cause: 'x' },
          { keyspace: 'ks', shard: '80-', host: 'i-2', ok: false, error: 'NO_BACKUP', cause: 'y' },
        ],
      },
      context,
    );
    expect(mixed.error).toBe('SHARDS_FAILED');
  });

  it('merges the summaries of a batched run', async () => {
    const batch = (shards: any[]) => call('summarize-shards', { shards }, context);
    const first = await batch([
      { keyspace: 'ks', shard: 'a', host: 'i-1', ok: true, backup: 'b1' },
      { keyspace: 'ks', shard: 'b', host: 'i-2', ok: false, error: 'NO_BACKUP', cause: 'x' },
    ]);
    const second = await batch([{ keyspace: 'ks', shard: 'c', host: 'i-3', ok: true, backup: 'b2' }]);
    const summary = await call(
      'summarize-shards',
      {
        batches: [first, second],
        unresolved: [{ keyspace: 'ks', shard: 'd', error: 'NO_HEALTHY_REPLICA', cause: 'y' }],
      },
      context,
    );
    expect(summary).toMatchObject({ ok: false, total: 4, error: 'SHARDS_FAILED' });
    expect(summary.succeeded.map((s: any) => s.dir)).toEqual(['ks/a', 'ks/c']);
    expect(summary.cause).toBe(
      '2 of 4 shard(s) failed: ks/b on i-2: NO_BACKUP: x; ks/d on (none): NO_HEALTHY_REPLICA: y',
    );
  });

  it('keeps a shard whose prune failed among the backed-up ones, with its warning', async () => {
    const summary = await call(
      'summarize-shards',
      {
        shards: [
          {
            keyspace: 'ks',
            shard: '0',
            host: 'i-1',
            ok: true,
            backup: 'b1',
            warning: 'pruning failed, old backups are kept: States.Timeout: x',
          },
        ],
      },
      context,
    );
    expect(summary).toMatchObject({ ok: true, error: null });
    expect(summary.succeeded[0].warning).toMatch(/^pruning failed/);
    expect(summary.warnings).toEqual([
      'ks/0 on i-1: pruning failed, old backups are kept: States.Timeout: x',
    ]);
  });

  it('reads the message out of a Lambda error report and keeps the error code', async () => {
    expect(
      causeMessage('{"errorType":"NO_BACKUP","errorMessage":"no complete backup in ks/0","trace":[]}'),
    ).toBe('no complete backup in ks/0');
    const notice = await call(
      'notify',
      { machine: 'restore', execution: 'arn:x', error: { Error: 'NO_BACKUP', Cause: 'plain text' } },
      context,
    );
    expect(notice).toMatchObject({
      error: 'NO_BACKUP',
      cause: 'plain text',
      subject: 'stepback restore failed: NO_BACKUP',
    });
    expect(notice.message).toContain('Execution: arn:x');
  });
});
