import { z } from 'zod';
import { Compression } from '../manifest.ts';
import { ShardDir } from '../storage/layout.ts';
import { InstanceFields, StorageFields, withDefault } from './fields.ts';

const units: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600 };

/** `5m`, `90s`, `1h`, `0` (or a number of seconds): a duration up to a day, in seconds. */
export const Seconds = z.union([z.string(), z.number()]).transform((given, ctx) => {
  const match = /^(\d+)\s*([smh]?)$/i.exec(String(given).trim());
  const seconds = match
    ? Number(match[1]) * (units[match[2]?.toLowerCase() ?? ''] ?? Number.NaN)
    : Number.NaN;
  if (!(seconds >= 0 && seconds <= 86_400)) {
    ctx.addIssue({
      code: 'custom',
      message: `must be a duration up to a day like 5m, 90s or 0, got ${JSON.stringify(String(given))}`,
    });
    return z.NEVER;
  }
  return seconds;
});

/**
 * `stepback binlogs archive`: upload every closed binary log of an instance not yet in the shard's
 * archive (`binlogs/<keyspace>/<shard>/`), rotating the current one first when it is older than
 * `maxAge`. Never deletes anything on the server.
 */
export const BinlogArchiveRequest = z.strictObject({
  ...StorageFields,
  ...InstanceFields,
  /** The shard the instance belongs to, `keyspace/shard`. */
  dir: ShardDir,
  /** Rotate the current binary log first when it was opened longer ago than this (0: always). */
  maxAge: withDefault(Seconds, 300),
  compression: withDefault(Compression, 'zstd'),
});
export type BinlogArchiveRequest = z.output<typeof BinlogArchiveRequest>;
