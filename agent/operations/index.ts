import type { z } from 'zod';
import { OPERATION_REQUESTS, type OperationName } from '../../core/agent-request.ts';
import { type StepbackError, VerificationError } from '../../core/errors.ts';
import { BackupRequest } from '../../core/operations/backup.ts';
import { BinlogArchiveRequest } from '../../core/operations/binlog-archive.ts';
import { CatchupRequest } from '../../core/operations/catchup.ts';
import { DiffRequest } from '../../core/operations/diff.ts';
import { DrillRequest } from '../../core/operations/drill.ts';
import { MultirestoreRequest } from '../../core/operations/multirestore.ts';
import { ReplicationRequest } from '../../core/operations/replication.ts';
import { RestoreRequest } from '../../core/operations/restore.ts';
import { SnapshotRequest } from '../../core/operations/snapshot.ts';
import { WritesRequest } from '../../core/operations/writes.ts';
import { hasDifferences } from '../diff/types.ts';
import type { BackupResult } from './backup.ts';
import type { BinlogArchiveResult } from './binlog-archive.ts';
import type { CatchupResult } from './catchup.ts';
import type { DiffReport } from './diff.ts';
import type { DrillResult } from './drill.ts';
import type { MultirestoreResult } from './multirestore.ts';
import type { Operation, OperationContext, RequestOf } from './operation.ts';
import type { ReplicationResult } from './replication.ts';
import type { RestoreResult } from './restore.ts';
import type { SnapshotResult } from './snapshot.ts';
import type { WritesResult } from './writes.ts';

export interface OperationResults {
  backup: BackupResult;
  restore: RestoreResult;
  snapshot: SnapshotResult;
  multirestore: MultirestoreResult;
  diff: DiffReport;
  drill: DrillResult;
  binlogArchive: BinlogArchiveResult;
  catchup: CatchupResult;
  replication: ReplicationResult;
  writes: WritesResult;
}

/**
 * Every agent operation, by the name requests and commands use: its request schema and its code.
 * The schemas load at once; an operation's code (MySQL client, engines, storage SDKs) only when it
 * runs, so `stepback --help` stays fast.
 */
export const operations: { [K in OperationName]: Operation<K, OperationResults[K]> } = {
  backup: {
    name: 'backup',
    request: BackupRequest,
    run: async (request, context) => (await import('./backup.ts')).runBackup(request, context),
  },
  restore: {
    name: 'restore',
    request: RestoreRequest,
    run: async (request, context) => (await import('./restore.ts')).runRestore(request, context),
  },
  snapshot: {
    name: 'snapshot',
    request: SnapshotRequest,
    run: async (request, context) => (await import('./snapshot.ts')).runSnapshot(request, context),
  },
  multirestore: {
    name: 'multirestore',
    request: MultirestoreRequest,
    run: async (request, context) => (await import('./multirestore.ts')).runMultirestore(request, context),
  },
  diff: {
    name: 'diff',
    request: DiffRequest,
    run: async (request, context) => (await import('./diff.ts')).runDiff(request, context),
    verdict(report) {
      if (!hasDifferences(report, report.subset)) return undefined;
      const { mismatched, extraLeft, extraRight, withoutKeyspaceId } = report.total;
      return new VerificationError(
        `the rows differ: ${mismatched} mismatched, ${extraLeft} only on the left, ${extraRight} only on the right${withoutKeyspaceId ? `, ${withoutKeyspaceId} without a keyspace id (in no key range)` : ''}`,
      );
    },
    // The notes and the subset flag are for the report people read.
    reported: ({ tables, total }) => ({ tables, total }),
  },
  drill: {
    name: 'drill',
    request: DrillRequest,
    run: async (request, context) => (await import('./drill.ts')).runDrill(request, context),
    verdict(result) {
      if (result.outcome === 'passed') return undefined;
      const named = result.differences.map((d) => (d.table ? `${d.database}.${d.table}` : (d.file ?? '?')));
      return new VerificationError(
        `the drill of ${result.dir}/${result.backup} failed${named.length ? `: ${[...new Set(named)].join(', ')} differ` : ''}${result.problems.length ? `; ${result.problems[0]}` : ''}`,
        { hint: `the findings are in ${result.record}` },
      );
    },
  },
  binlogArchive: {
    name: 'binlogArchive',
    request: BinlogArchiveRequest,
    run: async (request, context) => (await import('./binlog-archive.ts')).runBinlogArchive(request, context),
  },
  catchup: {
    name: 'catchup',
    request: CatchupRequest,
    run: async (request, context) => (await import('./catchup.ts')).runCatchup(request, context),
  },
  replication: {
    name: 'replication',
    request: ReplicationRequest,
    run: async (request, context) => (await import('./replication.ts')).runReplication(request, context),
  },
  writes: {
    name: 'writes',
    request: WritesRequest,
    run: async (request, context) => (await import('./writes.ts')).runWrites(request, context),
  },
};

/**
 * An operation's result, what of it is reported (printed with --json, sent to the state machine),
 * and the failure it still means when it means one (diff's differing rows).
 */
export interface Executed<K extends OperationName> {
  result: OperationResults[K];
  reported: object;
  failure?: StepbackError;
}

/** Parses a request with its operation's schema. */
export function parseOperationRequest<K extends OperationName>(
  name: K,
  given: unknown,
): { success: true; data: RequestOf<K> } | { success: false; error: z.ZodError } {
  const schema: z.ZodType<RequestOf<K>> = OPERATION_REQUESTS[name];
  return schema.safeParse(given);
}

/** Runs an operation on a request its schema has parsed. */
export async function executeOperation<K extends OperationName>(
  name: K,
  request: RequestOf<K>,
  context: OperationContext,
): Promise<Executed<K>> {
  const operation: Operation<K, OperationResults[K]> = operations[name];
  const result = await operation.run(request, context);
  const failure = operation.verdict?.(result);
  const reported = operation.reported?.(result) ?? result;
  return failure ? { result, reported, failure } : { result, reported };
}
