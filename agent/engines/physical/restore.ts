import fs from 'node:fs/promises';
import { keepFirstError, messageOf, StepbackError } from '../../../core/errors.ts';
import type { FileBase, PhysicalManifest } from '../../../core/manifest.ts';
import { reachedPhase } from '../../instance/fault.ts';
import { writeLocalMetadata } from '../../instance/metadata.ts';
import { captureState } from '../../instance/state.ts';
import { ByteProgress } from '../../report/progress.ts';
import type { EngineRestore, RestoreEngine, RestoreParams } from '../engine.ts';
import { type DataLayout, dataLayout } from './layout.ts';
import { holdingLeftovers, undoRestore } from './recovery.ts';
import { planRestoreFiles, stagedTops, stageFiles } from './stage.ts';
import {
  applySwap,
  planSwap,
  type RestoreArea,
  type RestoreJournal,
  removeHolding,
  restoreArea,
} from './swap.ts';

/**
 * Stages every file beside the datadir, verified, while the instance keeps running; only then
 * swaps: stop, move the old files aside, move the staged ones in, start with replication off, reset
 * replication, write the local metadata, set the restored position, and delete the old files. A
 * backup from another server release is upgraded first, in a start without grants or networking.
 */
export const physicalRestoreEngine: RestoreEngine<PhysicalManifest> = {
  name: 'physical',
  async executeRestore(params: RestoreParams<PhysicalManifest>): Promise<EngineRestore> {
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

    const journal: RestoreJournal = { phase: 'staging', holding: area.holding };
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

    const swapSeconds = await swapInStaged(params, layout, area, stagedTops(planned), journal);
    return {
      files: manifest.files.length,
      bytes: manifest.bytes,
      downloadSeconds,
      swapSeconds,
    };
  },
};

/**
 * The swap shared by every engine that stages whole entries: stop, move the old entries aside and
 * the staged `tops` in (journalled), start once with replication off, reset replication, write the
 * local metadata and set the restored position, then delete the old files. When the backup comes
 * from another release (or a drill inspects the copy), the first start is without grants or
 * networking, for the upgrade tool or the checks, and a second start follows. On failure the old files
 * are put back and the error is thrown. Returns the seconds from the stop to the restored instance
 * running.
 */
export async function swapInStaged(
  params: RestoreParams,
  layout: DataLayout,
  area: RestoreArea,
  tops: readonly { base: FileBase; top: string }[],
  staged: RestoreJournal,
): Promise<number> {
  const { daemon, manifest, lease, logger } = params;
  let journal = staged;
  const swapStarted = performance.now();
  try {
    reachedPhase('restore:staged');
    logger.info('all files staged and verified; replacing the old files');
    await daemon.shutdown();
    const plan = await planSwap(layout, area, tops);
    journal = { ...journal, phase: 'swapping', plan };
    await lease.record({ details: { restore: journal } });
    await applySwap(plan, layout);
    reachedPhase('restore:swapped');

    journal = { ...journal, phase: 'started' };
    await lease.record({ details: { restore: journal } });
    const version = daemon.binaries.version;
    const upgrade = daemon.flavor.needsUpgradeTool(version, manifest.serverVersion);
    const skipReplicationStart = daemon.flavor.skipReplicationStartOption(version);
    if (upgrade || params.inspect) {
      // The upgrade tool and a drill's checks run without grants and without clients; the server is
      // then started again for good.
      await daemon.start(['--skip-grant-tables', '--skip-networking', skipReplicationStart]);
      reachedPhase('restore:started');
      if (upgrade) await daemon.upgrade();
      else logger.info('the backup comes from this server release: no upgrade needed');
      if (params.inspect) {
        // A drill: the journal stays at `started`, so a crash here also puts the old files back.
        await params.inspect();
        await undoRestore(daemon, layout, journal, logger);
        await lease.record({ details: { restore: undefined } });
        return (performance.now() - swapStarted) / 1000;
      }
      await daemon.withConnection(async (connection) => {
        await daemon.flavor.resetReplication(connection);
        await writeLocalMetadata(connection, params.localMetadata);
      });
      await daemon.shutdown();
      await daemon.start();
      await daemon.withConnection((connection) =>
        daemon.flavor.setRestoredPosition(connection, manifest.position),
      );
    } else {
      // One start, for good: replication is not started, so the replication the backup's files
      // carry is reset before it could run, on the same connection that sets the restored position
      // (which, as after a second start, needs the restored grants to let this agent in).
      logger.info('the backup comes from this server release: no upgrade needed');
      await daemon.start([skipReplicationStart]);
      reachedPhase('restore:started');
      await daemon.withConnection(async (connection) => {
        await daemon.flavor.resetReplication(connection);
        await writeLocalMetadata(connection, params.localMetadata);
        await daemon.flavor.setRestoredPosition(connection, manifest.position);
      });
    }
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
  reachedPhase('restore:committed');
  const swapSeconds = (performance.now() - swapStarted) / 1000;
  try {
    await removeHolding(area.holding);
  } catch (error) {
    logger.warn(`the restore is complete, but the old files could not be deleted: ${messageOf(error)}`, {
      delete: area.holding.join(' '),
    });
  }
  return swapSeconds;
}
