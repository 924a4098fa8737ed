import { z } from 'zod';
import { Compression, KeyRangeText } from '../manifest.ts';
import { BackupDir } from '../paths.ts';
import { ByteSize, Count, InstanceFields, Name, optional, StorageFields, withDefault } from './fields.ts';

/** `stepback snapshot`: a logical snapshot of one database, split by key range or restricted to tables. */
export const SnapshotRequest = z
  .strictObject({
    ...StorageFields,
    ...InstanceFields,
    /** `keyspace/source`; each partial key range is stored apart. */
    dir: BackupDir,
    database: Name,
    /** The keyspace id column to split by, and its type. */
    keyColumn: optional(Name),
    keyType: optional(z.enum(['uint64', 'bytes'])),
    /** Default: the full range. */
    keyRanges: optional(z.array(KeyRangeText).min(1).max(256)),
    /** Split into this many even key ranges instead of keyRanges. */
    shards: optional(z.number().int().min(1).max(65_536)),
    /** Only these tables and views (a vertical split; one full key range only). */
    tables: optional(z.array(Name).min(1)),
    excludeTables: optional(z.array(Name).min(1)),
    /** Raw size of each data file before a new one starts. */
    maxFileSize: withDefault(ByteSize, 64 * 1024 * 1024),
    /** Key ranges that leave part of the keyspace out are meant (rows there are copied nowhere). */
    partialRanges: withDefault(z.boolean(), false),
    /** Tables dumped at once. */
    concurrency: withDefault(Count, 4),
    compression: withDefault(Compression, 'zstd'),
    /** A replica: leave replication stopped after the snapshot instead of starting it again. */
    keepReplicationStopped: withDefault(z.boolean(), false),
    /** Quiesce the instance for the whole dump instead of reading through consistent-snapshot transactions. */
    stopForDump: withDefault(z.boolean(), false),
    /** Record each table's rows and checksum per key range, for drills (costs a read of every row). */
    evidence: withDefault(z.boolean(), true),
  })
  .superRefine((request, ctx) => {
    const problem = (path: string, message: string) =>
      ctx.addIssue({ code: 'custom', path: [path], message });
    if (request.dir.split('/').length !== 2)
      problem('dir', "a snapshot's source is KEYSPACE/SOURCE, e.g. shop/0");
    if (request.keyRanges !== undefined && request.shards !== undefined) {
      problem('shards', 'give key ranges or shards, not both');
    }
    const partial = (request.shards ?? 1) > 1 || (request.keyRanges ?? ['-']).some((range) => range !== '-');
    if (request.tables !== undefined && (partial || (request.keyRanges?.length ?? 1) > 1)) {
      problem(
        'tables',
        'copies whole tables (a vertical split): it takes one full key range only; drop the key ranges, or drop the tables and split every table by key range',
      );
    }
    if (partial && request.keyColumn === undefined) {
      problem('keyColumn', 'is required to split by key range (with the key type)');
    }
    if (request.keyColumn !== undefined && request.keyType === undefined) {
      problem('keyType', 'is required with a key column: uint64 or bytes');
    }
  });
export type SnapshotRequest = z.output<typeof SnapshotRequest>;
