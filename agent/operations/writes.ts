import { setTimeout as sleep } from 'node:timers/promises';
import { StepbackError } from '../../core/errors.ts';
import type { WritesRequest } from '../../core/operations/writes.ts';
import { changeInstance } from '../instance/lifecycle.ts';
import { type Connection, queryValue } from '../mysql/connection.ts';
import type { MysqlDaemon } from '../mysqld/daemon.ts';
import { openInstance } from './open.ts';
import type { OperationContext, RequestOf } from './operation.ts';

export interface WritesResult {
  action: 'stop' | 'start';
  /** The primary's binary log position once writes stopped (or when they started again). */
  position: string;
  /** When writes stopped (ISO 8601), for `stop`. */
  frozenAt?: string;
  /** Transactions that had written and were still open when writes stopped: their commits fail. */
  openTransactions?: number;
}

/** Transactions of other sessions that have changed rows and not yet committed. */
async function openWriteTransactions(connection: Connection): Promise<number> {
  return Number(
    await queryValue(
      connection,
      'SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id <> CONNECTION_ID() AND trx_rows_modified > 0',
    ),
  );
}

async function waitForTransactions(
  connection: Connection,
  seconds: number,
  signal: AbortSignal,
): Promise<number> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const open = await openWriteTransactions(connection);
    if (open === 0 || Date.now() >= deadline) return open;
    // INNODB_TRX is a cache InnoDB refreshes only when it was last read over 0.1 s ago: polling
    // faster would read the same stale rows for ever.
    await sleep(150, undefined, { signal });
  }
}

/**
 * Freezes or unfreezes a primary's writes and records the new state as the one to keep. Freezing
 * waits for transactions that already wrote (so they commit before the final position rather than
 * fail), sets read_only (super_read_only on MySQL), then reads the position: every write the primary
 * acknowledged is in it.
 */
export async function writesInstance(
  daemon: MysqlDaemon,
  request: WritesRequest,
  context: OperationContext,
): Promise<WritesResult> {
  const { logger } = context;
  return changeInstance(
    daemon,
    { operation: 'writes', logger, needsRunning: 'writes are frozen on the running server' },
    async ({ original, lease }) => {
      if (original.replication.configured) {
        throw new StepbackError(
          `${daemon.config.defaultsFile} is a replica: a cutover freezes the writes of the primary`,
          {
            hint: 'name the source shard primary (sourcePrimaryHost, or the topology primary)',
          },
        );
      }
      return daemon.withConnection(async (connection) => {
        if (request.action === 'start') {
          await connection.query('SET GLOBAL read_only = 0');
          await lease.record({
            original: {
              ...original,
              readOnly: false,
              ...(original.superReadOnly === undefined ? {} : { superReadOnly: false }),
            },
          });
          logger.info('writes allowed again (read_only off)');
          return { action: 'start' as const, position: await daemon.flavor.binlogPosition(connection) };
        }
        const before = await waitForTransactions(connection, request.transactionWaitSeconds, context.signal);
        if (before > 0)
          logger.warn(
            `${before} transaction(s) still open after ${request.transactionWaitSeconds}s; freezing anyway`,
          );
        await daemon.flavor.stopWrites(connection);
        const frozenAt = new Date().toISOString();
        await lease.record({
          original: {
            ...original,
            readOnly: true,
            ...(original.superReadOnly === undefined ? {} : { superReadOnly: true }),
          },
        });
        // Setting read_only waits for commits in progress; a transaction still open cannot commit
        // its writes any more (measured on MariaDB 10.11: COMMIT fails), so the position is final.
        const openTransactions = await openWriteTransactions(connection);
        const position = await daemon.flavor.binlogPosition(connection);
        logger.info(`writes frozen at ${position}`);
        return { action: 'stop' as const, position, frozenAt, openTransactions };
      });
    },
  );
}

/** `stepback writes`, and the Reshard machine's freeze and unfreeze of the source primary. */
export async function runWrites(
  request: RequestOf<'writes'>,
  context: OperationContext,
): Promise<WritesResult> {
  return writesInstance(await openInstance(request, context.logger), request, context);
}
