import { z } from 'zod';
import { inspectBackups } from '../core/backups.ts';
import { ShardDir } from '../core/storage/layout.ts';
import { defineFunction, lambdaHandler, withStorage } from './runtime.ts';

/**
 * What a shard's backup directory holds: counts and the newest and oldest complete backups (a
 * state's payload is limited to 256 KiB, so not every name).
 */

export const ListBackupsEvent = z.object({ dir: ShardDir });

export const listBackups = defineFunction({
  name: 'list-backups',
  event: ListBackupsEvent,
  run: (event, context) =>
    withStorage(context, async (storage) => {
      const summaries = await inspectBackups(storage, event.dir);
      const complete = summaries.flatMap((s) => (s.complete ? [s] : []));
      const brief = (summary: (typeof complete)[number] | undefined) =>
        summary && {
          name: summary.name,
          engine: summary.manifest.engine,
          finishedAt: summary.manifest.finishedAt,
          position: summary.manifest.position,
        };
      return {
        dir: event.dir,
        total: summaries.length,
        complete: complete.length,
        incomplete: summaries.length - complete.length,
        newest: brief(complete.at(-1)) ?? null,
        oldest: brief(complete[0]) ?? null,
      };
    }),
});

export const handler = lambdaHandler(listBackups);
