import { z } from 'zod';
import { chooseBackup as choose } from '../core/backups.ts';
import { backupAfterPoint } from '../core/binlogs/plan.ts';
import { NoBackupError } from '../core/errors.ts';
import { SingleGtid } from '../core/operations/restore.ts';
import { BackupDir, BackupName } from '../core/paths.ts';
import { defineFunction, lambdaHandler, withStorage } from './runtime.ts';

/**
 * The backup to restore: the newest complete one, a named one, or the newest at or before a time;
 * with allowEmpty and no backup yet (a new shard), the choice to start the instance empty.
 */

export const ChooseBackupEvent = z.object({
  dir: BackupDir,
  name: BackupName.nullish(),
  atOrBefore: z.iso.datetime({ offset: true }).nullish(),
  /** A restore to this GTID: the newest backup that does not hold it yet. */
  beforeGtid: SingleGtid.nullish(),
  /** No backup in `dir` yet: choose to start the instance empty instead of failing NO_BACKUP. */
  allowEmpty: z.boolean().nullish(),
});

export const chooseBackup = defineFunction({
  name: 'choose-backup',
  event: ChooseBackupEvent,
  run: (event, context) =>
    withStorage(context, async (storage) => {
      let chosen: Awaited<ReturnType<typeof choose>>;
      try {
        chosen = await choose(
          storage,
          event.dir,
          {
            name: event.name ?? undefined,
            atOrBefore: event.atOrBefore ? new Date(event.atOrBefore) : undefined,
            // A restore loads physical and online backups; older releases kept a full-range snapshot among them.
            engine: ['physical', 'online'],
            ...(event.beforeGtid
              ? { skipIf: (manifest) => backupAfterPoint(manifest, { gtid: event.beforeGtid as string }) }
              : {}),
          },
          context.logger,
        );
      } catch (error) {
        if (
          !(error instanceof NoBackupError) ||
          !event.allowEmpty ||
          event.name ||
          event.atOrBefore ||
          event.beforeGtid
        ) {
          throw error;
        }
        context.logger.warn(`${error.message}: the instance will start empty (allowEmpty)`);
        return {
          dir: event.dir,
          empty: true as const,
          /** Why no backup was chosen. */
          reason: error.message,
          /** The agent restores with allowEmpty and no backup named: it starts the instance empty. */
          selection: { allowEmpty: true },
        };
      }
      const { manifest } = chosen;
      return {
        dir: event.dir,
        empty: false as const,
        name: manifest.name,
        engine: manifest.engine,
        finishedAt: manifest.finishedAt,
        position: manifest.position,
        host: manifest.host,
        bytes: manifest.bytes,
        skipped: chosen.skipped.slice(0, 20),
        /** The fields a restore request takes from this choice. */
        selection: { backup: manifest.name },
      };
    }),
});

export const handler = lambdaHandler(chooseBackup);
