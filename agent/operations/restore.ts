import { chooseBackup } from '../../core/backups.ts';
import { readBinlogArchive } from '../../core/binlogs/catalog.ts';
import { backupAfterPoint, planBinlogs, type RestorePoint } from '../../core/binlogs/plan.ts';
import {
  ExistingDataError,
  FieldError,
  hint,
  messageOf,
  NoBackupError,
  StepbackError,
  switchOption,
} from '../../core/errors.ts';
import type { OnlineManifest, PhysicalManifest } from '../../core/manifest.ts';
import type { RestoreRequest } from '../../core/operations/restore.ts';
import type { BackupStorage } from '../../core/storage/types.ts';
import { applyBinlogs, type PointInTimeResult } from '../binlogs/apply.ts';
import type { EngineContext, EngineRestore, RestoreParams } from '../engines/engine.ts';
import { onlineRestoreEngine } from '../engines/online/restore.ts';
import { databasesWithFiles } from '../engines/physical/files.ts';
import { dataLayout } from '../engines/physical/layout.ts';
import { physicalRestoreEngine } from '../engines/physical/restore.ts';
import { isUserDatabase, userDatabasesWithTables } from '../instance/databases.ts';
import { changeInstance } from '../instance/lifecycle.ts';
import { replicateFrom } from '../instance/replication.ts';
import type { ReplicationSource } from '../mysql/flavor.ts';
import type { MysqlDaemon } from '../mysqld/daemon.ts';
import { openInstance, withRequestStorage } from './open.ts';
import type { OperationContext, RequestOf } from './operation.ts';
import { keepLocalMetadata, type StartedEmpty, startEmpty } from './restore-empty.ts';

/** The engine that restores a backup of `params.manifest`'s engine. */
function executeRestore(params: RestoreParams): Promise<EngineRestore> {
  const { manifest } = params;
  return manifest.engine === 'online'
    ? onlineRestoreEngine.executeRestore({ ...params, manifest })
    : physicalRestoreEngine.executeRestore({ ...params, manifest });
}

/** What the restore itself needs once the request's secrets are read. */
export interface RestoreOptions {
  dir: string;
  /** A named backup; default the newest complete one. */
  backup?: string | undefined;
  deleteBeforeRestore: boolean;
  concurrency: number;
  localMetadata: Readonly<Record<string, string>>;
  replicateFrom?: ReplicationSource | undefined;
  /** How long to wait for the restored instance to catch up with replicateFrom. */
  replicationTimeoutSeconds: number;
  /** No backup in `dir` (and none named): start the instance empty instead of failing. */
  allowEmpty?: boolean | undefined;
  /** Then replay the archived binary logs up to this point. */
  point?: RestorePoint | undefined;
}

/** What a restore did: restored a backup, or (--allow-empty, no backup yet) started the instance empty. */
export type RestoreResult = RestoredBackup | StartedEmpty;

export interface RestoredBackup {
  startedEmpty: false;
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
  /** User databases the restore replaced (with deleteBeforeRestore). */
  replacedDatabases: string[];
  replication?: { source: string; caughtUpTo: string };
  /** With a point: the binary logs replayed after the backup, and where they stopped. */
  pointInTime?: PointInTimeResult;
  seconds: number;
  downloadSeconds: number;
  swapSeconds: number;
  peakRssBytes: number;
}

/** The user databases an instance holds: asked of the server when it runs, read from the datadir when not. */
export async function userDatabases(daemon: MysqlDaemon, running: boolean): Promise<string[]> {
  if (running) return daemon.withConnection(userDatabasesWithTables);
  return (await databasesWithFiles(dataLayout(daemon.config))).filter(isUserDatabase);
}

export function checkCompatible(daemon: MysqlDaemon, manifest: PhysicalManifest | OnlineManifest): void {
  if (manifest.flavor !== daemon.flavor.name) {
    throw new StepbackError(
      `backup ${manifest.name} is a ${manifest.flavor} backup and this instance runs ${daemon.flavor.name}`,
      { hint: 'a physical copy restores only onto the same server; choose another backup or instance' },
    );
  }
}

/**
 * Restores a backup into an instance: chooses the backup (NO_BACKUP when none), refuses to replace
 * user data unless asked (EXISTING_DATA), lets the engine stage, verify and swap the files (the
 * instance is left as found on any failure before the swap, and its old files are put back on a
 * failure during it), then optionally replicates from a primary until caught up.
 */
