import fs from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runStepback } from '../support/cli.ts';
import { tempDir } from '../support/root.ts';

describe('stepback topo and vschema rebuild', () => {
  it('builds a topology from the command line and serves its vschema in every cell', async () => {
    const dir = await tempDir('topo-cli');
    const topo = pathToFileURL(dir).href;
    for (const cell of ['zone1', 'zone2'])
      expect((await runStepback(['topo', 'add-cell', '--topo', topo, '--cell', cell])).code).toBe(0);
    const set = await runStepback([
      'topo',
      'set-shard',
      '--topo',
      topo,
      '--keyspace',
      'commerce',
      '--shard',
      '-80',
      '--host',
      'id=i-0123456789abcdef0,role=primary,cell=zone1,systemd-service=mariadb@main',
      '--host',
      'id=i-0fedcba9876543210,role=replica,cell=zone2,defaults-file=/etc/mysql/replica.cnf,healthy=false',
      '--json',
    ]);
    expect(set.code).toBe(0);
    const vschemaFile = path.join(dir, 'commerce.json');
    await fs.writeFile(vschemaFile, JSON.stringify({ sharded: true, vindexes: { hash: { type: 'hash' } } }));
    const setVSchema = await runStepback([
      'topo',
      'set-vschema',
      '--topo',
      topo,
      '--keyspace',
      'commerce',
      '--file',
      vschemaFile,
    ]);
    expect(setVSchema.code).toBe(0);
    await runStepback(['topo', 'set-shard', '--topo', topo, '--keyspace', 'lookup', '--shard', '0']);

    const rebuild = await runStepback(['vschema', 'rebuild', '--topo', topo, '--json']);
    expect(rebuild.code).toBe(0);
    expect(rebuild.json).toEqual({
      keyspaces: ['commerce', 'lookup'],
      cells: [
        { cell: 'zone1', ok: true },
        { cell: 'zone2', ok: true },
      ],
    });

    const show = await runStepback(['topo', 'show', '--topo', topo, '--json']);
    expect(show.code).toBe(0);
    expect(show.json).toEqual({
      cells: [
        { cell: 'zone1', servingVSchema: true },
        { cell: 'zone2', servingVSchema: true },
      ],
      keyspaces: [
        {
          keyspace: 'commerce',
          vschema: { sharded: true, vindexes: { hash: { type: 'hash' } } },
          shards: [
            {
              keyspace: 'commerce',
              shard: '-80',
              hosts: [
                {
                  id: 'i-0123456789abcdef0',
                  role: 'primary',
                  healthy: true,
                  cell: 'zone1',
                  systemdService: 'mariadb@main',
                },
                {
                  id: 'i-0fedcba9876543210',
                  role: 'replica',
                  healthy: false,
                  cell: 'zone2',
                  defaultsFile: '/etc/mysql/replica.cnf',
                },
              ],
              serving: true,
            },
          ],
        },
        {
          keyspace: 'lookup',
          vschema: null,
          shards: [{ keyspace: 'lookup', shard: '0', hosts: [], serving: true }],
        },
      ],
    });
    const served = JSON.parse(await fs.readFile(path.join(dir, 'cells/zone2/SrvVSchema.json'), 'utf8'));
    expect(served).toEqual({
      keyspaces: { commerce: { sharded: true, vindexes: { hash: { type: 'hash' } } }, lookup: {} },
    });
  });

  it('exits non-zero after writing the other cells when one cell fails', async () => {
    const dir = await tempDir('topo-cli');
    const topo = pathToFileURL(dir).href;
    for (const cell of ['zone1', 'zone2'])
      await runStepback(['topo', 'add-cell', '--topo', topo, '--cell', cell]);
    await fs.mkdir(path.join(dir, 'cells/zone1/SrvVSchema.json/blocked'), { recursive: true });
    const rebuild = await runStepback(['vschema', 'rebuild', '--topo', topo, '--json']);
    expect(rebuild.code).toBe(1);
    expect(rebuild.json).toMatchObject({
      keyspaces: [],
      cells: [
        { cell: 'zone1', ok: false, error: expect.stringContaining('zone1') },
        { cell: 'zone2', ok: true },
      ],
    });
    expect(rebuild.stderr).toContain('could not write the serving vschema');
  });

  it('refuses a malformed host with exit 2 naming the field', async () => {
    const topo = pathToFileURL(await tempDir('topo-cli')).href;
    const run = await runStepback([
      'topo',
      'set-shard',
      '--topo',
      topo,
      '--keyspace',
      'ks',
      '--shard',
      '0',
      '--host',
      'id=i-1,role=leader',
    ]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/role/);
  });
});
