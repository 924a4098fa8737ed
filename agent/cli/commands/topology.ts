import fs from 'node:fs/promises';
import type { Command } from 'commander';
import { z } from 'zod';
import { ExitCode, UsageError } from '../../../core/errors.ts';
import type { Logger } from '../../../core/log.ts';
import {
  type HostRecord,
  HostRecordSchema,
  openTopology,
  type RebuildVSchemaResult,
  rebuildVSchema,
  type ShardRecord,
  type TopologyStore,
} from '../../../core/topology/index.ts';
import { renderTable } from '../../report/format.ts';
import type { ActionRunner } from '../command.ts';

const TopoOptions = z.object({ topo: z.string().min(1) });

function addTopoOption(command: Command): Command {
  return command.requiredOption('--topo <url>', 'topology store: file:///abs/dir or ssm:/prefix');
}

/** Opens the store for one command and closes its SSM client afterwards. */
async function withTopology<T>(url: string, logger: Logger, work: (store: TopologyStore) => Promise<T>) {
  const store = await openTopology(url, { logger });
  try {
    return await work(store);
  } finally {
    (store as { close?: () => void }).close?.();
  }
}

/**
 * `id=i-0abc,role=primary,cell=zone1,defaults-file=/etc/mysql/my.cnf,healthy=false` → a host
 * record (healthy unless said otherwise).
 */
export function parseHostSpec(spec: string): HostRecord {
  const fields: Record<string, unknown> = { healthy: true };
  const names: Record<string, string> = {
    id: 'id',
    role: 'role',
    cell: 'cell',
    'defaults-file': 'defaultsFile',
    'systemd-service': 'systemdService',
  };
  for (const part of spec.split(',')) {
    const at = part.indexOf('=');
    const key = part.slice(0, at).trim();
    const value = part.slice(at + 1).trim();
    if (at < 0 || !value) throw new UsageError(`--host ${spec}: "${part}" is not key=value`);
    if (key === 'healthy') {
      if (!/^(true|false)$/.test(value))
        throw new UsageError(`--host ${spec}: healthy must be true or false`);
      fields.healthy = value === 'true';
    } else if (names[key]) {
      fields[names[key]] = value;
    } else {
      throw new UsageError(`--host ${spec}: unknown field ${key}`, {
        hint: 'fields are id, role (primary, replica, rdonly), cell, defaults-file, systemd-service and healthy',
      });
    }
  }
  const parsed = HostRecordSchema.safeParse(fields);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UsageError(
      `--host ${spec}: ${issue?.path.join('.') || 'host'} ${issue?.message ?? 'is invalid'}`,
    );
  }
  return parsed.data;
}

export interface TopologyShow {
  cells: Array<{ cell: string; servingVSchema: boolean }>;
  keyspaces: Array<{ keyspace: string; vschema: unknown; shards: ShardRecord[] }>;
}

export function renderTopology(show: TopologyShow): string {
  const lines = [
    `cells: ${show.cells.map((c) => `${c.cell}${c.servingVSchema ? '' : ' (no serving vschema)'}`).join(', ') || '(none)'}`,
  ];
  if (show.keyspaces.length === 0) return [...lines, 'no keyspaces'].join('\n');
  const rows: string[][] = [];
  for (const keyspace of show.keyspaces) {
    if (keyspace.shards.length === 0) rows.push([keyspace.keyspace, '-', '-', '-', '-', '-']);
    for (const shard of keyspace.shards) {
      const name = shard.serving === false ? `${shard.shard} (not serving)` : shard.shard;
      if (shard.hosts.length === 0) rows.push([keyspace.keyspace, name, '-', '-', '-', '-']);
      for (const host of shard.hosts) {
        rows.push([
          keyspace.keyspace,
          name,
          host.id,
          host.role,
          host.cell ?? '-',
          host.healthy ? 'healthy' : 'unhealthy',
        ]);
      }
    }
  }
  const vschemas = show.keyspaces.map(
    (k) => `${k.keyspace}: ${k.vschema === null ? 'no vschema' : `vschema ${JSON.stringify(k.vschema)}`}`,
  );
  return [
    ...lines,
    renderTable(['KEYSPACE', 'SHARD', 'HOST', 'ROLE', 'CELL', 'STATE'], rows),
    ...vschemas,
  ].join('\n');
}

export function renderRebuild(result: RebuildVSchemaResult): string {
  return [
    `serving vschema of ${result.keyspaces.length} keyspace(s): ${result.keyspaces.join(', ') || '(none)'}`,
    ...result.cells.map((c) => (c.ok ? `${c.cell}: written` : `${c.cell}: FAILED: ${c.error}`)),
  ].join('\n');
}

