import { z } from 'zod';
import { GtidSetText } from '../gtid.ts';
import { KeyRangeText } from '../manifest.ts';
import { MysqlUri } from './diff.ts';
import { EnvVarName, InstanceFields, Name, optional, withDefault } from './fields.ts';

/**
 * `stepback catchup`: on a destination host, the source shard's binary log applied to the database a
 * multirestore loaded, from the position its checkpoint row holds: only the rows of the
 * destination's key range (or, without one, of the destination's tables), by primary key.
 */
export const CatchupRequest = z
  .strictObject({
    ...InstanceFields,
    /** The destination database (the one multirestore loaded with checkpoints). */
    database: Name,
    /** A server of the source shard whose binary log holds the snapshot's position, and the source database. */
    source: MysqlUri,
    sourcePasswordEnv: optional(EnvVarName),
    /** Which checkpoint row (the source's place in multirestore's sources); default: the only one. */
    sourceIndex: optional(z.number().int().min(0).max(255)),
    /** Keep only rows whose keyspace id is in this range (a horizontal split); default: every row of the destination's tables. */
    keyRange: optional(KeyRangeText),
    keyColumn: optional(Name),
    keyType: withDefault(z.enum(['uint64', 'bytes']), 'uint64'),
    /** Stop once this position is applied. */
    until: optional(GtidSetText),
    /** Without `until`: stop once the destination is at most this far behind the source. */
    maxLagSeconds: withDefault(z.number().min(0).max(86_400), 5),
    /** Fail when the stopping point is not reached within this many seconds (default: no limit). */
    timeoutSeconds: optional(
      z
        .number()
        .positive()
        .max(86_400 * 7),
    ),
    /** Write the applied rows to the destination's binary log (default: not). */
    writeBinlogs: withDefault(z.boolean(), false),
    /** The replica server id this reader uses on the source (default: a random one). */
    serverId: optional(z.number().int().min(1).max(4_294_967_295)),
  })
  .superRefine((request, ctx) => {
    if (request.keyRange !== undefined && request.keyColumn === undefined) {
      ctx.addIssue({ code: 'custom', path: ['keyColumn'], message: 'is required with a key range' });
    }
    if (request.keyColumn !== undefined && request.keyRange === undefined) {
      ctx.addIssue({ code: 'custom', path: ['keyRange'], message: 'is required with the key column' });
    }
  });
export type CatchupRequest = z.output<typeof CatchupRequest>;
