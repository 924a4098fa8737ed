import { StepbackError } from '../../../core/errors.ts';
import { reachedPhase } from '../../instance/fault.ts';
import { checkStillQuiesced, quiesce } from '../../instance/state.ts';
import { formatBytes } from '../../report/format.ts';
import { ByteProgress } from '../../report/progress.ts';
import type { BackupEngine, BackupParams, EngineBackup } from '../engine.ts';
import { instanceEvidence } from '../evidence.ts';
import { copyFiles } from './copy.ts';
import { listDataFiles } from './files.ts';
import { dataLayout } from './layout.ts';

/**
 * The cold copy: stop writes and take the position (a replica stops replicating, a primary turns
 * read-only), shut mysqld down cleanly, stream every data file to storage. The caller starts mysqld
 * again and puts read_only and replication back, whatever happened here.
 */
export const physicalBackupEngine: BackupEngine = {
  name: 'physical',
  async executeBackup(params: BackupParams): Promise<EngineBackup> {
    const { daemon, logger } = params;
    // Before anything changes: a layout the engine cannot copy fails here, with the instance untouched.
    const layout = dataLayout(daemon.config);
    const quiesced = await quiesce(daemon, params.original, logger);
    logger.info(`position ${quiesced.position || '(empty)'} (${quiesced.role})`);
    await checkStillQuiesced(daemon, quiesced);
    reachedPhase('backup:quiesced');
    // Read while writes are stopped, before shutdown: the checksums are of the data at the position.
    const evidence = params.evidence ? await instanceEvidence(daemon, params) : undefined;
    if (evidence) await checkStillQuiesced(daemon, quiesced);
    await daemon.shutdown({ fast: !params.slowShutdown });
    reachedPhase('backup:stopped');
    params.signal.throwIfAborted();

    const files = await listDataFiles(layout, logger);
    const total = files.reduce((sum, file) => sum + file.size, 0);
    logger.info(`copying ${files.length} files, ${formatBytes(total)}`);
    const progress = new ByteProgress(
      'copying files',
      { bytes: total, items: files.length },
      params.progress,
    );
    progress.start();
    const started = performance.now();
    const copied = await copyFiles(params.handle, files, {
      compression: params.compression,
      concurrency: params.concurrency,
      signal: params.signal,
      logger,
      onBytes: progress.addBytes,
      onFileDone: progress.itemDone,
    });
    const copySeconds = (performance.now() - started) / 1000;
    if (await daemon.isRunning()) {
      throw new StepbackError(
        'mysqld was started while its files were being copied; the copy is not consistent',
        {
          hint: 'make sure nothing (systemd, a watchdog) restarts mysqld during a backup, then run it again',
        },
      );
    }
    const stored = copied.reduce((sum, file) => sum + file.storedSize, 0);
    return {
      role: quiesced.role,
      position: quiesced.position,
      purged: quiesced.purged,
      contents: { engine: 'physical', files: copied },
      bytes: { raw: total, stored },
      copySeconds,
      evidence,
    };
  },
};
