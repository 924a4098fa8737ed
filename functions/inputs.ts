import { z } from 'zod';
import { KeyRangeText } from '../core/manifest.ts';
import { Seconds } from '../core/operations/binlog-archive.ts';
import { EnvVarName as EnvVar } from '../core/operations/fields.ts';
import { ReplicationSource, SingleGtid } from '../core/operations/restore.ts';
import { BackupName, quoted, Segment } from '../core/paths.ts';
import { BINLOG_NAMESPACE, SNAPSHOT_NAMESPACE } from '../core/storage/layout.ts';
import { SystemdService } from '../core/systemd.ts';

/**
 * The execution inputs of the state machines, as an operator types them in the console or
 * the schedule sends them. Unknown fields are refused (a typo must not be silently ignored).
 */

/** An EC2 instance id in AWS; locally the path of the instance's defaults-file. */
const Host = z.string().min(1).max(4096);
const DefaultsFile = z.string().min(1).max(4096);
const Name = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be letters, digits, "_", "." or "-"');
const MysqlUri = z
  .string()
  .regex(/^mysql:\/\/[^\s:@/]*@\S+$/, 'must be mysql://user@host:port/db (no password)');

/**
 * A keyspace with physical backups: `snapshots` and `binlogs` are the storage namespaces of logical
 * snapshots and archived binary logs.
 */
const Keyspace = Segment.refine((name) => name !== SNAPSHOT_NAMESPACE, {
  message: `"${SNAPSHOT_NAMESPACE}" is where snapshots are stored, not a keyspace name backups can use`,
}).refine((name) => name !== BINLOG_NAMESPACE, {
  message: `"${BINLOG_NAMESPACE}" is where binary logs are archived, not a keyspace name backups can use`,
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
    /**
     * Restore to this moment (ISO 8601): the newest backup finished at or before it, then the
     * archived binary logs up to the last transaction committed at or before it.
     */
    toTime: z.iso.datetime({ offset: true }).optional(),
    /** Restore up to and including this GTID: the newest backup without it, then the archived binary logs. */
    toGtid: SingleGtid.optional(),
  })
  .refine((input) => input.backup === 'latest' || input.atOrBefore === undefined, {
    message: 'give either a backup name or atOrBefore, not both',
    path: ['atOrBefore'],
  })
  .refine((input) => input.toTime === undefined || input.toGtid === undefined, {
    message: 'give toTime or toGtid, not both',
    path: ['toGtid'],
  })
  .refine(
    (input) => (input.toTime === undefined && input.toGtid === undefined) || input.atOrBefore === undefined,
    { message: 'a restore to a point chooses its backup itself: leave atOrBefore out', path: ['atOrBefore'] },
  )
  .refine(
    (input) =>
      (input.toTime === undefined && input.toGtid === undefined) || input.replicateFrom === undefined,
    {
      message: 'a restore to a point stays at that point: it cannot also replicate',
      path: ['replicateFrom'],
    },
  );
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
    /**
     * Keep the load and the catch-up out of the destinations' binary logs (default: written, so a
     * destination primary's replicas get every row); for destinations without replicas.
     */
    skipDestinationBinlogs: z.boolean().default(false),
    /** Each destination first catches up until at most this far behind the source (default 5). */
    maxLagSeconds: z.number().min(0).max(86_400).optional(),
    /** Freeze the source primary, catch up and diff at its final position, then switch the topology. */
    cutover: z.boolean().default(false),
    /** With cutover: run everything up to the freeze (diffing at the stopped replica) and report what would switch. */
    dryRun: z.boolean().default(false),
    /** The longest the source primary's writes may stay frozen before the cutover gives up (default 30). */
    freezeTimeoutSeconds: z.number().positive().max(3600).default(30),
    /** The source shard's primary, frozen by a cutover (default: the topology store's primary of the shard). */
    sourcePrimaryHost: Host.optional(),
    sourcePrimaryDefaultsFile: DefaultsFile.optional(),
    sourcePrimarySystemdService: SystemdService.optional(),
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
    if (input.dryRun && !input.cutover) {
      ctx.addIssue({
        code: 'custom',
        path: ['dryRun'],
        message: 'rehearses a cutover: it needs cutover: true',
      });
    }
    if (input.cutover && !keyMode) {
      ctx.addIssue({
        code: 'custom',
        path: ['cutover'],
        message:
          'switches shards by key range: it needs keyColumn and keyType (moving tables is not cut over)',
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

/** The scheduled archive of the shards' binary logs, on the host each shard is backed up on. */
export const BinlogArchiveInput = z
  .strictObject({
    targets: z.array(BackupTarget).min(1).max(1000).optional(),
    keyspaces: z.array(Segment).min(1).max(100).optional(),
    /** Close the current binary log first when it is older than this (`5m`, `90s`, `0`). */
    maxAge: Seconds.optional(),
    compression: z.enum(['zstd', 'gzip', 'none']).optional(),
  })
  .refine((input) => input.targets !== undefined || input.keyspaces !== undefined, {
    message: 'give targets (keyspace, shard, host) or keyspaces',
    path: ['targets'],
  });
export type BinlogArchiveInput = z.infer<typeof BinlogArchiveInput>;

export const machineInputs = {
  backup: BackupInput,
  restore: RestoreInput,
  reshard: ReshardInput,
  drill: DrillInput,
  binlogArchive: BinlogArchiveInput,
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
