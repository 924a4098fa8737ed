import { z } from 'zod';
import { pruneBackups as prune } from '../core/backups.ts';
import { pruneBinlogs } from '../core/binlogs/retention.ts';
import { ShardDir } from '../core/storage/layout.ts';
import { defineFunction, lambdaHandler, withStorage } from './runtime.ts';

/** Applies the retention rules to one shard after a good backup. */

export const PruneBackupsEvent = z.object({
  dir: ShardDir,
  retention: z.object({ keepCount: z.number().int().min(1), keepDays: z.number().min(0) }),
  dryRun: z.boolean().optional(),
});

export const pruneBackups = defineFunction({
  name: 'prune-backups',
  event: PruneBackupsEvent,
  run: (event, context) =>
    withStorage(context, async (storage) => {
      const plan = await prune(storage, event.dir, event.retention, {
        dryRun: Boolean(event.dryRun),
        now: context.now(),
        logger: context.logger,
      });
      // The shard's archived binary logs that no point after the oldest kept backup needs.
      const binlogs = await pruneBinlogs(storage, event.dir, plan.keep, {
        dryRun: Boolean(event.dryRun),
        now: context.now(),
        logger: context.logger,
      });
      return {
        dir: event.dir,
        dryRun: plan.dryRun,
        removed: plan.remove.map((r) => r.name),
        removedBinlogs: binlogs.remove.map((r) => r.entry),
        kept: plan.keep.length,
        /** Set by the state machine when pruning fails; the backup itself stands. */
        warning: null,
      };
    }),
});

export const handler = lambdaHandler(pruneBackups);
