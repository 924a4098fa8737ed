import { z } from 'zod';
import { BackupDir, BackupName } from '../paths.ts';
import { Count, InstanceFields, Name, StorageFields, withDefault } from './fields.ts';

/** `DIR` (its newest complete snapshot) or `DIR@NAME`, as snapshot results list them. */
export const SnapshotSource = z.string().transform((entry, ctx) => {
  const at = entry.indexOf('@');
  const dir = at < 0 ? entry : entry.slice(0, at);
  const name = at < 0 ? undefined : entry.slice(at + 1);
  if (!BackupDir.safeParse(dir).success || (name !== undefined && !BackupName.safeParse(name).success)) {
    ctx.addIssue({
      code: 'custom',
      message: `${JSON.stringify(entry)} is not DIR or DIR@NAME (e.g. commerce/src/-80@2026-11-24.101500.db1)`,
    });
    return z.NEVER;
  }
  return { dir, name };
});
export type SnapshotSource = z.output<typeof SnapshotSource>;

/** `stepback multirestore`: logical snapshots of one or more sources loaded into one database. */
export const MultirestoreRequest = z
  .strictObject({
    ...StorageFields,
    ...InstanceFields,
    sources: z.array(SnapshotSource).min(1).max(256),
    database: Name,
    /** Files fetched (read, verified, decompressed) at once. */
    fetchConcurrency: withDefault(Count, 4),
    /** LOAD DATA statements at once. */
    insertConcurrency: withDefault(Count, 4),
    /** LOAD DATA statements into one table at once. */
    tableConcurrency: withDefault(Count, 2),
    /** Write the load to the binary log (default: not, so replicas do not replay it). */
    writeBinlogs: withDefault(z.boolean(), false),
    /** One checkpoint row per source in `_stepback.checkpoint`, for filtered replication. */
    checkpoints: withDefault(z.boolean(), false),
    /** Flag the checkpoint rows `dont-start`. */
    dontStartReplication: withDefault(z.boolean(), false),
    /** Replace the tables and views the snapshots hold when the database already has tables. */
    force: withDefault(z.boolean(), false),
    /** Replace triggers, procedures, functions and events of the names the snapshots hold. */
    replaceStoredPrograms: withDefault(z.boolean(), false),
    /** Load the tables and views without the snapshots' triggers, procedures, functions and events. */
    skipStoredPrograms: withDefault(z.boolean(), false),
    /** Define views and programs whose DEFINER account does not exist here as the loading user. */
    definerFallback: withDefault(z.boolean(), false),
  })
  .superRefine((request, ctx) => {
    const seen = new Set<string>();
    for (const [index, source] of request.sources.entries()) {
      const key = `${source.dir}@${source.name ?? ''}`;
      if (seen.has(key)) {
        ctx.addIssue({
          code: 'custom',
          path: ['sources', index],
          message: `lists ${key.replace(/@$/, '')} twice`,
        });
      }
      seen.add(key);
    }
    if (request.dontStartReplication && !request.checkpoints) {
      ctx.addIssue({
        code: 'custom',
        path: ['dontStartReplication'],
        message: 'flags the checkpoint rows: it needs checkpoints',
      });
    }
  });
export type MultirestoreRequest = z.output<typeof MultirestoreRequest>;