export async function restoreInstance(
  daemon: MysqlDaemon,
  storage: BackupStorage,
  options: RestoreOptions,
  context: EngineContext,
): Promise<RestoreResult> {
  const { logger } = context;
  const started = performance.now();
  return changeInstance(daemon, { operation: 'restore', logger }, async ({ original, lease }) => {
    const { point } = options;
    let chosen: Awaited<ReturnType<typeof chooseBackup>>;
    try {
      chosen = await chooseBackup(
        storage,
        options.dir,
        { name: options.backup, ...(point ? { skipIf: (m) => backupAfterPoint(m, point) } : {}) },
        logger,
      );
    } catch (error) {
      if (!(error instanceof NoBackupError)) throw error;
      if (options.allowEmpty && options.backup === undefined) {
        return startEmpty(daemon, { original, lease }, error, {
          dir: options.dir,
          storageUrl: storage.url,
          localMetadata: options.localMetadata,
          replicateFrom: options.replicateFrom,
          replicationTimeoutSeconds: options.replicationTimeoutSeconds,
          existing: await userDatabases(daemon, original.running),
          logger,
          signal: context.signal,
          started,
        });
      }
      await keepLocalMetadata(daemon, original, options.localMetadata, logger);
      throw error;
    }
    const { manifest } = chosen;
    if (manifest.engine === 'logical') {
      throw new StepbackError(`backup ${options.dir}/${manifest.name} is a ${manifest.engine} snapshot`, {
        hint: 'restore snapshots with stepback multirestore; restore takes physical and online backups',
      });
    }
    checkCompatible(daemon, manifest);
    const existing = await userDatabases(daemon, original.running);
    if (existing.length > 0 && !options.deleteBeforeRestore) {
      await keepLocalMetadata(daemon, original, options.localMetadata, logger);
      throw new ExistingDataError(
        `${daemon.config.datadir} holds user data (${existing.slice(0, 10).join(', ')}${existing.length > 10 ? ', …' : ''}); nothing was changed`,
        { hint: hint`pass ${switchOption('deleteBeforeRestore')} to replace it with the backup` },
      );
    }
    // A point the archive cannot reach from this backup is refused before anything is touched.
    const binlogs = point ? planBinlogs(await readBinlogArchive(storage, options.dir), manifest, point) : [];
    logger.info(
      `restoring ${options.dir}/${manifest.name} (${manifest.files.length} files, position ${manifest.position || '(empty)'}) into ${daemon.config.datadir}`,
    );
    const restored = await executeRestore({
      ...context,
      daemon,
      handle: chosen.handle,
      manifest,
      lease,
      concurrency: options.concurrency,
      localMetadata: options.localMetadata,
    });

    let pointInTime: PointInTimeResult | undefined;
    if (point) {
      try {
        pointInTime = await applyBinlogs(daemon, binlogs, manifest.position, point, context);
      } catch (error) {
        // The error keeps its own code (a corrupt archived file is still HASH_MISMATCH).
        logger.error(
          `backup ${manifest.name} was restored, but replaying the binary logs after it failed: the instance holds the backup and part of the binary logs; fix the cause and run the same restore again with --delete-before-restore`,
          { error: messageOf(error) },
        );
        throw error;
      }
    }

    let replication: RestoreResult['replication'];
    if (options.replicateFrom) {
      const { caughtUpTo } = await replicateFrom(daemon, options.replicateFrom, {
        timeoutSeconds: options.replicationTimeoutSeconds,
        logger,
        signal: context.signal,
      });
      replication = { source: `${options.replicateFrom.host}:${options.replicateFrom.port}`, caughtUpTo };
    }
    return {
      startedEmpty: false,
      backup: manifest.name,
      dir: options.dir,
      storage: storage.url,
      engine: manifest.engine,
      position: pointInTime?.position ?? manifest.position,
      files: restored.files,
      bytes: restored.bytes,
      skipped: chosen.skipped,
      replacedDatabases: existing,
      ...(replication ? { replication } : {}),
      ...(pointInTime ? { pointInTime } : {}),
      seconds: round((performance.now() - started) / 1000),
      downloadSeconds: round(restored.downloadSeconds),
      swapSeconds: round(restored.swapSeconds),
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
    };
  });
}

/** The replication password, from the variable the request names (secrets never travel as values). */
function replicationPassword(request: RestoreRequest, context: OperationContext): string {
  const variable = request.replicateFrom?.passwordEnv;
  if (variable === undefined) return '';
  const value = context.env.variable(variable);
  if (value === undefined) {
    throw new FieldError(['replicateFrom', 'passwordEnv'], `the variable ${variable} is not set`, {
      hint: 'set it in the environment of the agent (on hosts: the agent environment file)',
    });
  }
  return value;
}

/** `stepback restore`, and a state machine's restore task. */
export function runRestore(request: RequestOf<'restore'>, context: OperationContext): Promise<RestoreResult> {
  const password = replicationPassword(request, context);
  return withRequestStorage(request, context, async (storage) =>
    restoreInstance(
      await openInstance(request, context.logger),
      storage,
      {
        dir: request.dir,
        backup: request.backup,
        deleteBeforeRestore: request.deleteBeforeRestore,
        concurrency: request.concurrency,
        localMetadata: request.localMetadata,
        replicateFrom: request.replicateFrom
          ? {
              host: request.replicateFrom.host,
              port: request.replicateFrom.port,
              user: request.replicateFrom.user,
              password,
            }
          : undefined,
        replicationTimeoutSeconds: request.replicationTimeout,
        allowEmpty: request.allowEmpty,
        point:
          request.toTime !== undefined
            ? { time: new Date(request.toTime) }
            : request.toGtid !== undefined
              ? { gtid: request.toGtid }
              : undefined,
      },
      context,
    ),
  );
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
