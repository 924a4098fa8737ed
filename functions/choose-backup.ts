import { z } from 'zod';
import { chooseBackup as choose } from '../core/backups.ts';
import { backupAfterPoint } from '../core/binlogs/plan.ts';
import { SingleGtid } from '../core/operations/restore.ts';
import { BackupDir, BackupName } from '../core/paths.ts';
import { defineFunction, lambdaHandler, withStorage } from './runtime.ts';

/** The backup to restore: the newest complete one, a named one, or the newest at or before a time. */

export const ChooseBackupEvent = z.object({
  dir: BackupDir,
  name: BackupName.nullish(),
  atOrBefore: z.iso.datetime({ offset: true }).nullish(),
  /** A restore to this GTID: the newest backup that does not hold it yet. */
  beforeGtid: SingleGtid.nullish(),
});

export const chooseBackup = defineFunction({
  name: 'choose-backup',
  event: ChooseBackupEvent,
  run: (event, context) =>
    withStorage(context, async (storage) => {
      const chosen = await choose(
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
      const { manifest } = chosen;
      return {
        dir: event.dir,
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
