import fs from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  DeleteParametersCommand,
  GetParametersByPathCommand,
  PutParameterCommand,
} from '@aws-sdk/client-ssm';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../core/errors.ts';
import { recordingLogger, silentLogger } from '../../core/log.ts';
import {
  openTopology,
  rebuildVSchema,
  type ShardRecord,
  TopologyError,
  type TopologyStore,
} from '../../core/topology/index.ts';
import { fakeSsm } from '../support/fake-ssm.ts';
import { tempDir } from '../support/root.ts';

const shard = (keyspace: string, name: string, hosts: ShardRecord['hosts'] = []): ShardRecord => ({
  keyspace,
  shard: name,
  hosts,
});

const commerceVSchema = {
  sharded: true,
  vindexes: { hash: { type: 'hash' } },
  tables: { customer: { column_vindexes: [{ column: 'customer_id', name: 'hash' }] } },
};

async function fileStore(): Promise<{ store: TopologyStore; dir: string }> {
  const dir = await tempDir('topo');
  return { store: await openTopology(pathToFileURL(dir).href), dir };
}

const implementations: Array<[string, () => Promise<TopologyStore>]> = [
  ['file', async () => (await fileStore()).store],
  [
    'ssm',
    async () => await openTopology('ssm:/stepback/test', { ssmClient: fakeSsm({ pageSize: 3 }).client }),
  ],
];

describe.each(implementations)('%s topology store', (_name, open) => {
  it('keeps cells, shards with their hosts, and vschemas', async () => {
    const store = await open();
    await store.addCell('zone2');
    await store.addCell('zone1');
    const hosts: ShardRecord['hosts'] = [
      { id: 'i-0123456789abcdef0', role: 'primary', healthy: true, cell: 'zone1' },
      {
        id: 'i-0fedcba9876543210',
        role: 'replica',
        healthy: false,
        defaultsFile: '/etc/mysql/replica.cnf',
        cell: 'zone2',
      },
    ];
    await store.setShard(shard('commerce', '80-', hosts));
    await store.setShard(shard('commerce', '-80'));
    await store.setVSchema('commerce', commerceVSchema);
    await store.setShard(shard('lookup', '0'));

    expect(await store.listCells()).toEqual(['zone1', 'zone2']);
    expect(await store.listKeyspaces()).toEqual(['commerce', 'lookup']);
    expect((await store.listShards('commerce')).map((s) => s.shard)).toEqual(['-80', '80-']);
    expect(await store.getShard('commerce', '80-')).toEqual(shard('commerce', '80-', hosts));
    expect(await store.getShard('commerce', '40-80')).toBeUndefined();
    expect(await store.getVSchema('commerce')).toEqual(commerceVSchema);
    expect(await store.getVSchema('lookup')).toBeUndefined();
    expect(await store.listShards('nothing')).toEqual([]);
  });

  it('refuses a shard record with two primaries or a host listed twice, and writes nothing', async () => {
    const store = await open();
    const primary = { id: 'i-1', role: 'primary' as const, healthy: true };
    await expect(store.setShard(shard('ks', '0', [primary, { ...primary, id: 'i-2' }]))).rejects.toThrow(
      /more than one primary/,
    );
    await expect(store.setShard(shard('ks', '0', [primary, primary]))).rejects.toThrow(/listed twice/);
    expect(await store.getShard('ks', '0')).toBeUndefined();
  });

  it('refuses names that are not one safe segment', async () => {
    const store = await open();
    await expect(store.setShard(shard('../etc', '0'))).rejects.toThrow(TopologyError);
    await expect(store.getVSchema('a/b')).rejects.toThrow(TopologyError);
    await expect(store.addCell('..')).rejects.toThrow(TopologyError);
  });

  it('refuses a vschema that is not an object of vindexes and tables', async () => {
    const store = await open();
    await expect(store.setVSchema('ks', { vindexes: { hash: { kind: 'hash' } } })).rejects.toThrow(
      TopologyError,
    );
    await expect(store.setVSchema('ks', [1, 2])).rejects.toThrow(TopologyError);
  });

  it('keeps a serving vschema larger than one SSM parameter', async () => {
    const store = await open();
    await store.addCell('zone1');
    const tables = Object.fromEntries(
      Array.from({ length: 400 }, (_, i) => [
        `table_${i}_ü`,
        { column_vindexes: [{ column: 'id', name: 'hash' }] },
      ]),
    );
    const srv = { keyspaces: { commerce: { ...commerceVSchema, tables } } };
    expect(JSON.stringify(srv).length).toBeGreaterThan(3 * 4096);
    await store.setSrvVSchema('zone1', srv);
    expect(await store.getSrvVSchema('zone1')).toEqual(srv);
    await store.setSrvVSchema('zone1', { keyspaces: {} });
    expect(await store.getSrvVSchema('zone1')).toEqual({ keyspaces: {} });
  });
});

