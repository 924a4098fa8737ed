import { z } from 'zod';
import { KeyRangeText } from '../manifest.ts';
import { Count, EnvVarName, Name, optional, withDefault } from './fields.ts';

export const MysqlUri = z
  .string()
  .max(4096)
  .regex(/^mysql:\/\/\S+$/, 'must be a mysql:// URI');

/** `stepback diff`: the rows of two databases compared, whole or one side's key range. */
export const DiffRequest = z
  .strictObject({
    /** The source: `mysql://user@host:port/db` or `mysql://user@localhost/db?socket=/path`. */
    left: MysqlUri,
    /** The copy, in the same form. */
    right: MysqlUri,
    /** Variables on the host that hold each side's password. */
    leftPasswordEnv: optional(EnvVarName),
    rightPasswordEnv: optional(EnvVarName),
    /** Default: every base table on the left. */
    tables: optional(z.array(Name).min(1)),
    /** The right may lack rows of the left (it must hold no row the left lacks). */
    subset: withDefault(z.boolean(), false),
    /** Compare only left rows whose keyspace id is in this range, e.g. `-80`. */
    leftKeyRange: optional(KeyRangeText),
    keyColumn: optional(Name),
    keyType: withDefault(z.enum(['uint64', 'bytes']), 'uint64'),
    /** Chunks compared at once, each on its own pair of connections. */
    concurrency: withDefault(Count, 2),
    /** Rows per checksummed chunk. */
    chunkRows: withDefault(z.number().int().min(1000).max(100_000_000), 100_000),
    /** Compare chunk checksums first (false: stream every row). */
    checksums: withDefault(z.boolean(), true),
  })
  .superRefine((request, ctx) => {
    // The field that is missing is the one named: a key column needs a range, a range a column.
    if (request.leftKeyRange !== undefined && request.keyColumn === undefined) {
      ctx.addIssue({ code: 'custom', path: ['keyColumn'], message: 'is required with the left key range' });
    }
    if (request.keyColumn !== undefined && request.leftKeyRange === undefined) {
      ctx.addIssue({ code: 'custom', path: ['leftKeyRange'], message: 'is required with the key column' });
    }
  });
export type DiffRequest = z.output<typeof DiffRequest>;
