import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { deploymentDefaults, parseEnvironmentConfig } from '../../cdk/config.ts';
import { silentLogger } from '../../core/log.ts';
import type { OnlineManifest } from '../../core/manifest.ts';
import { openStorage } from '../../core/storage/index.ts';
import type { BackupStorage } from '../../core/storage/types.ts';
import { openTopology } from '../../core/topology/index.ts';
import type { FunctionSettings } from '../../functions/environment.ts';
import { functionNamed } from '../../functions/index.ts';
import { type FunctionContext, invokeFunction } from '../../functions/runtime.ts';
import { projectRoot } from '../support/cli.ts';
import { physicalManifest } from '../support/manifests.ts';
import { tempDir } from '../support/root.ts';

function contextFor(
  storageUrl: string,
  engine: 'physical' | 'online',
  topologyUrl?: string,
): FunctionContext {
  const settings: FunctionSettings = {
    storageUrl,
    topologyUrl,
    defaults: {
      defaultsFile: '/etc/mysql/my.cnf',
      retention: { keepCount: 2, keepDays: 3 },
      backup: { engine, compression: 'zstd', concurrency: 4, shardsPerExecution: 400 },
    },
    region: 'us-east-1',
    hostsAreDefaultsFiles: false,
  };
  return { settings, logger: silentLogger, now: () => new Date('2026-11-30T00:00:00Z') };
}

function call(name: string, event: unknown, context: FunctionContext): Promise<any> {
  return invokeFunction(functionNamed(name)!, event, context);
}

/** An online backup of ks/0 in two stored parts, as the engine writes one. */
async function onlineBackup(
  storage: BackupStorage,
  name: string,
  finishedAt: string,
): Promise<OnlineManifest> {
  const handle = await storage.startBackup('ks/0', name);
  const files = [];
  for (const [part, text] of ['first part', 'second'].entries()) {
    const content = Buffer.from(text);
    const partName = `stream.000${part}`;
    const stored = await handle.writeFile(partName, () => Readable.from([content]));
    files.push({
      name: partName,
      part,
      rawSize: content.length,
      storedSize: stored.size,
      sha256: stored.sha256,
    });
  }
  const {
    files: _physical,
    engine: _engine,
    ...common
  } = physicalManifest({
    name,
    dir: 'ks/0',
    keyspace: 'ks',
    shard: '0',
    finishedAt,
    position: '0-1-50',
    compression: 'none',
  });
  const manifest: OnlineManifest = {
    ...common,
    engine: 'online',
    role: 'primary',
    tool: { name: 'mariabackup', version: '10.11.19-MariaDB' },
    format: 'xbstream',
    partSize: 1024,
    files,
  };
  await handle.endBackup(manifest);
  return manifest;
}

describe('the backup functions with online backups', () => {
  let context: FunctionContext;
  let storage: BackupStorage;

  beforeAll(async () => {
    const url = `file://${await tempDir('online-functions')}`;
    context = contextFor(url, 'physical');
    storage = await openStorage(url, { region: 'us-east-1' });
    const older = await storage.startBackup('ks/0', '2026-11-20.000000.db1');
    const content = Buffer.from('ibdata');
    const stored = await older.writeFile('0000', () => Readable.from([content]));
    await older.endBackup(
      physicalManifest({
        name: '2026-11-20.000000.db1',
        dir: 'ks/0',
        keyspace: 'ks',
        shard: '0',
        finishedAt: '2026-11-20T00:10:00Z',
        files: [
          {
            name: '0000',
            base: 'innodb-data',
            path: 'ibdata1',
            rawSize: content.length,
            storedSize: stored.size,
            sha256: stored.sha256,
          },
        ],
      }),
    );
    await onlineBackup(storage, '2026-11-28.000000.db1', '2026-11-28T00:10:00Z');
  });

  it('list-backups and choose-backup take an online backup like a physical one, naming its engine', async () => {
    const listed = await call('list-backups', { dir: 'ks/0' }, context);
    expect(listed).toMatchObject({
      complete: 2,
      newest: { name: '2026-11-28.000000.db1', engine: 'online' },
      oldest: { name: '2026-11-20.000000.db1', engine: 'physical' },
    });
    const chosen = await call('choose-backup', { dir: 'ks/0' }, context);
    expect(chosen).toMatchObject({ name: '2026-11-28.000000.db1', engine: 'online', position: '0-1-50' });
  });

  it('validate-manifest checks every part of an online backup and names a missing one', async () => {
    const ok = await call(
      'validate-manifest',
      { dir: 'ks/0', name: '2026-11-28.000000.db1', deep: true },
      context,
    );
    expect(ok.backups).toEqual([
      { dir: 'ks/0', name: '2026-11-28.000000.db1', files: 2, position: '0-1-50' },
    ]);
    const manifest = await onlineBackup(storage, '2026-11-29.000000.db1', '2026-11-29T00:10:00Z');
    await storage.removeBackup('ks/0', manifest.name);
    const broken = await storage.startBackup('ks/0', manifest.name);
    await broken.endBackup(manifest);
    await expect(call('validate-manifest', { dir: 'ks/0', name: manifest.name }, context)).rejects.toThrow(
      /stream\.0000: missing/,
    );
    await storage.removeBackup('ks/0', manifest.name);
  });

  it('refuses an online manifest whose parts are out of order', async () => {
    const manifest = await onlineBackup(storage, '2026-11-29.000000.db2', '2026-11-29T00:10:00Z');
    const handle = storage.openBackup('ks/0', manifest.name);
    await storage.removeBackup('ks/0', manifest.name);
    const swapped = { ...manifest, files: [...manifest.files].reverse() };
    const rewritten = await storage.startBackup('ks/0', handle.name);
    // endBackup checks the schema too: the shape is refused before it is ever written.
    await expect(rewritten.endBackup(swapped)).rejects.toThrow(/part 1 is listed at position 0/);
    await storage.removeBackup('ks/0', manifest.name);
  });
});

