import { z } from 'zod';
import { KeyRangeText } from '../core/manifest.ts';
import { EnvVarName as EnvVar } from '../core/operations/fields.ts';
import { ReplicationSource } from '../core/operations/restore.ts';
import { BackupName, quoted, Segment } from '../core/paths.ts';
import { SNAPSHOT_NAMESPACE } from '../core/storage/layout.ts';
import { SystemdService } from '../core/systemd.ts';

/**
 * The execution inputs of the three state machines, as an operator types them in the console or
 * the schedule sends them. Unknown fields are refused (a typo must not be silently ignored).
 */

/** An EC2 instance id in AWS; locally the path of the instance's defaults-file. */
const Host = z.string().min(1).max(4096);
const DefaultsFile = z.string().min(1).max(4096);
const Name = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be letters, digits, "_", "." or "-"');
const MysqlUri = z
  .string()
  .regex(/^mysql:\/\/[^\s:@/]*@\S+$/, 'must be mysql://user@host:port/db (no password)');

/** A keyspace with physical backups: `snapshots` is the storage namespace of logical snapshots. */
const Keyspace = Segment.refine((name) => name !== SNAPSHOT_NAMESPACE, {
  message: `"${SNAPSHOT_NAMESPACE}" is where snapshots are stored, not a keyspace name backups can use`,
});

export const BackupTarget = z.strictObject({
  keyspace: Keyspace,
  shard: Segment,
  host: Host,
  defaultsFile: DefaultsFile.optional(),
  /** mysqld's systemd unit on the host; default: the topology record's, then cdk.json agent.systemdService. */
  systemdService: SystemdService.optional(),
  /** How this shard is backed up; default: the input's engine, then cdk.json backup.engine. */
  engine: z.enum(['physical', 'online']).optional(),
});
export type BackupTarget = z.infer<typeof BackupTarget>;

export const BackupInput = z
  .strictObject({
    /** Shards and the host to back each up on. */
    targets: z.array(BackupTarget).min(1).max(1000).optional(),
    /** Keyspaces whose shards come from the topology store (a healthy replica each). */
    keyspaces: z.array(Segment).min(1).max(100).optional(),
    retention: z
      .strictObject({
        keepCount: z.number().int().min(1).max(10_000),
        keepDays: z.number().min(0).max(36_500),
      })
      .optional(),
    engine: z.enum(['physical', 'online']).optional(),
    compression: z.enum(['zstd', 'gzip', 'none']).optional(),
    concurrency: z.number().int().min(1).max(64).optional(),
  })
  .refine((input) => input.targets !== undefined || input.keyspaces !== undefined, {
    message: 'give targets (keyspace, shard, host) or keyspaces',
    path: ['targets'],
  });
export type BackupInput = z.infer<typeof BackupInput>;

export const RestoreInput = z
  .strictObject({
    keyspace: Keyspace,
    shard: Segment,
    /** The instance to restore into. */
    host: Host,
    defaultsFile: DefaultsFile.optional(),
    systemdService: SystemdService.optional(),
    /** A backup name, or "latest" (the default) for the newest complete one. */
    backup: z.union([z.literal('latest'), BackupName]).default('latest'),
    /** The newest complete backup that finished at or before this time (ISO 8601). */
    atOrBefore: z.iso.datetime({ offset: true }).optional(),
    deleteBeforeRestore: z.boolean().default(false),
    replicateFrom: ReplicationSource.optional(),
    localMetadata: z.record(Name, z.string().max(1024)).optional(),
  })
  .refine((input) => input.backup === 'latest' || input.atOrBefore === undefined, {
    message: 'give either a backup name or atOrBefore, not both',
    path: ['atOrBefore'],
  });
export type RestoreInput = z.infer<typeof RestoreInput>;

