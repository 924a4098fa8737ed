import { z } from 'zod';
import { VerificationError } from '../errors.ts';
import { isSafeSegment } from '../paths.ts';
import { SystemdService } from '../systemd.ts';

/**
 * The topology of one environment: its cells, keyspaces, the shards of each keyspace with the hosts
 * that serve them, each keyspace's vschema, and the serving vschema built for each cell.
 */

export interface HostRecord {
  /** The EC2 instance id, or locally any name for the instance. */
  id: string;
  role: 'primary' | 'replica' | 'rdonly';
  healthy: boolean;
  /** the instance's my.cnf on that host (default /etc/mysql/my.cnf) */
  defaultsFile?: string;
  /** mysqld's systemd unit on that host (default: the deployment's, or none) */
  systemdService?: string;
  cell?: string;
}

export interface ShardRecord {
  keyspace: string;
  shard: string;
  hosts: HostRecord[];
  /** Whether queries are routed to it; absent means serving (records written before resharding switched). */
  serving?: boolean;
}

export interface TopologyStore {
  listCells(): Promise<string[]>;
  addCell(cell: string): Promise<void>;
  listKeyspaces(): Promise<string[]>;
  listShards(keyspace: string): Promise<ShardRecord[]>;
  getShard(keyspace: string, shard: string): Promise<ShardRecord | undefined>;
  setShard(record: ShardRecord): Promise<void>;
  getVSchema(keyspace: string): Promise<unknown | undefined>;
  setVSchema(keyspace: string, vschema: unknown): Promise<void>;
  getSrvVSchema(cell: string): Promise<unknown | undefined>;
  setSrvVSchema(cell: string, srvVSchema: unknown): Promise<void>;
}

/** A topology record that is missing a field, not JSON, or names something it should not. */
export class TopologyError extends VerificationError {
  override readonly code = 'INVALID_TOPOLOGY';
}

/** A keyspace, shard or cell name: one safe path segment (`commerce`, `-80`, `zone1`). */
export const TopologyName = z.string().refine(isSafeSegment, {
  message: 'must be 1 to 128 letters, digits, "_", "." or "-" (and not "." or "..")',
});

/** The instance id is passed to SSM Run Command; locally it is a name. */
const HostId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/, 'must be an instance id like i-0123456789abcdef0');

/** An absolute path on the host, passed to mysqld as --defaults-file. */
const DefaultsFile = z
  .string()
  .max(4096)
  .refine((value) => value.startsWith('/') && !/[\0\n\r]/.test(value) && !value.split('/').includes('..'), {
    message: 'must be an absolute path without ".." segments',
  });

export const HostRecordSchema = z.strictObject({
  id: HostId,
  role: z.enum(['primary', 'replica', 'rdonly']),
  healthy: z.boolean(),
  defaultsFile: DefaultsFile.optional(),
  systemdService: SystemdService.optional(),
  cell: TopologyName.optional(),
});

export const ShardRecordSchema = z
  .strictObject({
    keyspace: TopologyName,
    shard: TopologyName,
    hosts: z.array(HostRecordSchema).max(256),
    serving: z.boolean().optional(),
  })
  .superRefine((record, ctx) => {
    const ids = new Set<string>();
    for (const host of record.hosts) {
      if (ids.has(host.id)) ctx.addIssue({ code: 'custom', message: `host ${host.id} is listed twice` });
      ids.add(host.id);
    }
    const primaries = record.hosts.filter((host) => host.role === 'primary').map((host) => host.id);
    if (primaries.length > 1)
      ctx.addIssue({ code: 'custom', message: `more than one primary: ${primaries.join(', ')}` });
  });

/**
 * A keyspace's vschema (Vitess's JSON form): whether it is sharded, its vindexes and its tables.
 * Fields stepback does not interpret are kept as they are.
 */
export const VSchemaSchema = z.looseObject({
  sharded: z.boolean().optional(),
  vindexes: z.record(z.string(), z.looseObject({ type: z.string() })).optional(),
  tables: z.record(z.string(), z.looseObject({})).optional(),
});
export type VSchema = z.infer<typeof VSchemaSchema>;

/** The serving vschema of a cell: every keyspace's vschema, by keyspace name. */
export const SrvVSchemaSchema = z.strictObject({
  keyspaces: z.record(TopologyName, VSchemaSchema),
});
export type SrvVSchema = z.infer<typeof SrvVSchemaSchema>;

const CellInfoSchema = z.strictObject({ name: TopologyName });

/** Validates a name given to the store; a bad one is the caller's mistake, not stored data. */
export function checkName(kind: 'cell' | 'keyspace' | 'shard', name: string): string {
  if (!isSafeSegment(name)) {
    throw new TopologyError(`${kind} name ${JSON.stringify(name)} is not valid`, {
      hint: 'use 1 to 128 letters, digits, "_", "." or "-"',
    });
  }
  return name;
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((issue) => (issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message))
    .join('; ');
}

/** Parses stored text as `schema`, naming where it came from when it does not check out. */
export function parseRecord<S extends z.ZodType>(schema: S, text: string, where: string): z.infer<S> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new TopologyError(`${where} is not JSON`, {
      cause: error,
      hint: 'rewrite the record with stepback topo set-shard or set-vschema',
    });
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new TopologyError(`${where} is not a valid record: ${describeIssues(parsed.error)}`, {
      hint: 'rewrite the record with stepback topo set-shard or set-vschema',
    });
  }
  return parsed.data;
}

/** Validates a record before it is written, so the store never holds what it would refuse to read. */
export function validateRecord<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new TopologyError(`${what} is not valid: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

/** A shard record read back must be the one its location names. */
export function parseShardRecord(text: string, keyspace: string, shard: string, where: string): ShardRecord {
  const record = parseRecord(ShardRecordSchema, text, where);
  if (record.keyspace !== keyspace || record.shard !== shard) {
    throw new TopologyError(
      `${where} describes ${record.keyspace}/${record.shard}, not ${keyspace}/${shard}`,
      { hint: `rewrite it with stepback topo set-shard --keyspace ${keyspace} --shard ${shard}` },
    );
  }
  return record;
}

export function parseCellInfo(text: string, cell: string, where: string): void {
  const info = parseRecord(CellInfoSchema, text, where);
  if (info.name !== cell) throw new TopologyError(`${where} names cell ${info.name}, not ${cell}`);
}

export function cellInfoText(cell: string): string {
  return JSON.stringify({ name: cell });
}

/**
 * JSON with every non-ASCII character escaped: the same value, and its length in characters is its
 * size in bytes (what SSM limits).
 */
export function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[\u007f-\uffff]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