describe('file topology store', () => {
  it('refuses a record whose file was edited into something else', async () => {
    const { store, dir } = await fileStore();
    await store.setShard(shard('commerce', '-80'));
    const file = path.join(dir, 'keyspaces/commerce/shards/-80/Shard.json');
    await fs.writeFile(file, JSON.stringify(shard('commerce', '80-')));
    await expect(store.getShard('commerce', '-80')).rejects.toThrow(
      /describes commerce\/80-, not commerce\/-80/,
    );
    await fs.writeFile(file, '{"keyspace": "commerce", ');
    await expect(store.listShards('commerce')).rejects.toThrow(/is not JSON/);
    await fs.writeFile(
      file,
      JSON.stringify({ ...shard('commerce', '-80'), hosts: [{ id: 'i-1', role: 'leader' }] }),
    );
    await expect(store.getShard('commerce', '-80')).rejects.toThrow(TopologyError);
  });

  it('lays records out the way docs/cli.md describes', async () => {
    const { store, dir } = await fileStore();
    await store.addCell('zone1');
    await store.setShard(shard('commerce', '-80'));
    await store.setVSchema('commerce', {});
    await store.setSrvVSchema('zone1', { keyspaces: { commerce: {} } });
    const files = (await fs.readdir(dir, { recursive: true })).filter((f) => f.endsWith('.json')).sort();
    expect(files).toEqual([
      'cells/zone1/CellInfo.json',
      'cells/zone1/SrvVSchema.json',
      'keyspaces/commerce/VSchema.json',
      'keyspaces/commerce/shards/-80/Shard.json',
    ]);
  });
});

describe('SSM topology store', () => {
  it('writes String parameters in the standard tier under the prefix', async () => {
    const ssm = fakeSsm();
    const store = await openTopology('ssm:/stepback/prod/', { ssmClient: ssm.client });
    await store.setShard(shard('commerce', '-80', [{ id: 'i-1', role: 'primary', healthy: true }]));
    const puts = ssm.mock.commandCalls(PutParameterCommand).map((call) => call.args[0].input);
    expect(puts).toEqual([
      {
        Name: '/stepback/prod/keyspaces/commerce/shards/-80/Shard',
        Value: JSON.stringify(shard('commerce', '-80', [{ id: 'i-1', role: 'primary', healthy: true }])),
        Type: 'String',
        Tier: 'Standard',
        DataType: 'text',
        Overwrite: true,
      },
    ]);
  });

  it('follows NextToken through every page of GetParametersByPath', async () => {
    const ssm = fakeSsm({ pageSize: 2 });
    const store = await openTopology('ssm:/st', { ssmClient: ssm.client });
    for (let i = 0; i < 7; i++) await store.setShard(shard('ks', `shard${i}`));
    ssm.mock.resetHistory();
    ssm.pathRequests.length = 0;
    expect((await store.listShards('ks')).map((s) => s.shard)).toEqual(
      Array.from({ length: 7 }, (_, i) => `shard${i}`),
    );
    const calls = ssm.pathRequests;
    expect(ssm.mock.commandCalls(GetParametersByPathCommand)).toHaveLength(4);
    expect(calls).toHaveLength(4);
    expect(calls[0]).toMatchObject({
      Path: '/st/keyspaces/ks/shards',
      Recursive: true,
      WithDecryption: false,
      MaxResults: 10,
    });
    expect(calls.slice(1).map((c) => c.NextToken)).toEqual(['2', '4', '6']);
  });

  it('splits a large value into parts with a hash-checked header and deletes replaced parts', async () => {
    const ssm = fakeSsm();
    const store = await openTopology('ssm:/st', { ssmClient: ssm.client });
    const big = {
      sharded: true,
      tables: Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`t${i}`, {}])),
    };
    await store.setVSchema('ks', big);
    const header = ssm.parameters.get('/st/keyspaces/ks/VSchema')!;
    const count = Math.ceil(JSON.stringify(big).length / 4096);
    expect(count).toBeGreaterThan(1);
    expect(header).toMatch(new RegExp(`^stepback-split v1 [0-9a-f]{16} ${count} [0-9a-f]{64}$`));
    const parts = [...ssm.parameters.keys()].filter((name) =>
      name.startsWith('/st/keyspaces/ks/VSchema.split/'),
    );
    expect(parts).toHaveLength(count);
    expect(await store.getVSchema('ks')).toEqual(big);

    await store.setVSchema('ks', { sharded: false });
    expect([...ssm.parameters.keys()]).toEqual(['/st/keyspaces/ks/VSchema']);
    expect(ssm.mock.commandCalls(DeleteParametersCommand)[0]!.args[0].input.Names).toEqual(parts);
    expect(await store.listKeyspaces()).toEqual(['ks']);
  });

  it('refuses a split value whose parts do not match its hash', async () => {
    const ssm = fakeSsm();
    const store = await openTopology('ssm:/st', { ssmClient: ssm.client });
    await store.setVSchema('ks', {
      tables: Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`t${i}`, {}])),
    });
    const part = [...ssm.parameters.keys()].find((name) => name.endsWith('/00001'))!;
    ssm.parameters.set(part, `${ssm.parameters.get(part)!.slice(0, -1)}x`);
    await expect(store.getVSchema('ks')).rejects.toThrow(/do not match its hash/);
  });

  it('refuses a prefix SSM reserves or that is not a path', async () => {
    for (const url of ['ssm:/aws/x', 'ssm:/SSM', 'ssm:relative', 'ssm:/', 'ssm:/a b']) {
      await expect(openTopology(url)).rejects.toThrow(UsageError);
    }
  });
});

