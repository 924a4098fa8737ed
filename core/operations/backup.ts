import { z } from 'zod';
import { Compression } from '../manifest.ts';
import { BackupDir, BackupName } from '../paths.ts';
import { ByteSize, Count, InstanceFields, optional, StorageFields, withDefault } from './fields.ts';

/** `stepback backup`: a physical or online backup of one instance into `<storage>/<dir>/<name>/`. */
export const BackupRequest = z.strictObject({
  ...StorageFields,
  ...InstanceFields,
  /** `keyspace/shard`, e.g. `commerce/-80`. */
  dir: BackupDir,
  /** physical: cold copy (stops the instance); online: mariabackup (MySQL: the clone plugin) while it serves. */
  engine: withDefault(z.enum(['physical', 'online']), 'physical'),
  compression: withDefault(Compression, 'zstd'),
  /** Files copied at once (physical); parts finishing their upload at once (online, at most 4). */
  concurrency: withDefault(Count, 4),
  /**
   * Online engine on a replica: keep its SQL thread applying while the tool copies the tables that
   * are not InnoDB (by default it pauses for that moment, --safe-slave-backup: a table Aria or
   * MyISAM is writing to while it is copied is not consistent).
   */
  keepReplicaApplying: withDefault(z.boolean(), false),
  /** Online engine: the tool's stream is stored in parts of at most this many raw bytes. */
  partSize: withDefault(ByteSize, 1024 ** 3),
  /** Default: `YYYY-MM-DD.HHMMSS.<host>` (UTC) at the start. */
  name: optional(BackupName),
  /** innodb_fast_shutdown=0 before copying: for restores onto another major version. */
  slowShutdown: withDefault(z.boolean(), false),
  /** Back up a primary that has replicas attached (it stops taking writes for the whole copy). */
  allowPrimary: withDefault(z.boolean(), false),
  /** Record every table's rows and checksum at the backup's position, for drills (costs a read of every row). */
  evidence: withDefault(z.boolean(), true),
});
export type BackupRequest = z.output<typeof BackupRequest>;
