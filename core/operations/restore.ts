import { z } from 'zod';
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

/** `stepback restore`: the newest complete (or a named) physical backup into an instance. */
export const RestoreRequest = z.strictObject({
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
});
export type RestoreRequest = z.output<typeof RestoreRequest>;
