import os from 'node:os';
import { backupName } from '../../core/backups.ts';
import { hint, keepFirstError, PrimaryRefusedError, switchOption } from '../../core/errors.ts';
import type { BackupManifest } from '../../core/manifest.ts';
import { MANIFEST_FORMAT_VERSION } from '../../core/manifest.ts';
import type { BackupRequest } from '../../core/operations/backup.ts';
import { keyspaceAndShard } from '../../core/paths.ts';
import type { BackupStorage } from '../../core/storage/types.ts';
import type { BackupEngine, EngineContext } from '../engines/engine.ts';
import { onlineBackupEngine } from '../engines/online/backup.ts';
import { physicalBackupEngine } from '../engines/physical/backup.ts';
import { reachedPhase } from '../instance/fault.ts';
import { changeInstance } from '../instance/lifecycle.ts';
import { queryValue } from '../mysql/connection.ts';
import type { MysqlDaemon } from '../mysqld/daemon.ts';
import { openInstance, withRequestStorage } from './open.ts';
import type { OperationContext, RequestOf } from './operation.ts';

export const backupEngines: Record<BackupRequest['engine'], BackupEngine> = {
  physical: physicalBackupEngine,
  online: onlineBackupEngine,
};

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
  /** Tables whose rows and checksum were recorded, and the seconds that took (writes stopped); absent when turned off. */
  evidence?: { tables: number; seconds: number };
  /** Raw megabytes (10^6) copied per second of copying. */
  mbPerSecond: number;
  /** Peak resident memory of the agent process. */
  peakRssBytes: number;
}

/**
 * A primary with replicas attached serves writes: a cold backup would stop them for the whole copy.
 * It is refused unless asked for; a primary without replicas (a single instance) is backed up.
 */
async function refuseServingPrimary(daemon: MysqlDaemon): Promise<void> {
  const replicas = await daemon.withConnection((connection) => daemon.flavor.attachedReplicas(connection));
  if (replicas > 0) {
    throw new PrimaryRefusedError(
      `${daemon.config.defaultsFile} is a primary with ${replicas} replica(s) attached: a backup would stop its writes until the copy ends; nothing was changed`,
      {
        hint: hint`back up one of its replicas, or pass ${switchOption('allowPrimary')} to stop the primary's writes anyway`,
      },
    );
  }
}

/**
 * Backs an instance up: holds it, lets the engine copy it into a new backup, writes the MANIFEST
 * last, and always puts the instance back as found (running, read_only, replication). On failure
 * the partial backup is removed and the first error is thrown; cleanup errors are logged.
 */
export async function backupInstance(
  daemon: MysqlDaemon,
  storage: BackupStorage,
  request: BackupRequest,
  context: EngineContext,
): Promise<BackupResult> {
  const { logger } = context;
  const engine = backupEngines[request.engine];
  const started = performance.now();
  const startedAt = new Date();
  const result = await changeInstance(
    daemon,
    {
      operation: 'backup',
      logger,
      needsRunning: 'a backup reads the replication position from the running server',
    },
    async ({ original }) => {
      // The online engine never stops writes: a serving primary is what it is for.
      if (request.engine === 'physical' && !original.replication.configured && !request.allowPrimary) {
        await refuseServingPrimary(daemon);
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
      logger.info(`backing up ${daemon.config.datadir} to ${storage.url} ${request.dir}/${name}`);
      try {
        const made = await engine.executeBackup({
          ...context,
          daemon,
          handle,
          original,
          compression: request.compression,
          concurrency: request.concurrency,
          slowShutdown: request.slowShutdown,
          evidence: request.evidence,
          partSize: request.partSize,
          keepReplicaApplying: request.keepReplicaApplying,
          serverVersion: identity.serverVersion,
        });
        reachedPhase('backup:copied');
        const finishedAt = new Date();
        const manifest: BackupManifest = {
          formatVersion: MANIFEST_FORMAT_VERSION,
          ...made.contents,
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
          ...(made.evidence ? { evidence: made.evidence } : {}),
        };
        await handle.endBackup(manifest);
        return {
          name,
          dir: request.dir,
          storage: storage.url,
          engine: engine.name,
          role: made.role,
          position: made.position,
          purged: made.purged,
          files: made.contents.files.length,
          bytes: made.bytes,
          seconds: 0,
          copySeconds: round(made.copySeconds),
          ...(made.evidence
            ? { evidence: { tables: made.evidence.tables.length, seconds: made.evidence.seconds } }
            : {}),
          mbPerSecond: round(made.copySeconds > 0 ? made.bytes.raw / 1e6 / made.copySeconds : 0),
          peakRssBytes: process.resourceUsage().maxRSS * 1024,
        };
      } catch (error) {
        logger.error('backup failed; removing what was stored');
        await handle.abortBackup().catch((cleanup: unknown) => keepFirstError(logger, error, cleanup));
        throw error;
      }
    },
  );
  result.seconds = round((performance.now() - started) / 1000);
  logger.info(
    `backup ${result.name} complete: ${result.files} files in ${result.seconds}s, peak memory ${Math.round(result.peakRssBytes / 1048576)} MiB`,
  );
  return result;
}

/** `stepback backup`, and a state machine's backup task. */
export function runBackup(request: RequestOf<'backup'>, context: OperationContext): Promise<BackupResult> {
  return withRequestStorage(request, context, async (storage) =>
    backupInstance(await openInstance(request, context.logger), storage, request, context),
  );
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