describe('the Backup input with the online engine', () => {
  let topologyUrl: string;

  beforeAll(async () => {
    topologyUrl = `file://${await tempDir('online-topology')}`;
    const store = await openTopology(topologyUrl);
    await store.setShard({
      keyspace: 'shop',
      shard: '-80',
      hosts: [
        { id: 'i-p1', role: 'primary', healthy: true },
        { id: 'i-r1', role: 'replica', healthy: true },
      ],
    });
    await store.setShard({
      keyspace: 'shop',
      shard: '80-',
      hosts: [
        { id: 'i-p2', role: 'primary', healthy: true },
        { id: 'i-r2', role: 'replica', healthy: false },
      ],
    });
  });

  it('backs a shard without a healthy replica up on its primary only when the engine is online', async () => {
    const online = contextFor('s3://bucket/backups', 'online', topologyUrl);
    const plan = await call('validate-input', { machine: 'backup', input: { keyspaces: ['shop'] } }, online);
    const resolved = await call('resolve-targets', { machine: 'backup', backup: plan }, online);
    expect(resolved.targets.map((t: any) => [t.dir, t.host, t.request.engine])).toEqual([
      ['shop/-80', 'i-r1', 'online'],
      ['shop/80-', 'i-p2', 'online'],
    ]);
    expect(resolved.unresolved).toEqual([]);

    const physical = contextFor('s3://bucket/backups', 'physical', topologyUrl);
    const cold = await call(
      'resolve-targets',
      {
        machine: 'backup',
        backup: await call('validate-input', { machine: 'backup', input: { keyspaces: ['shop'] } }, physical),
      },
      physical,
    );
    expect(cold.targets.map((t: any) => t.host)).toEqual(['i-r1']);
    expect(cold.unresolved).toMatchObject([{ shard: '80-', error: 'NO_HEALTHY_REPLICA' }]);
  });

  it('takes an engine per target over the input’s and the environment’s', async () => {
    const context = contextFor('s3://bucket/backups', 'physical');
    const input = {
      targets: [
        { keyspace: 'shop', shard: '-80', host: 'i-r1' },
        { keyspace: 'billing', shard: '0', host: 'i-p9', engine: 'online' },
      ],
    };
    const plan = await call('validate-input', { machine: 'backup', input }, context);
    const resolved = await call('resolve-targets', { machine: 'backup', backup: plan }, context);
    expect(resolved.targets.map((t: any) => [t.dir, t.request.engine])).toEqual([
      ['shop/-80', 'physical'],
      ['billing/0', 'online'],
    ]);
    const online = await call(
      'validate-input',
      { machine: 'backup', input: { ...input, engine: 'online' } },
      context,
    );
    expect(online.backup.engine).toBe('online');
    await expect(
      call(
        'validate-input',
        { machine: 'backup', input: { targets: [{ ...input.targets[0], engine: 'hot' }] } },
        context,
      ),
    ).rejects.toMatchObject({ name: 'USAGE' });
  });
});

describe('cdk.json with the online engine', () => {
  it('takes the engine per environment and per target, and hands the environment’s to the Lambdas', () => {
    const cdkJson = JSON.parse(readFileSync(path.join(projectRoot, 'cdk.json'), 'utf8')) as {
      context: { environments: Record<string, Record<string, unknown>> };
    };
    const dev = cdkJson.context.environments.dev!;
    const config = parseEnvironmentConfig('dev', {
      ...dev,
      backup: {
        ...(dev.backup as object),
        engine: 'online',
        targets: [{ keyspace: 'shop', shard: '0', host: 'i-1', engine: 'physical' }],
      },
    });
    expect(config.backup.engine).toBe('online');
    expect(config.backup.targets?.[0]?.engine).toBe('physical');
    expect(deploymentDefaults(config).backup.engine).toBe('online');
    expect(() =>
      parseEnvironmentConfig('dev', { ...dev, backup: { ...(dev.backup as object), engine: 'hot' } }),
    ).toThrow(/environments\.dev\.backup\.engine/);
  });
});
