import { VerificationError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import type { SnapshotRequest } from '../../core/operations/snapshot.ts';
import {
  type Held,
  nonTransactionalTables,
  openSnapshotSessions,
  type SnapshotSessions,
} from '../engines/logical/snapshot/consistent-read.ts';
import type { SourceSchema } from '../engines/logical/snapshot/schema.ts';
import { reachedPhase } from '../instance/fault.ts';
import { checkStillQuiesced, type InstanceState, type Quiesced, quiesce } from '../instance/state.ts';
import type { MysqlDaemon } from '../mysqld/daemon.ts';

/** How the snapshot got one position for every table, and why that way. */
export interface SnapshotConsistency {
  method: 'consistent-read' | 'stopped';
  why: string;
}

/** One position for every table of a snapshot, held until `finish`. */
export interface OnePosition {
  consistency: SnapshotConsistency;
  /** The schema the data is read with. */
  schema: SourceSchema;
  quiesced: Quiesced;
  /** Consistent-snapshot sessions to dump through (the consistent-read method). */
  sessions: SnapshotSessions | undefined;
  /** After the dump: checks that the data matches one schema and position; returns what was held. */
  finish(): Promise<Held>;
  /** Closes the sessions on a failure (the lifecycle puts the instance back). */
  abandon(): Promise<void>;
}

/**
 * Consistent-snapshot transactions unless asked otherwise or a table cannot be read that way: a
 * non-InnoDB table has no consistent read, so the instance is quiesced for the whole dump.
 */
async function chooseMethod(
  daemon: MysqlDaemon,
  request: SnapshotRequest,
  schema: SourceSchema,
): Promise<SnapshotConsistency> {
  if (request.stopForDump) return { method: 'stopped', why: 'asked for with --stop-for-dump' };
  const others = await daemon.withConnection((connection) =>
    nonTransactionalTables(
      connection,
      request.database,
      schema.tables.map((table) => table.name),
    ),
  );
  if (others.length > 0) {
    const named = others.map((table) => `${JSON.stringify(table.name)} (${table.engine})`).join(', ');
    return {
      method: 'stopped',
      why: `${named} ${others.length === 1 ? 'is' : 'are'} not InnoDB, which alone reads a consistent snapshot while writes go on`,
    };
  }
  return {
    method: 'consistent-read',
    why: 'every table is InnoDB: each dump session reads one consistent snapshot while the source keeps working',
  };
}

/** AUTO_INCREMENT counters move with every insert; they are not the schema. */
function schemaText(schema: SourceSchema): Map<string, string> {
  return new Map(
    [...schema.tables, ...schema.views].map((object) => [
      object.name,
      object.create.replace(/ AUTO_INCREMENT=\d+/, ''),
    ]),
  );
}

/**
 * The schema was read before the snapshot sessions opened and again after the dump: a table changed
 * in between (DDL during the snapshot) would not match its rows.
 */
function checkSameSchema(before: SourceSchema, after: SourceSchema): void {
  const a = schemaText(before);
  const b = schemaText(after);
  const changed = [...new Set([...a.keys(), ...b.keys()])].filter((name) => a.get(name) !== b.get(name));
  if (changed.length > 0) {
    throw new VerificationError(
      `the schema changed during the snapshot (${changed.map((n) => JSON.stringify(n)).join(', ')}): the data read does not match one schema`,
      { hint: 'run the snapshot again once the schema change is done' },
    );
  }
}

/**
 * Takes one position for every table, by the method `chooseMethod` picks: consistent-snapshot
 * sessions opened under a brief hold, or the instance quiesced until `finish` (its schema read again
 * once writes stopped).
 */
export async function holdOnePosition(
  daemon: MysqlDaemon,
  original: InstanceState,
  request: SnapshotRequest,
  before: SourceSchema,
  readSchema: () => Promise<SourceSchema>,
  logger: Logger,
): Promise<OnePosition> {
  const consistency = await chooseMethod(daemon, request, before);
  if (consistency.method === 'consistent-read') {
    const { sessions, quiesced, held } = await openSnapshotSessions(daemon, original, {
      count: Math.max(1, Math.min(request.concurrency, before.tables.length)),
      logger,
      keepReplicationStopped: request.keepReplicationStopped,
    });
    return {
      consistency,
      schema: before,
      quiesced,
      sessions,
      async finish() {
        await sessions.close();
        checkSameSchema(before, await readSchema());
        return held;
      },
      abandon: () => sessions.close(),
    };
  }
  logger.info(`quiescing for the whole dump: ${consistency.why}`);
  const heldSince = performance.now();
  const quiesced = await quiesce(daemon, original, logger);
  reachedPhase('snapshot:quiesced');
  return {
    consistency,
    // Read again once writes stopped: this is the schema of the data.
    schema: await readSchema(),
    quiesced,
    sessions: undefined,
    async finish() {
      await checkStillQuiesced(daemon, quiesced, {
        when: 'during the snapshot',
        meaning: 'the data is not from one point in time',
        hint: 'something wrote to the instance while it was quiesced (a user with SUPER?); run the snapshot again',
      });
      const what =
        quiesced.role === 'primary' ? 'writes' : original.replication.running ? 'replication' : 'nothing';
      return { what, seconds: (performance.now() - heldSince) / 1000 };
    },
    abandon: async () => {},
  };
}
