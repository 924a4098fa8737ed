import { z } from 'zod';
import { Compression } from '../manifest.ts';
import { BackupDir, BackupName } from '../paths.ts';
import { Count, InstanceFields, optional, StorageFields, withDefault } from './fields.ts';

/** `stepback backup`: a physical backup of one instance into `<storage>/<dir>/<name>/`. */
export const BackupRequest = z.strictObject({
  ...StorageFields,
  ...InstanceFields,
  /** `keyspace/shard`, e.g. `commerce/-80`. */
  dir: BackupDir,
  engine: withDefault(z.enum(['physical']), 'physical'),
  compression: withDefault(Compression, 'zstd'),
  /** Files copied at once. */
  concurrency: withDefault(Count, 4),
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
