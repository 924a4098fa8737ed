import os from 'node:os';
import { backupName } from '../../core/backups.ts';
import { FieldError, hint, keepFirstError, switchOption, UsageError } from '../../core/errors.ts';
import { evenKeyRanges, KeyRange, uncoveredRanges } from '../../core/keyrange.ts';
import { type BackupEvidence, EVIDENCE_METHOD } from '../../core/manifest.ts';
import type { SnapshotRequest } from '../../core/operations/snapshot.ts';
import { snapshotAddress, snapshotDir } from '../../core/storage/layout.ts';
import type { BackupHandle, BackupStorage } from '../../core/storage/types.ts';
import { mapConcurrent } from '../../core/stream/concurrency.ts';
import { checksumTables } from '../diff/table-checksum.ts';
import type { EngineContext } from '../engines/engine.ts';
import type { Held, SnapshotSessions } from '../engines/logical/snapshot/consistent-read.ts';
import { keyspaceIdRouter } from '../engines/logical/snapshot/keyspace-id.ts';
import { rangeManifest } from '../engines/logical/snapshot/manifest.ts';
import { checkKeyColumn, readSourceSchema, type SourceSchema } from '../engines/logical/snapshot/schema.ts';
import { dumpTables, snapshotRanges } from '../engines/logical/snapshot/snapshot.ts';
import { reachedPhase } from '../instance/fault.ts';
import { changeInstance } from '../instance/lifecycle.ts';
import { serverFileDirectory } from '../instance/server-files.ts';
import { type Connection, queryValue } from '../mysql/connection.ts';
import type { MysqlDaemon } from '../mysqld/daemon.ts';
import { openInstance, withRequestStorage } from './open.ts';
import type { OperationContext, RequestOf } from './operation.ts';
import { holdOnePosition, type SnapshotConsistency } from './snapshot-position.ts';

/** One key range's backup, as a snapshot result lists it. */
export interface SnapshotEntry {
  keyRange: string;
  dir: string;
  name: string;
  rows: number;
  /** Stored bytes. */
  bytes: number;
}

export interface SnapshotResult {
  snapshots: SnapshotEntry[];
  database: string;
  role: 'primary' | 'replica';
  position: string;
  tables: number;
  views: number;
  consistency: SnapshotConsistency & {
    /** What was held for a consistent position: writes (a primary) or replication (a replica). */
    held: Held['what'];
    /** How long: while the sessions opened, or the whole dump for the stopped method. */
    heldSeconds: number;
  };
  /** --keep-replication-stopped stopped a running replica's replication and left it so. */
  replicationKeptStopped: boolean;
  seconds: number;
  /** Seconds spent checksumming every table of every range (quiesced); absent when turned off. */
  evidenceSeconds?: number;
}

/**
 * The key ranges a request asks for: `shards` even ranges, the listed ones, or the full range. Ranges
 * that leave part of the keyspace out are refused unless the request says that is meant: the rows
 * there would be in no snapshot.
 */
export function requestedRanges(
  request: Pick<SnapshotRequest, 'dir' | 'shards' | 'keyRanges' | 'partialRanges'>,
): KeyRange[] | undefined {
  if (request.shards !== undefined) return evenKeyRanges(request.shards);
  const ranges = request.keyRanges?.map((text) => KeyRange.parse(text));
  // The source shard (`commerce/-80`) holds only its own range: that is what must be covered.
  const shard = request.dir.split('/')[1] ?? '';
  const source = /^([0-9a-f]{2})*-([0-9a-f]{2})*$/i.test(shard) ? KeyRange.parse(shard) : KeyRange.full();
  const gaps = ranges ? uncoveredRanges(ranges, source) : [];
  if (gaps.length > 0 && !request.partialRanges) {
    throw new FieldError(
      ['keyRanges'],
      `leave out the keyspace ids in ${gaps.join(', ')}: rows there would be in no snapshot; nothing was changed`,
      {
        hint: hint`list ranges that cover the whole keyspace, or pass ${switchOption('partialRanges')} to copy only these`,
      },
    );
  }
  return ranges;
}

/**
 * A logical snapshot of one database, split by key range or restricted to a set of tables, every
 * table read at one position: through consistent-snapshot sessions opened under a brief hold (writes
 * on a primary, replication on a replica), or — for non-InnoDB tables — with the instance quiesced
 * for the whole dump and the position checked again after it. Tables are dumped `concurrency` at a
 * time; each range gets its own backup with its own manifest. The instance is always put back.
 */