describe('rebuildVSchema', () => {
  it('serves every keyspace in every cell, an empty vschema for a keyspace without one', async () => {
    const { store } = await fileStore();
    await store.addCell('zone1');
    await store.addCell('zone2');
    await store.setVSchema('commerce', commerceVSchema);
    await store.setShard(shard('customer', '-80'));
    const logger = recordingLogger();
    const result = await rebuildVSchema(store, { logger });
    expect(result).toEqual({
      keyspaces: ['commerce', 'customer'],
      cells: [
        { cell: 'zone1', ok: true },
        { cell: 'zone2', ok: true },
      ],
    });
    const expected = { keyspaces: { commerce: commerceVSchema, customer: {} } };
    expect(await store.getSrvVSchema('zone1')).toEqual(expected);
    expect(await store.getSrvVSchema('zone2')).toEqual(expected);
    expect(
      logger.records.some((r) => r.message.includes('no vschema') && r.fields?.keyspace === 'customer'),
    ).toBe(true);
  });

  it('writes only the cells asked for, and refuses an unknown one', async () => {
    const { store } = await fileStore();
    await store.addCell('zone1');
    await store.addCell('zone2');
    await store.setVSchema('commerce', {});
    expect((await rebuildVSchema(store, { cells: ['zone2'], logger: silentLogger })).cells).toEqual([
      { cell: 'zone2', ok: true },
    ]);
    expect(await store.getSrvVSchema('zone1')).toBeUndefined();
    await expect(rebuildVSchema(store, { cells: ['zone3'], logger: silentLogger })).rejects.toThrow(
      /unknown cell: zone3/,
    );
  });

  it('reports a cell whose write fails and still writes the others', async () => {
    const { store, dir } = await fileStore();
    for (const cell of ['zone1', 'zone2', 'zone3']) await store.addCell(cell);
    await store.setVSchema('commerce', commerceVSchema);
    // A directory where the record should be: the rename onto it fails.
    await fs.mkdir(path.join(dir, 'cells/zone2/SrvVSchema.json/x'), { recursive: true });
    const result = await rebuildVSchema(store, { logger: silentLogger });
    expect(result.cells.map(({ cell, ok }) => ({ cell, ok }))).toEqual([
      { cell: 'zone1', ok: true },
      { cell: 'zone2', ok: false },
      { cell: 'zone3', ok: true },
    ]);
    expect(result.cells[1]!.error).toMatch(/cannot write .*zone2/);
    expect(await store.getSrvVSchema('zone3')).toEqual({ keyspaces: { commerce: commerceVSchema } });
  });

  it('reports a refused SSM write per cell', async () => {
    const ssm = fakeSsm();
    const store = await openTopology('ssm:/st', { ssmClient: ssm.client });
    await store.addCell('zone1');
    await store.addCell('zone2');
    ssm.failingPuts.add('/st/cells/zone1/SrvVSchema');
    const result = await rebuildVSchema(store, { logger: silentLogger });
    expect(result.cells[0]).toMatchObject({
      cell: 'zone1',
      ok: false,
      error: expect.stringMatching(/not authorized/),
    });
    expect(result.cells[1]).toEqual({ cell: 'zone2', ok: true });
    expect(ssm.parameters.get('/st/cells/zone2/SrvVSchema')).toBe('{"keyspaces":{}}');
  });

  it('writes nothing when a keyspace vschema cannot be read', async () => {
    const { store, dir } = await fileStore();
    await store.addCell('zone1');
    await store.setVSchema('broken', {});
    await fs.writeFile(path.join(dir, 'keyspaces/broken/VSchema.json'), 'not json');
    await expect(rebuildVSchema(store, { logger: silentLogger })).rejects.toThrow(TopologyError);
    expect(await store.getSrvVSchema('zone1')).toBeUndefined();
  });
});
