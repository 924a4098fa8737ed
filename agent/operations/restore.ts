import { chooseBackup } from '../../core/backups.ts';
import { ExistingDataError, keepFirstError, StepbackError } from '../../core/errors.ts';
import type { PhysicalManifest } from '../../core/manifest.ts';
import type { BackupStorage } from '../../core/storage/types.ts';
import type { EngineContext, RestoreEngine } from '../engines/engine.ts';
import { databasesWithFiles } from '../engines/physical/files.ts';
import { dataLayout } from '../engines/physical/layout.ts';
import {
  physicalRestoreEngine,
  RESTORE_OPERATION,
  registerRestoreRecoverer,
  restoreNeedsRecovery,
} from '../engines/physical/restore.ts';
import { isUserDatabase, userDatabasesWithTables } from '../instance/databases.ts';
import { acquireInstance } from '../instance/lease.ts';
import { replicateFrom } from '../instance/replication.ts';
import { captureState, restoreState } from '../instance/state.ts';
import type { ReplicationSource } from '../mysql/flavor.ts';
import type { MysqlDaemon } from '../mysqld/daemon.ts';

export const restoreEngines: Record<string, RestoreEngine> = { physical: physicalRestoreEngine };

export interface RestoreRequest {
  dir: string;
  /** A named backup; default the newest complete one. */
  backup?: string | undefined;
  deleteBeforeRestore: boolean;
  concurrency: number;
  localMetadata: Readonly<Record<string, string>>;
  replicateFrom?: ReplicationSource | undefined;
  /** How long to wait for the restored instance to catch up with --replicate-from. */
  replicationTimeoutSeconds: number;
}

export interface RestoreResult {
  backup: string;
  dir: string;
  storage: string;
  engine: string;
  /** The GTID position the restored instance starts from. */
  position: string;
  files: number;
  bytes: { raw: number; stored: number };
  /** Newer backups passed over, each with why. */
  skipped: { name: string; problem: string }[];
  /** User databases the restore replaced (with --delete-before-restore). */
  replacedDatabases: string[];
  replication?: { source: string; caughtUpTo: string };
  seconds: number;
  downloadSeconds: number;
  swapSeconds: number;
  peakRssBytes: number;
}

/** The user databases an instance holds: asked of the server when it runs, read from the datadir when not. */
async function userDatabases(daemon: MysqlDaemon, running: boolean): Promise<string[]> {
  if (running) return daemon.withConnection(userDatabasesWithTables);
  return (await databasesWithFiles(dataLayout(daemon.config))).filter(isUserDatabase);
}

function checkCompatible(daemon: MysqlDaemon, manifest: PhysicalManifest): void {
  if (manifest.flavor !== daemon.flavor.name) {
    throw new StepbackError(
      `backup ${manifest.name} is a ${manifest.flavor} backup and this instance runs ${daemon.flavor.name}`,
      { hint: 'a physical copy restores only onto the same server; choose another backup or instance' },
    );
  }
}

/**
 * `stepback restore`: chooses the backup (exit 3 when none), refuses to replace user data unless
 * asked (exit 4), lets the engine stage, verify and swap the files (the instance is left as found
 * on any failure before the swap, and its old files are put back on a failure during it), then
 * optionally replicates from a primary until caught up.
 */
export async function runRestore(
  daemon: MysqlDaemon,
  storage: BackupStorage,
  request: RestoreRequest,
  context: EngineContext,
): Promise<RestoreResult> {
  const { logger } = context;
  registerRestoreRecoverer();
  const started = performance.now();
  const lease = await acquireInstance(daemon, RESTORE_OPERATION, logger);
  let keepMarker = false;
  try {
    const chosen = await chooseBackup(storage, request.dir, { name: request.backup }, logger);
    const { manifest } = chosen;
    if (manifest.engine !== 'physical') {
      throw new StepbackError(`backup ${request.dir}/${manifest.name} is a ${manifest.engine} snapshot`, {
        hint: 'restore snapshots with stepback multirestore; restore takes physical backups',
      });
    }
    const engine = restoreEngines[manifest.engine]!;
    checkCompatible(daemon, manifest);
    const original = await captureState(daemon);
    const existing = await userDatabases(daemon, original.running);
    if (existing.length > 0 && !request.deleteBeforeRestore) {
      throw new ExistingDataError(
        `${daemon.config.datadir} holds user data (${existing.slice(0, 10).join(', ')}${existing.length > 10 ? ', …' : ''}); nothing was changed`,
        { hint: 'pass --delete-before-restore to replace it with the backup' },
      );
    }
    await lease.record({ original });
    logger.info(
      `restoring ${request.dir}/${manifest.name} (${manifest.files.length} files, position ${manifest.position || '(empty)'}) into ${daemon.config.datadir}`,
    );

    let restored: Awaited<ReturnType<RestoreEngine['executeRestore']>>;
    try {
      restored = await engine.executeRestore({
        ...context,
        daemon,
        handle: chosen.handle,
        manifest,
        lease,
        concurrency: request.concurrency,
        localMetadata: request.localMetadata,
      });
    } catch (error) {
      if (restoreNeedsRecovery(lease.marker)) {
        keepMarker = true;
        throw error;
      }
      try {
        await restoreState(daemon, lease.marker.original ?? original, logger);
      } catch (stateError) {
        keepMarker = true;
        keepFirstError(logger, error, stateError);
      }
      throw error;
    }

    let replication: RestoreResult['replication'];
    if (request.replicateFrom) {
      const { caughtUpTo } = await replicateFrom(daemon, request.replicateFrom, {
        timeoutSeconds: request.replicationTimeoutSeconds,
        logger,
        signal: context.signal,
      });
      replication = { source: `${request.replicateFrom.host}:${request.replicateFrom.port}`, caughtUpTo };
    }
    return {
      backup: manifest.name,
      dir: request.dir,
      storage: storage.url,
      engine: engine.name,
      position: manifest.position,
      files: restored.files,
      bytes: restored.bytes,
      skipped: chosen.skipped,
      replacedDatabases: existing,
      ...(replication ? { replication } : {}),
      seconds: round((performance.now() - started) / 1000),
      downloadSeconds: round(restored.downloadSeconds),
      swapSeconds: round(restored.swapSeconds),
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
    };
  } finally {
    if (!keepMarker) await lease.release();
  }
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
