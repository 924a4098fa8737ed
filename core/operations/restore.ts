import { z } from 'zod';
import { isValidGtidSet } from '../gtid.ts';
import { BackupDir, BackupName } from '../paths.ts';
import {
  Count,
  EnvVarName,
  HostName,
  InstanceFields,
  optional,
  Port,
  StorageFields,
  withDefault,
} from './fields.ts';

/** The primary a restored instance replicates from; its password is read from a variable on the host. */
export const ReplicationSource = z.strictObject({
  host: HostName,
  port: Port,
  user: z.string().min(1).max(128),
  /** The variable on the host that holds the replication password (none: an empty password). */
  passwordEnv: optional(EnvVarName),
});
export type ReplicationSource = z.output<typeof ReplicationSource>;

/** One GTID of either flavor: `0-1-42` (MariaDB) or `uuid:42` (MySQL). */
export const SingleGtid = z
  .string()
  .max(128)
  .refine(
    (value) =>
      /^\d{1,10}-\d{1,10}-\d{1,20}$/.test(value) ||
      (/^[0-9a-fA-F-]{36}(:[a-z_][a-z0-9_]{0,31})?:\d{1,20}$/.test(value) && isValidGtidSet('mysql', value)),
    { message: 'must be one GTID, like 0-1-42 (MariaDB) or 3e11fa47-71ca-11e1-9e33-c80aa9429562:42 (MySQL)' },
  );

/**
 * `stepback restore`: the newest complete (or a named) physical backup into an instance, and with
 * toTime/toGtid, the archived binary logs after it up to that point.
 */
export const RestoreRequest = z
  .strictObject({
    ...StorageFields,
    ...InstanceFields,
    dir: BackupDir,
    /** Default: the newest complete backup. */
    backup: optional(BackupName),
    /** No backup in `dir` yet (a new shard): start the instance empty instead of failing NO_BACKUP. */
    allowEmpty: withDefault(z.boolean(), false),
    /** Replace the user data the instance holds. */
    deleteBeforeRestore: withDefault(z.boolean(), false),
    /** Files downloaded at once. */
    concurrency: withDefault(Count, 4),
    /** Key/values for the restored instance's local metadata table. */
    localMetadata: withDefault(
      z.record(
        z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/, 'must be letters, digits, "_", "." or "-"'),
        z.string().max(4096),
      ),
      {},
    ),
    replicateFrom: optional(ReplicationSource),
    /** Seconds to wait for replication to catch up. */
    replicationTimeout: withDefault(
      z
        .number()
        .int()
        .positive()
        .max(7 * 24 * 3600),
      3600,
    ),
    /**
     * Restore to this moment (ISO 8601 with a zone): the newest backup finished at or before it, then
     * the archived binary logs up to the last transaction committed at or before it.
     */
    toTime: optional(z.iso.datetime({ offset: true })),
    /** Restore up to and including this GTID: the newest backup without it, then the archived binary logs. */
    toGtid: optional(SingleGtid),
  })
  .superRefine((request, ctx) => {
    if (request.toTime !== undefined && request.toGtid !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['toGtid'], message: 'give toTime or toGtid, not both' });
    }
    if ((request.toTime !== undefined || request.toGtid !== undefined) && request.replicateFrom) {
      ctx.addIssue({
        code: 'custom',
        path: ['replicateFrom'],
        message: 'a restore to a point stays at that point: it cannot also replicate from a primary',
      });
    }
  });
export type RestoreRequest = z.output<typeof RestoreRequest>;
