import os from 'node:os';
import { backupName } from '../../core/backups.ts';
import { keepFirstError, StepbackError } from '../../core/errors.ts';
import type { Compression, PhysicalManifest } from '../../core/manifest.ts';
import { MANIFEST_FORMAT_VERSION } from '../../core/manifest.ts';
import { keyspaceAndShard } from '../../core/paths.ts';
import type { BackupStorage } from '../../core/storage/types.ts';
import type { BackupEngine, EngineContext } from '../engines/engine.ts';
import { physicalBackupEngine } from '../engines/physical/backup.ts';
import { registerRestoreRecoverer } from '../engines/physical/restore.ts';
import { acquireInstance } from '../instance/lease.ts';
import { captureState, restoreState } from '../instance/state.ts';
import { queryValue } from '../mysql/connection.ts';
import type { MysqlDaemon } from '../mysqld/daemon.ts';

export const backupEngines: Record<string, BackupEngine> = { physical: physicalBackupEngine };

export interface BackupRequest {
  /** `keyspace/shard` */
  dir: string;
  /** Default: `YYYY-MM-DD.HHMMSS.<host>` at the start. */
  name?: string | undefined;
  engine: 'physical';
  compression: Compression;
  concurrency: number;
  slowShutdown: boolean;
}

export interface BackupResult {
  name: string;
  dir: string;
  storage: string;
  engine: string;
  role: 'primary' | 'replica';
  position: string;
  purged: string;
  files: number;
  bytes: { raw: number; stored: number };
  /** The whole operation, mysqld stopped and started again included. */
  seconds: number;
  copySeconds: number;
  /** Raw megabytes (10^6) copied per second of copying. */
  mbPerSecond: number;
  /** Peak resident memory of the agent process. */
  peakRssBytes: number;
}

/**
 * `stepback backup`: holds the instance, lets the engine copy it into a new backup, writes the
 * MANIFEST last, and always puts the instance back as found (running, read_only, replication). On
 * failure the partial backup is removed and the first error is thrown; cleanup errors are logged.
 */
export async function runBackup(
  daemon: MysqlDaemon,
  storage: BackupStorage,
  request: BackupRequest,
  context: EngineContext,
): Promise<BackupResult> {
  const { logger } = context;
  const engine = backupEngines[request.engine];
  if (!engine) throw new StepbackError(`unknown backup engine ${request.engine}`);
  registerRestoreRecoverer();
  const started = performance.now();
  const startedAt = new Date();
  const lease = await acquireInstance(daemon, 'backup', logger);
  let keepMarker = false;
  try {
    const original = await captureState(daemon);
    if (!original.running) {
      throw new StepbackError(`mysqld of ${daemon.config.defaultsFile} is not running`, {
        hint: 'start it: a backup reads the replication position from the running server',
      });
    }
    const identity = await daemon.withConnection(async (connection) => ({
      serverVersion: String(await queryValue(connection, 'SELECT VERSION()')),
      serverId: Number(await queryValue(connection, 'SELECT @@GLOBAL.server_id')),
      serverUuid:
        daemon.flavor.name === 'mysql'
          ? String(await queryValue(connection, 'SELECT @@GLOBAL.server_uuid'))
          : undefined,
    }));
    const name = request.name ?? backupName(startedAt, os.hostname());
    const handle = await storage.startBackup(request.dir, name);
    await lease.record({ original });
    logger.info(`backing up ${daemon.config.datadir} to ${storage.url} ${request.dir}/${name}`);

    let failure: unknown;
    let result: BackupResult | undefined;
    try {
      const made = await engine.executeBackup({
        ...context,
        daemon,
        handle,
        original,
        compression: request.compression,
        concurrency: request.concurrency,
        slowShutdown: request.slowShutdown,
      });
      const finishedAt = new Date();
      const manifest: PhysicalManifest = {
        formatVersion: MANIFEST_FORMAT_VERSION,
        engine: 'physical',
        name,
        dir: request.dir,
        ...keyspaceAndShard(request.dir),
        host: os.hostname(),
        startedAt: startedAt.toISOString(),
        finishedAt: finishedAt.toISOString(),
        durationSeconds: (finishedAt.getTime() - startedAt.getTime()) / 1000,
        flavor: daemon.flavor.name,
        serverVersion: identity.serverVersion,
        serverId: identity.serverId,
        ...(identity.serverUuid ? { serverUuid: identity.serverUuid } : {}),
        role: made.role,
        position: made.position,
        purged: made.purged,
        compression: request.compression,
        bytes: made.bytes,
        files: made.files,
      };
      await handle.endBackup(manifest);
      const peakRssBytes = process.resourceUsage().maxRSS * 1024;
      result = {
        name,
        dir: request.dir,
        storage: storage.url,
        engine: engine.name,
        role: made.role,
        position: made.position,
        purged: made.purged,
        files: made.files.length,
        bytes: made.bytes,
        seconds: 0,
        copySeconds: round(made.copySeconds),
        mbPerSecond: round(made.copySeconds > 0 ? made.bytes.raw / 1e6 / made.copySeconds : 0),
        peakRssBytes,
      };
    } catch (error) {
      failure = error;
      logger.error('backup failed; removing what was stored');
      try {
        await handle.abortBackup();
      } catch (cleanup) {
        keepFirstError(logger, failure, cleanup);
      }
    }
    try {
      await restoreState(daemon, original, logger);
    } catch (error) {
      keepMarker = true;
      logger.error('the instance could not be put back; the next stepback command on it retries');
      failure = keepFirstError(logger, failure, error);
    }
    if (failure !== undefined || !result) throw failure;
    result.seconds = round((performance.now() - started) / 1000);
    logger.info(
      `backup ${name} complete: ${result.files} files in ${result.seconds}s, peak memory ${Math.round(result.peakRssBytes / 1048576)} MiB`,
    );
    return result;
  } finally {
    if (!keepMarker) await lease.release();
  }
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
