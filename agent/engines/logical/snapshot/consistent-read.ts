import { setTimeout as sleep } from 'node:timers/promises';
import { StepbackError, VerificationError } from '../../../../core/errors.ts';
import type { Logger } from '../../../../core/log.ts';
import { reachedPhase } from '../../../instance/fault.ts';
import type { InstanceState, Quiesced } from '../../../instance/state.ts';
import { type Connection, queryRows } from '../../../mysql/connection.ts';
import type { MysqlDaemon } from '../../../mysqld/daemon.ts';

/**
 * How long FLUSH TABLES WITH READ LOCK may wait for running statements (lock_wait_timeout, whole
 * seconds): writes, and on MySQL long reads too (MariaDB 10.11 does not wait for reads; both
 * measured). Writes queue behind it while it waits, so such a statement costs each try at most this
 * much; then writes flow for `LOCK_RETRY_PAUSE_MS` and it tries again.
 */
const LOCK_WAIT_SECONDS = 1;
const LOCK_TRIES = 5;
const LOCK_RETRY_PAUSE_MS = 2000;

/** A connection lent to one table's dump, and how to give it back. */
export interface LentConnection {
  connection: Connection;
  /** Returns it: a snapshot session goes back to the pool, a plain connection is closed. */
  giveBack(): Promise<void>;
}

/** What was held to open the sessions, for how long: the snapshot result reports it. */
export interface Held {
  what: 'writes' | 'replication' | 'nothing';
  seconds: number;
}

/**
 * Connections that each run `START TRANSACTION WITH CONSISTENT SNAPSHOT`, all opened while nothing
 * could commit: every table read through them is read as of `quiesced.position`.
 */
export class SnapshotSessions {
  readonly #free: Connection[];
  readonly #all: Connection[];
  readonly #waiting: ((connection: Connection) => void)[] = [];

  constructor(connections: Connection[]) {
    this.#all = connections;
    this.#free = [...connections];
  }

  /** A session for one table's dump; waits when all of them are lent out. */
  async lend(): Promise<LentConnection> {
    const connection =
      this.#free.pop() ?? (await new Promise<Connection>((resolve) => this.#waiting.push(resolve)));
    return {
      connection,
      giveBack: async () => {
        const next = this.#waiting.shift();
        if (next) next(connection);
        else this.#free.push(connection);
      },
    };
  }