export async function snapshotInstance(
  daemon: MysqlDaemon,
  storage: BackupStorage,
  request: SnapshotRequest,
  context: EngineContext,
): Promise<SnapshotResult> {
  const { logger } = context;
  const { database } = request;
  const keyRanges = requestedRanges(request);
  const ranges = snapshotRanges({ dir: request.dir, keyRanges });
  const started = new Date();
  const split =
    request.keyColumn && request.keyType && !(ranges.length === 1 && ranges[0]!.isFull())
      ? {
          keyColumn: request.keyColumn,
          keyType: request.keyType,
          router: keyspaceIdRouter(request.keyType, ranges),
        }
      : undefined;

  const readSchema = async (): Promise<SourceSchema> => {
    // Not connected to the database: a missing one is named as such, not as a failed login.
    const connection = await daemon.connect();
    try {
      const schema = await readSourceSchema(connection, database, request);
      if (split) checkKeyColumn(schema.tables, split.keyColumn, split.keyType);
      if (schema.tables.length === 0 && schema.views.length === 0) {
        throw new UsageError(`database ${JSON.stringify(database)} has no tables to snapshot`);
      }
      return schema;
    } finally {
      await connection.end().catch(() => connection.destroy());
    }
  };

  return changeInstance(
    daemon,
    { operation: 'snapshot', logger, needsRunning: 'a snapshot reads from the running server' },
    async ({ original, lease }) => {
      const workDir = await serverFileDirectory(daemon, 'write files, so it cannot dump tables');
      // Checked before anything is held, so a typo costs nothing.
      const before = await readSchema();
      await lease.record({ details: { workDir } });
      if (request.keepReplicationStopped && original.replication.running) {
        // Recorded before replication stops: whatever happens next, nothing starts it again.
        await lease.record({ original: { ...original, replication: { configured: true, running: false } } });
        logger.info('replication stays stopped after the snapshot (--keep-replication-stopped)');
      }
      const position = await holdOnePosition(daemon, original, request, before, readSchema, logger);
      const { schema, quiesced } = position;
      const name = backupName(started, os.hostname());
      const handles: BackupHandle[] = [];
      try {
        for (const range of ranges)
          handles.push(await storage.startBackup(snapshotDir(snapshotAddress(request.dir, range)), name));
        const dumped = await dumpTables(schema, handles, {
          daemon,
          database,
          maxFileBytes: request.maxFileSize,
          concurrency: request.concurrency,
          logger,
          onProgress: context.progress,
          workDir,
          split,
          compression: request.compression,
          signal: context.signal,
          sessions: position.sessions,
        });
        reachedPhase('snapshot:dumped');
        // Read at the snapshot's position: through a consistent-snapshot session, or while still quiesced.
        const evidence = request.evidence
          ? await rangeEvidence(daemon, position.sessions, schema, ranges, split, database, {
              concurrency: request.concurrency,
              signal: context.signal,
            })
          : undefined;
        const held = await position.finish();
        const serverVersion = await daemon.serverVersion();
        const serverUuid =
          daemon.flavor.name === 'mysql'
            ? String(await daemon.withConnection((c) => queryValue(c, 'SELECT @@GLOBAL.server_uuid')))
            : undefined;
        const finished = new Date();
        const snapshots: SnapshotEntry[] = [];
        for (const [rangeIndex, range] of ranges.entries()) {
          const handle = handles[rangeIndex]!;
          const manifest = rangeManifest({
            daemon,
            serverVersion,
            serverUuid,
            name,
            dir: snapshotAddress(request.dir, range),
            range,
            rangeIndex,
            database,
            schema,
            dumped,
            quiesced,
            compression: request.compression,
            split:
              request.keyColumn && request.keyType
                ? { keyColumn: request.keyColumn, keyType: request.keyType }
                : undefined,
            started,
            finished,
            evidence: evidence?.[rangeIndex],
          });
          await handle.endBackup(manifest);
          snapshots.push({
            keyRange: manifest.keyRange,
            dir: manifest.dir,
            name,
            rows: manifest.files.reduce((sum, file) => sum + file.rows, 0),
            bytes: manifest.bytes.stored,
          });
        }
        return {
          snapshots,
          database,
          role: quiesced.role,
          position: quiesced.position,
          tables: schema.tables.length,
          views: schema.views.length,
          consistency: { ...position.consistency, held: held.what, heldSeconds: held.seconds },
          replicationKeptStopped: request.keepReplicationStopped && original.replication.running,
          seconds: (Date.now() - started.getTime()) / 1000,
          ...(evidence ? { evidenceSeconds: evidence.reduce((sum, e) => sum + e.seconds, 0) } : {}),
        };
      } catch (error) {
        await position.abandon();
        for (const handle of handles) {
          await handle
            .abortBackup()
            .catch((abortError: unknown) => keepFirstError(logger, error, abortError));
        }
        throw error;
      }
    },
  );
}

/**
 * Each range's evidence: every dumped table's rows and checksum within the range, read at the
 * snapshot's position (through its consistent-snapshot sessions, or while still quiesced), with the
 * diff's checksum (the rows a range's files hold). Tables are checksummed `concurrency` at a time,
 * as they were dumped: each is one server thread's work.
 */
async function rangeEvidence(
  daemon: MysqlDaemon,
  sessions: SnapshotSessions | undefined,
  schema: SourceSchema,
  ranges: readonly KeyRange[],
  split: { keyColumn: string; keyType: 'uint64' | 'bytes' } | undefined,
  database: string,
  options: { concurrency: number; signal: AbortSignal },
): Promise<BackupEvidence[]> {
  const tables = schema.tables.map((table) => table.name);
  const withConnection = async <T>(work: (connection: Connection) => Promise<T>): Promise<T> => {
    if (!sessions) return daemon.withConnection(work);
    const lent = await sessions.lend();
    try {
      return await work(lent.connection);
    } finally {
      await lent.giveBack();
    }
  };
  const evidence: BackupEvidence[] = [];
  for (const range of ranges) {
    const started = performance.now();
    const keyRange =
      split && !range.isFull() ? { range, column: split.keyColumn, type: split.keyType } : undefined;
    const checked = await mapConcurrent(
      tables,
      options.concurrency,
      (table, _index, signal) =>
        withConnection((connection) =>
          checksumTables(connection, database, { tables: [table], keyRange, signal }),
        ),
      { signal: options.signal },
    );
    evidence.push({
      method: EVIDENCE_METHOD,
      seconds: Math.round(performance.now() - started) / 1000,
      tables: checked.flat(),
    });
  }
  return evidence;
}

/** `stepback snapshot`, and a state machine's snapshot task. */
export function runSnapshot(
  request: RequestOf<'snapshot'>,
  context: OperationContext,
): Promise<SnapshotResult> {
  return withRequestStorage(request, context, async (storage) =>
    snapshotInstance(await openInstance(request, context.logger), storage, request, context),
  );
}
