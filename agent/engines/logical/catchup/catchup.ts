import { StepbackError } from '../../../../core/errors.ts';
import { type GtidPosition, gtidPosition } from '../../../../core/gtid-position.ts';
import type { Logger } from '../../../../core/log.ts';
import { reachedPhase } from '../../../instance/fault.ts';
import type { Connection } from '../../../mysql/connection.ts';
import { flavorNamed } from '../../../mysql/flavor.ts';
import type { Progress } from '../../../report/reporter.ts';
import { applyChanges, type RowChange, storePosition } from './destination.ts';
import type { RowRouter } from './routing.ts';
import type { SourceServer } from './settings.ts';
import { statementText, touchesCopiedTable } from './statements.ts';
import type { BinlogStream, SourceEvent } from './stream.ts';

export interface CatchupLoopOptions {
  /** The destination session the rows and the position are written on. */
  destination: Connection;
  database: string;
  sourceIndex: number;
  /** Where the destination is: the checkpoint's position. */
  start: string;
  /** A plain connection to the source, for its current position. */
  sourceControl: Connection;
  sourceServer: SourceServer;
  sourceDatabase: string;
  stream: BinlogStream;
  router: RowRouter;
  until: string | undefined;
  maxLagSeconds: number;
  timeoutSeconds: number | undefined;
  logger: Logger;
  progress: (update: Progress) => void;
  signal: AbortSignal;
}

export interface CatchupOutcome {
  /** The position applied and stored in the destination. */
  position: string;
  /** Rows written or deleted in the destination. */
  rowsApplied: number;
  /** Source transactions read (applied or with nothing for this destination). */
  transactions: number;
  /** How far behind the source the destination was when it stopped. */
  lagSeconds: number;
  stoppedAt: 'position' | 'lag';
}

/** Changes held before they are committed with their position. */
const BATCH_ROWS = 2000;
const IDLE_WAIT_MS = 200;
/** How often the source's own position is read while idle or behind. */
const SOURCE_POSITION_EVERY_MS = 1000;

/**
 * Applies the stream to the destination until `until` is applied, or (without it) until the lag is
 * at most `maxLagSeconds`. Whole source transactions are committed together with the position they
 * reach, so a killed run resumes from the last commit with nothing lost and nothing twice.
 */
export async function catchUp(options: CatchupLoopOptions): Promise<CatchupOutcome> {
  const { destination, stream, router, logger } = options;
  const flavor = flavorNamed(options.sourceServer.flavor);
  let position: GtidPosition;
  try {
    position = gtidPosition(flavor.name, options.start);
  } catch {
    throw new StepbackError(
      `the checkpoint position ${JSON.stringify(options.start)} is not a ${flavor.name} position, but the source is ${options.sourceServer.version}`,
      { hint: 'catch up from a server of the shard the snapshot was taken from' },
    );
  }
  let stored = position.toString();
  const batch: RowChange[] = [];
  let current: RowChange[] = [];
  let rowsApplied = 0;
  let transactions = 0;
  let lastCommitMs: number | undefined;
  let sourcePosition = { value: '', readAt: 0 };

  const flush = async () => {
    const text = position.toString();
    if (batch.length === 0 && text === stored) return;
    await destination.query('START TRANSACTION');
    try {
      await applyChanges(destination, options.database, batch);
      await storePosition(destination, options.database, options.sourceIndex, text);
      await destination.query('COMMIT');
    } catch (error) {
      await destination.query('ROLLBACK').catch(() => {});
      throw error;
    }
    reachedPhase('catchup:applying');
    rowsApplied += batch.length;
    batch.length = 0;
    stored = text;
    // One phase for the whole run, so the reporter throttles it: rows applied, source transactions read.
    options.progress({
      phase: `catching up ${options.database}`,
      rowsDone: rowsApplied,
      itemsDone: transactions,
    });
  };

  const lagSeconds = async (): Promise<number> => {
    if (stream.waiting === 0) {
      if (Date.now() - sourcePosition.readAt >= SOURCE_POSITION_EVERY_MS) {
        sourcePosition = { value: await flavor.binlogPosition(options.sourceControl), readAt: Date.now() };
      }
      if (position.covers(sourcePosition.value)) return 0;
    }
    return lastCommitMs === undefined
      ? Number.POSITIVE_INFINITY
      : Math.max(0, (Date.now() - lastCommitMs) / 1000);
  };

  const reached = async (): Promise<{ lag: number; stop: 'position' | 'lag' } | undefined> => {
    if (options.until !== undefined) {
      return position.covers(options.until) ? { lag: await lagSeconds(), stop: 'position' } : undefined;
    }
    const lag = await lagSeconds();
    return lag <= options.maxLagSeconds ? { lag, stop: 'lag' } : undefined;
  };

  const commit = (gtid: string, timestamp: number) => {
    batch.push(...current);
    current = [];
    if (gtid) position.add(gtid);
    lastCommitMs = timestamp;
    transactions++;
  };

  const deadline =
    options.timeoutSeconds === undefined ? undefined : Date.now() + options.timeoutSeconds * 1000;
  let done = await reached();
  while (!done) {
    options.signal.throwIfAborted();
    if (deadline !== undefined && Date.now() > deadline) {
      await flush();
      throw new StepbackError(
        `catch-up of ${options.database} did not reach ${options.until ?? `a lag of ${options.maxLagSeconds}s`} within ${options.timeoutSeconds}s; it applied up to ${stored}`,
        { hint: 'run it again to continue from there (the position is stored), or allow a longer time' },
      );
    }
    const event: SourceEvent | undefined = await stream.next(IDLE_WAIT_MS);
    if (!event) {
      await flush();
      done = await reached();
      continue;
    }
    switch (event.type) {
      case 'begin':
        current = [];
        break;
      case 'insert':
      case 'update':
      case 'delete':
        router.route(event, current);
        break;
      case 'commit':
        commit(event.gtid, event.timestamp);
        break;
      case 'statement':
        if (touchesCopiedTable(event.query, event.schema, options.sourceDatabase, router.tableNames)) {
          current = [];
          await flush();
          throw new StepbackError(
            `the source ran a statement on a copied table during catch-up: ${statementText(event.query)} (transaction ${event.gtid}); the destination stays at ${stored}`,
            {
              hint: 'catch-up copies rows, not schema changes: make the same change on the destination, or take a new snapshot after it and load that',
            },
          );
        }
        if (event.standalone) commit(event.gtid, event.timestamp);
        break;
    }
    if (event.type !== 'commit' && !(event.type === 'statement' && event.standalone)) continue;
    // Stopping at a position commits exactly up to it; otherwise batches are cut by size or a drained queue.
    const atUntil = options.until !== undefined && position.covers(options.until);
    if (atUntil || batch.length >= BATCH_ROWS || stream.waiting === 0) {
      await flush();
      done = await reached();
    }
  }
  await flush();
  logger.info(`caught up ${options.database} to ${stored}: ${rowsApplied} rows applied`);
  return { position: stored, rowsApplied, transactions, lagSeconds: done.lag, stoppedAt: done.stop };
}