  /** Ends every transaction (they only read) and closes the connections. */
  async close(): Promise<void> {
    await Promise.all(this.#all.map((c) => c.end().catch(() => c.destroy())));
  }
}

/** Base tables of `database` among `tables` whose engine has no consistent read (not InnoDB), by name. */
export async function nonTransactionalTables(
  connection: Connection,
  database: string,
  tables: readonly string[],
): Promise<{ name: string; engine: string }[]> {
  const rows = await queryRows<{ name: string; engine: string | null }>(
    connection,
    "SELECT TABLE_NAME AS name, ENGINE AS engine FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
    [database],
  );
  const wanted = new Set(tables);
  return rows
    .filter((row) => wanted.has(row.name) && String(row.engine).toLowerCase() !== 'innodb')
    .map((row) => ({ name: row.name, engine: String(row.engine) }));
}

export interface OpenSessionsOptions {
  /** Sessions to open: one per table dumped at once. */
  count: number;
  logger: Logger;
  /** A replica: leave replication stopped afterwards (the caller records that as the state to keep). */
  keepReplicationStopped: boolean;
}

/**
 * Opens `count` consistent-snapshot sessions at one position and reads it, holding the instance only
 * while they open: a primary under FLUSH TABLES WITH READ LOCK (no commit can land between two
 * sessions), a replica with replication stopped (the position read before and after the sessions
 * opened must be the same: a direct write would put them at different points).
 */
export async function openSnapshotSessions(
  daemon: MysqlDaemon,
  state: InstanceState,
  options: OpenSessionsOptions,
): Promise<{ sessions: SnapshotSessions; quiesced: Quiesced; held: Held }> {
  const { logger } = options;
  const connections: Connection[] = [];
  const control = await daemon.connect();
  try {
    for (let i = 0; i < options.count; i++) {
      const connection = await daemon.connect();
      connections.push(connection);
      // WITH CONSISTENT SNAPSHOT opens a read view only under REPEATABLE READ; TIMESTAMPs are dumped in UTC.
      await connection.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      await connection.query("SET SESSION time_zone = '+00:00'");
    }
    const startTransactions = () =>
      Promise.all(connections.map((c) => c.query('START TRANSACTION WITH CONSISTENT SNAPSHOT')));
    const { flavor } = daemon;
    let held: Held;
    let position: string;
    let purged: string;
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    if (state.replication.configured) {
      const stop = state.replication.running;
      if (stop) {
        logger.info('stopping replication while the snapshot sessions open');
        await flavor.stopReplication(control);
      }
      try {
        reachedPhase('snapshot:quiesced');
        position = await flavor.executedPosition(control);
        await startTransactions();
        const after = await flavor.executedPosition(control);
        if (after !== position) {
          throw new VerificationError(
            `the position moved from ${position || '(empty)'} to ${after} while the snapshot sessions opened on a replica with replication stopped: something writes to it directly`,
            { hint: 'make the replica read-only (super_read_only on MySQL), or snapshot the primary' },
          );
        }
        purged = await flavor.purgedPosition(control);
      } finally {
        if (stop && !options.keepReplicationStopped) await flavor.startReplication(control);
      }
      held = { what: stop ? 'replication' : 'nothing', seconds: stop ? seconds() : 0 };
    } else {
      logger.info('holding writes (FLUSH TABLES WITH READ LOCK) while the snapshot sessions open');
      const failedTriesSeconds = await lockWrites(control, logger);
      const locked = performance.now();
      try {
        reachedPhase('snapshot:quiesced');
        await startTransactions();
        position = await flavor.executedPosition(control);
        purged = await flavor.purgedPosition(control);
      } finally {
        await control.query('UNLOCK TABLES');
      }
      // Writes also queued behind each try that gave up.
      held = { what: 'writes', seconds: failedTriesSeconds + (performance.now() - locked) / 1000 };
    }
    logger.info(
      `snapshot sessions opened at ${position || '(empty)'}; ${held.what} held ${held.seconds.toFixed(3)}s`,
    );
    return {
      sessions: new SnapshotSessions(connections),
      quiesced: { role: state.replication.configured ? 'replica' : 'primary', position, purged },
      held,
    };
  } catch (error) {
    await Promise.all(connections.map((c) => c.end().catch(() => c.destroy())));
    throw error;
  } finally {
    await control.end().catch(() => control.destroy());
  }
}

/**
 * FLUSH TABLES WITH READ LOCK on `control`, giving up on each try after LOCK_WAIT_SECONDS (a running
 * statement keeps it waiting, and every write behind it): writes flow between tries. Returns how
 * long the tries that gave up held writes.
 */
async function lockWrites(control: Connection, logger: Logger): Promise<number> {
  await control.query(`SET SESSION lock_wait_timeout = ${LOCK_WAIT_SECONDS}`);
  let failedSeconds = 0;
  for (let attempt = 1; ; attempt++) {
    const started = performance.now();
    try {
      await control.query('FLUSH TABLES WITH READ LOCK');
      return failedSeconds;
    } catch (error) {
      const errno = (error as { errno?: number }).errno;
      if (errno === 1227) {
        throw new StepbackError(`FLUSH TABLES WITH READ LOCK was refused: ${(error as Error).message}`, {
          cause: error,
          hint: "grant RELOAD to the agent's user (see the grants in docs/first-backup.md), or pass --stop-for-dump to quiesce for the whole dump instead",
        });
      }
      if (errno !== 1205) throw error;
      failedSeconds += (performance.now() - started) / 1000;
      if (attempt === LOCK_TRIES) {
        throw new StepbackError(
          `FLUSH TABLES WITH READ LOCK waited ${LOCK_WAIT_SECONDS}s for running statements ${LOCK_TRIES} times and gave up each time, so no write stayed held longer`,
          {
            cause: error,
            hint: 'a long write statement (on MySQL also a long read) keeps it waiting: run the snapshot again once it has ended, or snapshot a replica',
          },
        );
      }
      logger.warn(
        `FLUSH TABLES WITH READ LOCK waited ${LOCK_WAIT_SECONDS}s for a running statement; writes flow again, trying again (${attempt}/${LOCK_TRIES})`,
      );
      await sleep(LOCK_RETRY_PAUSE_MS);
    }
  }
}