export const ReshardDestination = z.strictObject({
  host: Host,
  defaultsFile: DefaultsFile.optional(),
  systemdService: SystemdService.optional(),
  /** The key range this destination serves (key-range mode). */
  keyRange: KeyRangeText.optional(),
  /** The destination database for the diff (`mysql://user@host:port/db`). */
  uri: MysqlUri,
  passwordEnv: EnvVar.optional(),
});

export const ReshardInput = z
  .strictObject({
    keyspace: Segment,
    /** The source shard, snapshotted on `sourceHost`. */
    shard: Segment,
    sourceHost: Host,
    sourceDefaultsFile: DefaultsFile.optional(),
    sourceSystemdService: SystemdService.optional(),
    /** The source database for the diff. */
    sourceUri: MysqlUri,
    sourcePasswordEnv: EnvVar.optional(),
    database: Name,
    /** Key-range mode: the column holding the keyspace id, and its type. */
    keyColumn: Name.optional(),
    keyType: z.enum(['uint64', 'bytes']).optional(),
    /** Table mode: the tables to move (all tables when omitted in key-range mode). */
    tables: z.array(Name).min(1).optional(),
    excludeTables: z.array(Name).min(1).optional(),
    destinations: z.array(ReshardDestination).min(1).max(256),
    maxFileSize: z
      .string()
      .regex(/^\d+(B|KiB|MiB|GiB)?$/, 'must be a size such as 64MiB')
      .optional(),
    concurrency: z.number().int().min(1).max(64).optional(),
    /** Cells whose serving vschema is rebuilt afterwards (default: every cell of the topology store). */
    cells: z.array(Segment).min(1).max(100).optional(),
  })
  .superRefine((input, ctx) => {
    const keyMode = input.keyColumn !== undefined;
    if (keyMode && input.keyType === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['keyType'],
        message: 'keyColumn needs keyType (uint64 or bytes)',
      });
    }
    if (!keyMode && input.tables === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['keyColumn'],
        message: 'give keyColumn and keyType (split by key range) or tables (move tables)',
      });
    }
    input.destinations.forEach((destination, index) => {
      if (keyMode && destination.keyRange === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['destinations', index, 'keyRange'],
          message: 'each destination needs a keyRange when splitting by keyColumn',
        });
      }
    });
  });
export type ReshardInput = z.infer<typeof ReshardInput>;

export const DrillInput = z.strictObject({
  /** The drill host: an instance kept for drills (never one the topology lists as serving). */
  host: Host,
  defaultsFile: DefaultsFile.optional(),
  systemdService: SystemdService.optional(),
  /** Only these keyspaces (default: every keyspace with backups). */
  keyspaces: z.array(Keyspace).min(1).max(100).optional(),
  /** Days a passing drill stays good (default: cdk.json drill.maxAgeDays, else 8). */
  maxAgeDays: z.number().positive().max(3650).optional(),
});
export type DrillInput = z.infer<typeof DrillInput>;

export const machineInputs = {
  backup: BackupInput,
  restore: RestoreInput,
  reshard: ReshardInput,
  drill: DrillInput,
} as const;
export type MachineName = keyof typeof machineInputs;

/**
 * `targets[0].host` from a zod issue path; a key that is not a plain name is quoted and cut
 * (`localMetadata[""]`), so a hostile key can neither hide the field nor make a huge message.
 */
export function fieldName(path: PropertyKey[]): string {
  return path.reduce<string>((name, key) => {
    if (typeof key === 'number') return `${name}[${key}]`;
    const text = String(key);
    if (!/^[A-Za-z_$][\w$-]{0,63}$/.test(text)) return `${name}[${quoted(text)}]`;
    return name ? `${name}.${text}` : text;
  }, '');
}

/** `input.targets[0].host: <message>` for the first issue, the message cut to 300 characters (zod quotes unknown keys whole). */
export function describeIssue(prefix: string, issue: z.core.$ZodIssue | undefined): string {
  const message = issue?.message ?? 'invalid';
  return `${fieldName([prefix, ...(issue?.path ?? [])])}: ${message.length > 300 ? `${message.slice(0, 300)}…` : message}`;
}
