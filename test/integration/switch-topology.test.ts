import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../core/log.ts';
import { openTopology, servingCoverage } from '../../core/topology/index.ts';
import type { FunctionSettings } from '../../functions/environment.ts';
import { type FunctionContext, invokeFunction } from '../../functions/runtime.ts';
import { switchTopology } from '../../functions/switch-topology.ts';
import { tempDir } from '../support/root.ts';

function contextFor(topologyUrl: string): FunctionContext {
  const settings: FunctionSettings = {
    storageUrl: 'file:///var/tmp/unused',
    topologyUrl,
    defaults: {
      defaultsFile: '/etc/mysql/my.cnf',
      retention: { keepCount: 2, keepDays: 3 },
      backup: { engine: 'physical', compression: 'zstd', concurrency: 4, shardsPerExecution: 400 },
    },
    region: 'us-east-1',
    hostsAreDefaultsFiles: false,
  };
  return { settings, logger: silentLogger, now: () => new Date() };
}

async function sourceTopology() {
  const url = pathToFileURL(await tempDir('switch-topology')).href;
  const store = await openTopology(url);
  await store.setShard({
    keyspace: 'shop',
    shard: '0',
    hosts: [{ id: 'i-1', role: 'primary', healthy: true }],
  });
  return { url, store };
}

const event = (overrides: object = {}) => ({
  keyspace: 'shop',
  shard: '0',
  destinations: [
    { shard: '-80', host: 'i-2', defaultsFile: '/etc/mysql/my.cnf' },
    { shard: '80-', host: 'i-3', systemdService: 'mariadb' },
  ],
  frozenAt: new Date().toISOString(),
  freezeTimeoutSeconds: 30,
  ...overrides,
});

describe('switch-topology', () => {
  it('registers the destination shards serving, with their hosts as primaries, and stops the source serving', async () => {
    const { url, store } = await sourceTopology();
    const result = await invokeFunction(switchTopology, event(), contextFor(url));
    expect(result).toMatchObject({ serving: ['-80', '80-'], notServing: ['0'] });
    const shards = Object.fromEntries((await store.listShards('shop')).map((s) => [s.shard, s]));
    expect(shards['0']).toMatchObject({ serving: false, hosts: [{ id: 'i-1' }] });
    expect(shards['-80']).toEqual({
      keyspace: 'shop',
      shard: '-80',
      serving: true,
      hosts: [{ id: 'i-2', role: 'primary', healthy: true, defaultsFile: '/etc/mysql/my.cnf' }],
    });
    expect(shards['80-']!.hosts).toEqual([
      { id: 'i-3', role: 'primary', healthy: true, systemdService: 'mariadb' },
    ]);
    expect(servingCoverage(await store.listShards('shop'))).toEqual([]);
  });

  it('switches nothing when the destinations leave part of the key range uncovered', async () => {
    const { url, store } = await sourceTopology();
    const before = await store.listShards('shop');
    const error = await invokeFunction(
      switchTopology,
      event({
        destinations: [
          { shard: '-40', host: 'i-2' },
          { shard: '80-', host: 'i-3' },
        ],
      }),
      contextFor(url),
    ).catch((e: unknown) => e as Error);
    expect((error as Error).message).toContain('no serving shard covers 40-80');
    expect(await store.listShards('shop')).toEqual(before);
  });

  it('switches nothing once writes have been frozen longer than allowed', async () => {
    const { url, store } = await sourceTopology();
    const before = await store.listShards('shop');
    const error = await invokeFunction(
      switchTopology,
      event({ frozenAt: new Date(Date.now() - 60_000).toISOString(), freezeTimeoutSeconds: 30 }),
      contextFor(url),
    ).catch((e: unknown) => e as Error);
    expect((error as Error).name).toBe('FREEZE_TIMEOUT');
    expect((error as Error).message).toMatch(/frozen 6\d\.\ds, longer than freezeTimeoutSeconds \(30\)/);
    expect(await store.listShards('shop')).toEqual(before);
  });
});

describe('servingCoverage', () => {
  const shard = (name: string, serving?: boolean) => ({
    keyspace: 'ks',
    shard: name,
    hosts: [],
    ...(serving === undefined ? {} : { serving }),
  });

  it('finds overlapping serving shards, and ignores the shards that do not serve', () => {
    expect(servingCoverage([shard('0'), shard('-80'), shard('80-')])).toEqual([
      'serving shards 0 and -80 overlap',
      'serving shards 0 and 80- overlap',
    ]);
    expect(servingCoverage([shard('-80'), shard('40-c0'), shard('c0-')])).toEqual([
      'serving shards -80 and 40-c0 overlap',
    ]);
    expect(servingCoverage([shard('0', false), shard('-80'), shard('80-')])).toEqual([]);
  });
});
