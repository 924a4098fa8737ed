import fs from 'node:fs/promises';
import { keepFirstError, messageOf, StepbackError } from '../../../core/errors.ts';
import type { Logger } from '../../../core/log.ts';
import { type OperationMarker, registerRecoverer } from '../../instance/lease.ts';
import { writeLocalMetadata } from '../../instance/metadata.ts';
import { captureState } from '../../instance/state.ts';
import type { MysqlDaemon } from '../../mysqld/daemon.ts';
import { ByteProgress } from '../../report/progress.ts';
import type { EngineRestore, RestoreEngine, RestoreParams } from '../engine.ts';
import { type DataLayout, dataLayout } from './layout.ts';
import { planRestoreFiles, stagedTops, stageFiles } from './stage.ts';
import {
  applySwap,
  checkJournal,
  planSwap,
  RestoreJournal,
  removeHolding,
  restoreArea,
  rollBackSwap,
} from './swap.ts';

/** The operation name restores hold an instance under (and recover by). */
export const RESTORE_OPERATION = 'restore';

/** Whether the journal says old files may be out of place: the marker must stay until they are back. */
export function restoreNeedsRecovery(marker: OperationMarker): boolean {
  const parsed = RestoreJournal.safeParse(marker.details?.restore);
  return parsed.success && (parsed.data.phase === 'swapping' || parsed.data.phase === 'started');
}

async function holdingLeftovers(holding: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  for (const dir of holding) {
    if (await fs.stat(dir).catch(() => undefined)) found.push(dir);
  }
  return found;
}

/**
 * Undoes a restore that did not commit, however far it got: the restored mysqld stopped, the
 * restored files out, the old files back, the staging area removed. Returns what it did.
 */
async function undoRestore(
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

/**
 * Repairs a restore that was killed: before the restored instance ran with its position set, the
 * old files go back (the next restore starts over); after, only the old files are deleted. An
 * interrupted restore is therefore never taken for a complete one.
 */
async function recoverRestore(
  daemon: MysqlDaemon,
  marker: OperationMarker,
  logger: Logger,
): Promise<string[]> {
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
    return ['deleted the old files of the completed restore'];
  }
  return undoRestore(daemon, layout, journal, logger);
}

let recovererRegistered = false;

/** Lets any command that takes an instance repair a killed restore first. Idempotent. */
export function registerRestoreRecoverer(): void {
  if (recovererRegistered) return;
  registerRecoverer(RESTORE_OPERATION, recoverRestore);
  recovererRegistered = true;
}

/**
 * Stages every file beside the datadir, verified, while the instance keeps running; only then
 * swaps: stop, move the old files aside, move the staged ones in, start with
 * --skip-grant-tables --skip-networking (and replication off), upgrade (when the backup comes from
 * another server release), write the local metadata,
 * restart normally, set the restored position, and delete the old files.
 */
export const physicalRestoreEngine: RestoreEngine = {
  name: 'physical',
  async executeRestore(params: RestoreParams): Promise<EngineRestore> {
    registerRestoreRecoverer();
    const { daemon, manifest, lease, logger } = params;
    const layout = dataLayout(daemon.config);
    if (!(await fs.stat(layout.datadir).catch(() => undefined))?.isDirectory()) {
      throw new StepbackError(`the datadir ${layout.datadir} does not exist`, {
        hint: "create it, owned by mysqld's user",
      });
    }
    const area = await restoreArea(layout);
    const planned = planRestoreFiles(layout, area, manifest);
    const leftovers = await holdingLeftovers(area.holding);
    if (leftovers.length > 0) {
      throw new StepbackError(`${leftovers.join(', ')} exists from an earlier restore that left no record`, {
        hint: 'it may hold the only copy of old files: look inside, then move or delete it',
      });
    }

    let journal: RestoreJournal = { phase: 'staging', holding: area.holding };
    await lease.record({ details: { restore: journal } });
    const downloadStarted = performance.now();
    const progress = new ByteProgress(
      'downloading files',
      { bytes: manifest.bytes.raw, items: manifest.files.length },
      params.progress,
    );
    progress.start();
    try {
      await stageFiles(params.handle, manifest, planned, area, layout, {
        concurrency: params.concurrency,
        signal: params.signal,
        logger,
        onBytes: progress.addBytes,
        onFileDone: progress.itemDone,
      });
    } catch (error) {
      await removeHolding(area.holding).catch((cleanup: unknown) => keepFirstError(logger, error, cleanup));
      throw error;
    }
    const downloadSeconds = (performance.now() - downloadStarted) / 1000;
    params.signal.throwIfAborted();

    const swapStarted = performance.now();
    try {
      logger.info('all files staged and verified; replacing the old files');
      await daemon.shutdown();
      const plan = await planSwap(layout, area, stagedTops(planned));
      journal = { ...journal, phase: 'swapping', plan };
      await lease.record({ details: { restore: journal } });
      await applySwap(plan, layout);

      journal = { ...journal, phase: 'started' };
      await lease.record({ details: { restore: journal } });
      const version = daemon.binaries.version;
      await daemon.start([
        '--skip-grant-tables',
        '--skip-networking',
        daemon.flavor.skipReplicationStartOption(version),
      ]);
      if (daemon.flavor.needsUpgradeTool(version, manifest.serverVersion)) await daemon.upgrade();
      else logger.info('the backup comes from this server release: no upgrade needed');
      await daemon.withConnection(async (connection) => {
        await daemon.flavor.resetReplication(connection);
        await writeLocalMetadata(connection, params.localMetadata);
      });
      await daemon.shutdown();
      await daemon.start();
      await daemon.withConnection((connection) =>
        daemon.flavor.setRestoredPosition(connection, manifest.position),
      );
      journal = { ...journal, phase: 'committed' };
      // From here on, "as found" is the restored instance.
      await lease.record({ original: await captureState(daemon), details: { restore: journal } });
    } catch (error) {
      logger.error(`restore failed, putting the old files back: ${messageOf(error)}`);
      try {
        await undoRestore(daemon, layout, journal, logger);
        await lease.record({ details: { restore: { ...journal, phase: 'staging' } } });
      } catch (undoError) {
        keepFirstError(logger, error, undoError);
        logger.error(
          'the old files could not all be put back; the next stepback command on this instance retries',
        );
      }
      throw error;
    }
    const swapSeconds = (performance.now() - swapStarted) / 1000;
    try {
      await removeHolding(area.holding);
    } catch (error) {
      logger.warn(`the restore is complete, but the old files could not be deleted: ${messageOf(error)}`, {
        delete: area.holding.join(' '),
      });
    }
    return {
      files: manifest.files.length,
      bytes: manifest.bytes,
      downloadSeconds,
      swapSeconds,
    };
  },
};