export function registerTopology(program: Command, action: ActionRunner): Command {
  const topo = program.command('topo').description('inspect and edit the keyspace topology');

  const show = addTopoOption(
    topo
      .command('show')
      .description('cells, keyspaces, shards with their hosts, and vschemas')
      .option('--keyspace <name>', 'only this keyspace'),
  );
  action(show, TopoOptions.extend({ keyspace: z.string().optional() }), async (options, context) =>
    withTopology(options.topo, context.logger, async (store) => {
      const cells = await store.listCells();
      const keyspaces = options.keyspace ? [options.keyspace] : await store.listKeyspaces();
      const result: TopologyShow = { cells: [], keyspaces: [] };
      for (const cell of cells)
        result.cells.push({ cell, servingVSchema: (await store.getSrvVSchema(cell)) !== undefined });
      for (const keyspace of keyspaces) {
        result.keyspaces.push({
          keyspace,
          vschema: (await store.getVSchema(keyspace)) ?? null,
          // Records written before resharding switched anything have no `serving`: they serve.
          shards: (await store.listShards(keyspace)).map((shard) => ({
            ...shard,
            serving: shard.serving !== false,
          })),
        });
      }
      return { result, summary: renderTopology(result) };
    }),
  );

  const addCell = addTopoOption(
    topo.command('add-cell').description('add a cell (an availability zone or region that serves queries)'),
  ).requiredOption('--cell <name>', 'cell name, e.g. zone1');
  action(addCell, TopoOptions.extend({ cell: z.string() }), async (options, context) =>
    withTopology(options.topo, context.logger, async (store) => {
      await store.addCell(options.cell);
      return { result: { cell: options.cell }, summary: `cell ${options.cell} added` };
    }),
  );

  const setShard = addTopoOption(
    topo
      .command('set-shard')
      .description('create or replace a shard and the hosts that serve it')
      .requiredOption('--keyspace <name>', 'keyspace, e.g. commerce')
      .requiredOption('--shard <name>', 'shard, e.g. -80 or 0')
      .option(
        '--host <spec>',
        'a host, repeatable: id=i-0abc,role=primary|replica|rdonly[,cell=zone1][,defaults-file=/etc/mysql/my.cnf][,systemd-service=mariadb][,healthy=false]',
        (value: string, previous: string[] = []) => [...previous, value],
      ),
  );
  action(
    setShard,
    TopoOptions.extend({ keyspace: z.string(), shard: z.string(), host: z.array(z.string()).default([]) }),
    async (options, context) =>
      withTopology(options.topo, context.logger, async (store) => {
        const record: ShardRecord = {
          keyspace: options.keyspace,
          shard: options.shard,
          hosts: options.host.map(parseHostSpec),
        };
        await store.setShard(record);
        return {
          result: record,
          summary: `shard ${record.keyspace}/${record.shard} set with ${record.hosts.length} host(s)`,
        };
      }),
  );

  const setVSchema = addTopoOption(
    topo
      .command('set-vschema')
      .description("set a keyspace's vschema (Vitess JSON: sharded, vindexes, tables)")
      .requiredOption('--keyspace <name>', 'keyspace, e.g. commerce')
      .option('--file <path>', 'read the vschema from this JSON file')
      .option('--vschema <json>', 'the vschema as JSON text'),
  );
  action(
    setVSchema,
    TopoOptions.extend({ keyspace: z.string(), file: z.string().optional(), vschema: z.string().optional() }),
    async (options, context) => {
      if ((options.file === undefined) === (options.vschema === undefined))
        throw new UsageError('give exactly one of --file and --vschema');
      const text = options.file === undefined ? options.vschema! : await readVSchemaFile(options.file);
      let vschema: unknown;
      try {
        vschema = JSON.parse(text);
      } catch (error) {
        throw new UsageError(`the vschema is not JSON: ${(error as Error).message}`, { cause: error });
      }
      return withTopology(options.topo, context.logger, async (store) => {
        await store.setVSchema(options.keyspace, vschema);
        return {
          result: { keyspace: options.keyspace, vschema },
          summary: `vschema of ${options.keyspace} set`,
        };
      });
    },
  );
  return topo;
}

async function readVSchemaFile(file: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(`--file: cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
}

export function registerVSchema(program: Command, action: ActionRunner): Command {
  const vschema = program.command('vschema').description('the serving vschema the query routers read');
  const rebuild = addTopoOption(
    vschema
      .command('rebuild')
      .description("build the serving vschema from every keyspace's vschema and write it to the cells")
      .option('--cells <list>', 'comma-separated cells to write (default: every known cell)'),
  );
  action(rebuild, TopoOptions.extend({ cells: z.string().optional() }), async (options, context) =>
    withTopology(options.topo, context.logger, async (store) => {
      const cells = options.cells
        ?.split(',')
        .map((cell) => cell.trim())
        .filter(Boolean);
      const result = await rebuildVSchema(store, { ...(cells ? { cells } : {}), logger: context.logger });
      return {
        result,
        summary: renderRebuild(result),
        ...(result.cells.some((cell) => !cell.ok) ? { exitCode: ExitCode.failure } : {}),
      };
    }),
  );
  return vschema;
}
