import { randomInt } from 'node:crypto';
import { FieldError, StepbackError } from '../../core/errors.ts';
import { KeyRange } from '../../core/keyrange.ts';
import type { CatchupRequest } from '../../core/operations/catchup.ts';
import { type CatchupOutcome, catchUp } from '../engines/logical/catchup/catchup.ts';
import {
  type Checkpoint,
  destinationTables,
  readCheckpoints,
} from '../engines/logical/catchup/destination.ts';
import { RowRouter } from '../engines/logical/catchup/routing.ts';
import { checkSourceBinlog } from '../engines/logical/catchup/settings.ts';
import { BinlogStream } from '../engines/logical/catchup/stream.ts';
import { prepareSession } from '../engines/logical/multirestore/sessions.ts';
import { changeInstance } from '../instance/lifecycle.ts';
import { type ConnectionTarget, connect, parseMysqlUri } from '../mysql/connection.ts';
import type { MysqlDaemon } from '../mysqld/daemon.ts';
import { openInstance } from './open.ts';
import type { OperationContext, RequestOf } from './operation.ts';

export interface CatchupResult extends CatchupOutcome {
  database: string;
  /** The snapshot the checkpoint names (`dir@name`) and its place among the multirestore's sources. */
  source: string;
  sourceIndex: number;
  /** Where this run started. */
  startPosition: string;
  /**
   * Copied tables with an AUTO_INCREMENT column: once the destination takes writes it allocates ids
   * on its own, so set auto_increment_increment/offset per shard, or ids collide across shards.
   */
  autoIncrementTables: string[];
  seconds: number;
}

/** The checkpoint row this run continues: the one asked for, or the only one. */
function chooseCheckpoint(checkpoints: Checkpoint[], request: CatchupRequest): Checkpoint {
  if (checkpoints.length === 0) {
    throw new StepbackError(`database ${request.database} has no checkpoint to catch up from`, {
      hint: 'load it with multirestore --checkpoints (the snapshot position becomes the starting point)',
    });
  }
  if (request.sourceIndex === undefined) {
    if (checkpoints.length > 1) {
      throw new FieldError(
        ['sourceIndex'],
        `${request.database} was loaded from ${checkpoints.length} sources (${checkpoints.map((c) => `${c.sourceIndex}: ${c.source}`).join(', ')}): say which one this source is`,
      );
    }
    return checkpoints[0]!;
  }
  const chosen = checkpoints.find((c) => c.sourceIndex === request.sourceIndex);
  if (!chosen) {
    throw new FieldError(
      ['sourceIndex'],
      `${request.database} has no checkpoint ${request.sourceIndex} (it has ${checkpoints.map((c) => c.sourceIndex).join(', ')})`,
    );
  }
  return chosen;
}

function sourceTarget(
  request: CatchupRequest,
  context: OperationContext,
): ConnectionTarget & { database: string } {
  let password: string | undefined;
  if (request.sourcePasswordEnv !== undefined) {
    password = context.env.variable(request.sourcePasswordEnv);
    if (password === undefined)
      throw new FieldError(['sourcePasswordEnv'], `${request.sourcePasswordEnv} is not set`);
  }
  const target = parseMysqlUri(request.source, password);
  if (!target.database) {
    throw new FieldError(['source'], `${request.source} names no database`, {
      hint: 'add the source database as the path: mysql://repl@db1:3306/commerce',
    });
  }
  return { ...target, database: target.database };
}

/**
 * Catches a destination up with its source: applies the source's binary log from the checkpoint to
 * `until` (or to a small lag), keeping only the destination's rows. The destination keeps serving;
 * its read-only state and replication are left as they were.
 */
export async function catchupInstance(
  daemon: MysqlDaemon,
  request: CatchupRequest,
  context: OperationContext,
): Promise<CatchupResult> {
  const started = Date.now();
  const { logger } = context;
  const source = sourceTarget(request, context);
  return changeInstance(
    daemon,
    { operation: 'catchup', logger, needsRunning: 'catch-up writes into the running server' },
    async () => {
      const destination = await daemon.connect();
      let sourceControl: Awaited<ReturnType<typeof connect>> | undefined;
      let stream: BinlogStream | undefined;
      try {
        await prepareSession(destination, { writeBinlogs: request.writeBinlogs });
        const checkpoint = chooseCheckpoint(await readCheckpoints(destination, request.database), request);
        const router = new RowRouter(
          await destinationTables(destination, request.database),
          request.keyRange === undefined || request.keyColumn === undefined
            ? undefined
            : { range: KeyRange.parse(request.keyRange), column: request.keyColumn, type: request.keyType },
        );
        sourceControl = await connect(source);
        const where = source.socket ?? `${source.host}:${source.port}`;
        const sourceServer = await checkSourceBinlog(sourceControl, where);
        logger.info(
          `catching up ${request.database} from ${where} (${checkpoint.source}) at ${checkpoint.position}`,
        );
        stream = new BinlogStream(source, {
          position: checkpoint.position,
          serverId: request.serverId ?? randomInt(1 << 30, 2 ** 31),
          database: source.database,
          tables: router.tableNames,
        });
        await stream.ready();
        const outcome = await catchUp({
          destination,
          database: request.database,
          sourceIndex: checkpoint.sourceIndex,
          start: checkpoint.position,
          sourceControl,
          sourceServer,
          sourceDatabase: source.database,
          stream,
          router,
          until: request.until,
          maxLagSeconds: request.maxLagSeconds,
          timeoutSeconds: request.timeoutSeconds,
          logger,
          progress: context.progress,
          signal: context.signal,
        });
        return {
          database: request.database,
          source: checkpoint.source,
          sourceIndex: checkpoint.sourceIndex,
          startPosition: checkpoint.position,
          ...outcome,
          autoIncrementTables: router.autoIncrementTables,
          seconds: (Date.now() - started) / 1000,
        };
      } finally {
        stream?.stop();
        await sourceControl?.end().catch(() => sourceControl?.destroy());
        await destination.end().catch(() => destination.destroy());
      }
    },
  );
}

/** `stepback catchup`, and a state machine's catch-up task. */
export async function runCatchup(
  request: RequestOf<'catchup'>,
  context: OperationContext,
): Promise<CatchupResult> {
  return catchupInstance(await openInstance(request, context.logger), request, context);
}
