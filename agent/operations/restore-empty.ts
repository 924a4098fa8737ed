import { ExistingDataError, type NoBackupError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import { reachedPhase } from '../instance/fault.ts';
import type { InstanceLease } from '../instance/lease.ts';
import { writeLocalMetadata } from '../instance/metadata.ts';
import { replicateFrom } from '../instance/replication.ts';
import { captureState, type InstanceState } from '../instance/state.ts';
import type { ReplicationSource } from '../mysql/flavor.ts';
import type { MysqlDaemon } from '../mysqld/daemon.ts';

/**
 * Writes the local metadata a restore was asked for even though it restores nothing (no backup, or
 * data already there), as the seed does before ErrNoBackup / ErrExistingDB: the host's role is known
 * whatever the data. A stopped instance is started for it (without replication) and stopped again by
 * the lifecycle. Returns whether anything was written.
 */
export async function keepLocalMetadata(
  daemon: MysqlDaemon,
  original: InstanceState,
  entries: Readonly<Record<string, string>>,
  logger: Logger,
): Promise<boolean> {
  if (Object.keys(entries).length === 0) return false;
  if (!original.running && !(await daemon.isRunning())) {
    await daemon.start([daemon.flavor.skipReplicationStartOption(daemon.binaries.version)]);
  }
  await daemon.withConnection((connection) => writeLocalMetadata(connection, entries));
  logger.info(`local metadata written (${Object.keys(entries).join(', ')}) although nothing was restored`);
  return true;
}

/** What `restore --allow-empty` did when there was no backup. */
export interface StartedEmpty {
  startedEmpty: true;
  dir: string;
  storage: string;
  /** Why nothing was restored: the no-backup message. */
  reason: string;
  /** The instance's own executed GTID set (empty on a new instance). */
  position: string;
  localMetadataWritten: boolean;
  replication?: { source: string; caughtUpTo: string };
  seconds: number;
}

export interface StartEmptyOptions {
  dir: string;
  storageUrl: string;
  localMetadata: Readonly<Record<string, string>>;
  replicateFrom?: ReplicationSource | undefined;
  replicationTimeoutSeconds: number;
  /** The user databases the instance holds: an empty start refuses any. */
  existing: readonly string[];
  logger: Logger;
  signal: AbortSignal;
  started: number;
}

/**
 * No backup exists yet (a new shard): the instance starts empty, as the shard's first replica does,
 * with its local metadata, and replicates from the primary from the start of its binary logs when
 * asked. An instance that holds user data is not empty: refused, after writing the metadata.
 */
export async function startEmpty(
  daemon: MysqlDaemon,
  held: { original: InstanceState; lease: InstanceLease },
  noBackup: NoBackupError,
  options: StartEmptyOptions,
): Promise<StartedEmpty> {
  const { logger } = options;
  if (options.existing.length > 0) {
    await keepLocalMetadata(daemon, held.original, options.localMetadata, logger);
    throw new ExistingDataError(
      `${noBackup.message}, and --allow-empty starts only an instance without user data; ${daemon.config.datadir} holds ${options.existing.slice(0, 10).join(', ')}`,
      { hint: 'restore a backup into it instead (once one exists), or drop those databases first' },
    );
  }
  logger.warn(`${noBackup.message}: starting the instance empty (--allow-empty)`);
  if (!(await daemon.isRunning())) await daemon.start();
  const localMetadataWritten = await keepLocalMetadata(daemon, held.original, options.localMetadata, logger);
  reachedPhase('restore:started-empty');
  let replication: StartedEmpty['replication'];
  if (options.replicateFrom) {
    await daemon.withConnection((connection) => daemon.flavor.resetReplication(connection));
    const { caughtUpTo } = await replicateFrom(daemon, options.replicateFrom, {
      timeoutSeconds: options.replicationTimeoutSeconds,
      logger,
      signal: options.signal,
    });
    replication = { source: `${options.replicateFrom.host}:${options.replicateFrom.port}`, caughtUpTo };
  }
  // Started (and replicating) is the state to keep now, not the stopped one found.
  await held.lease.record({ original: await captureState(daemon) });
  const position = await daemon.withConnection((connection) => daemon.flavor.executedPosition(connection));
  return {
    startedEmpty: true,
    dir: options.dir,
    storage: options.storageUrl,
    reason: noBackup.message,
    position,
    localMetadataWritten,
    ...(replication ? { replication } : {}),
    seconds: Math.round((performance.now() - options.started) / 10) / 100,
  };
}
