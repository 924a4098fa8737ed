import fs from 'node:fs/promises';
import { StepbackError } from '../../../core/errors.ts';
import type { Logger } from '../../../core/log.ts';
import { removeReplayDirs } from '../../binlogs/replay-dir.ts';
import type { OperationMarker, Recoverer } from '../../instance/marker.ts';
import type { MysqlDaemon } from '../../mysqld/daemon.ts';
import { type DataLayout, dataLayout } from './layout.ts';
import { checkJournal, RestoreJournal, removeHolding, rollBackSwap } from './swap.ts';

/** Whether the journal says old files may be out of place: the marker must stay until they are back. */
function restoreNeedsRecovery(marker: OperationMarker): boolean {
  const parsed = RestoreJournal.safeParse(marker.details?.restore);
  return parsed.success && (parsed.data.phase === 'swapping' || parsed.data.phase === 'started');
}

/**
 * Undoes a restore that did not commit, however far it got: the restored mysqld stopped, the
 * restored files out, the old files back, the staging area removed. Returns what it did.
 */
export async function undoRestore(
  daemon: MysqlDaemon,
  layout: DataLayout,
  journal: RestoreJournal,
  logger: Logger,
): Promise<string[]> {
  const actions: string[] = [];
  if (journal.plan && (journal.phase === 'swapping' || journal.phase === 'started')) {
    if (await daemon.isRunning()) {
      await daemon.shutdown();
      actions.push('stopped the restored mysqld');
    }
    await rollBackSwap(journal.plan, layout, { serverRan: journal.phase === 'started' });
    actions.push('put the old files back');
    logger.info('the old files are back in place');
  }
  await removeHolding(journal.holding);
  actions.push('removed the staged files');
  return actions;
}

/** Directories an earlier restore left beside the datadir. */
export async function holdingLeftovers(holding: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  for (const dir of holding) {
    if (await fs.stat(dir).catch(() => undefined)) found.push(dir);
  }
  return found;
}

/**
 * Repairs a restore that was killed: before the restored instance ran with its position set, the
 * old files go back (the next restore starts over); after, only the old files are deleted (and the
 * binary logs a replay to a point downloaded: the instance holds the backup and part of the
 * replay, which the restore run again with deleteBeforeRestore replaces). An interrupted restore is
 * therefore never taken for a complete one.
 */
export const restoreRecoverer: Recoverer = {
  pending: restoreNeedsRecovery,
  async recover(daemon, marker, logger) {
    if (marker.details?.restore === undefined) return [];
    const parsed = RestoreJournal.safeParse(marker.details.restore);
    if (!parsed.success) {
      throw new StepbackError('the restore journal in the operation marker is unreadable', {
        hint: 'check the datadir by hand, then delete the marker file beside it',
      });
    }
    const journal = parsed.data;
    const layout = dataLayout(daemon.config);
    checkJournal(journal, layout);
    if (journal.phase === 'committed') {
      await removeHolding(journal.holding);
      // Killed while replaying binary logs after the backup: their downloads are all that is left.
      const replayDirs = await removeReplayDirs(daemon.config.datadir);
      return [
        'deleted the old files of the completed restore',
        ...(replayDirs.length > 0 ? ['removed the binary logs downloaded for a replay'] : []),
      ];
    }
    return undoRestore(daemon, layout, journal, logger);
  },
};
