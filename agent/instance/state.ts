import { z } from 'zod';
import { VerificationError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import { queryValue } from '../mysql/connection.ts';
import type { MysqlDaemon } from '../mysqld/daemon.ts';

/** What an operation may change on an instance and must put back: recorded before it changes anything. */
export const InstanceState = z.object({
  running: z.boolean(),
  readOnly: z.boolean(),
  /** MySQL only; undefined on MariaDB. */
  superReadOnly: z.boolean().optional(),
  replication: z.object({
    /** The instance is a replica (has a configured primary). */
    configured: z.boolean(),
    /** Both replication threads were running. */
    running: z.boolean(),
  }),
});
export type InstanceState = z.infer<typeof InstanceState>;

/** Reads the state to restore later; a stopped instance is recorded as such. */
export async function captureState(daemon: MysqlDaemon): Promise<InstanceState> {
  if (!(await daemon.isRunning())) {
    return { running: false, readOnly: false, replication: { configured: false, running: false } };
  }
  return daemon.withConnection(async (connection) => {
    const readOnly = Number(await queryValue(connection, 'SELECT @@GLOBAL.read_only')) === 1;
    const superReadOnly =
      daemon.flavor.name === 'mysql'
        ? Number(await queryValue(connection, 'SELECT @@GLOBAL.super_read_only')) === 1
        : undefined;
    const status = await daemon.flavor.replicationStatus(connection);
    return {
      running: true,
      readOnly,
      ...(superReadOnly === undefined ? {} : { superReadOnly }),
      replication: { configured: status.configured, running: status.ioRunning && status.sqlRunning },
    };
  });
}

/** How a consistent position was obtained. */
export interface Quiesced {
  role: 'primary' | 'replica';
  /** Executed GTID set once writes stopped. */
  position: string;
  purged: string;
}

/**
 * Stops writes so the data matches one position: a replica stops replicating, a primary becomes
 * read-only. Returns that position.
 */
export async function quiesce(daemon: MysqlDaemon, state: InstanceState, logger: Logger): Promise<Quiesced> {
  return daemon.withConnection(async (connection) => {
    let role: Quiesced['role'];
    if (state.replication.configured) {
      role = 'replica';
      logger.info('stopping replication for a consistent position');
      await daemon.flavor.stopReplication(connection);
    } else {
      role = 'primary';
      logger.info('making the primary read-only for a consistent position');
      await daemon.flavor.stopWrites(connection);
    }
    return {
      role,
      position: await daemon.flavor.executedPosition(connection),
      purged: await daemon.flavor.purgedPosition(connection),
    };
  });
}

/** How a caller words a position that moved: when, what it means, what to do. */
export interface PositionMoved {
  when: string;
  meaning: string;
  hint: string;
}

/**
 * Checks that nothing wrote since `quiesced` took its position (a user whom read_only does not
 * stop): data read at another position would not match the one recorded.
 */
export async function checkStillQuiesced(
  daemon: MysqlDaemon,
  quiesced: Quiesced,
  moved: PositionMoved = {
    when: 'after writes were stopped',
    meaning: 'something still writes to the instance',
    hint: 'a user whom read_only does not stop (SUPER, READ_ONLY ADMIN) wrote; stop it, or back up a replica',
  },
): Promise<void> {
  const position = await daemon.withConnection((connection) => daemon.flavor.executedPosition(connection));
  if (position !== quiesced.position) {
    throw new VerificationError(
      `the position moved ${moved.when}, from ${quiesced.position || '(empty)'} to ${position}: ${moved.meaning}`,
      { hint: moved.hint },
    );
  }
}

/**
 * Puts the instance back as `state` recorded it: running if it ran, read_only and super_read_only as
 * they were, replication running if it ran. Each step is skipped when already so. Returns what it did.
 */
export async function restoreState(
  daemon: MysqlDaemon,
  state: InstanceState,
  logger: Logger,
): Promise<string[]> {
  const actions: string[] = [];
  if (!state.running) {
    if (await daemon.isRunning()) {
      await daemon.shutdown();
      actions.push('stopped mysqld (it was stopped before)');
    }
    return actions;
  }
  if (!(await daemon.isRunning())) {
    // A replica found with replication stopped must not start replicating with mysqld.
    const keepStopped = state.replication.configured && !state.replication.running;
    await daemon.start(
      keepStopped ? [daemon.flavor.skipReplicationStartOption(daemon.binaries.version)] : [],
    );
    actions.push('started mysqld');
  }
  await daemon.withConnection(async (connection) => {
    const readOnly = Number(await queryValue(connection, 'SELECT @@GLOBAL.read_only')) === 1;
    if (readOnly !== state.readOnly) {
      await connection.query(`SET GLOBAL read_only = ${state.readOnly ? 1 : 0}`);
      actions.push(`set read_only=${state.readOnly ? 'ON' : 'OFF'}`);
    }
    if (state.superReadOnly !== undefined) {
      const superReadOnly = Number(await queryValue(connection, 'SELECT @@GLOBAL.super_read_only')) === 1;
      if (superReadOnly !== state.superReadOnly) {
        await connection.query(`SET GLOBAL super_read_only = ${state.superReadOnly ? 1 : 0}`);
        actions.push(`set super_read_only=${state.superReadOnly ? 'ON' : 'OFF'}`);
      }
    }
    if (state.replication.running) {
      const status = await daemon.flavor.replicationStatus(connection);
      if (!(status.ioRunning && status.sqlRunning)) {
        await daemon.flavor.startReplication(connection);
        actions.push('started replication');
      }
    }
  });
  if (actions.length > 0) logger.info(`instance put back: ${actions.join(', ')}`);
  return actions;
}
