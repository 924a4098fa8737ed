import { UsageError, VerificationError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import type { Connection, ConnectionTarget } from '../mysql/connection.ts';
import type { Progress } from '../report/reporter.ts';
import { type Chunk, chunkBoundsSql, chunkSource, joinConditions, readChecksum } from './chunks.ts';
import {
  batchCursor,
  type Comparison,
  compareOrderedRows,
  processedRows,
  type Row,
  SampleKeeper,
} from './compare.ts';
import { type RowLayout, rowLayout } from './layout.ts';
import { type LeftKeyRange, type PlanProblem, planTable, type TablePlan } from './plan.ts';
import { type ConnectionPair, openDiffConnection, streamRows } from './reader.ts';
import { resolveSamples } from './samples.ts';
import { readCollationOrder, readTableDefinitions } from './schema.ts';
import { checksumSql } from './sql.ts';
import type { DiffCounts, DiffOutcome, TableDiff, TableNotes } from './types.ts';

export interface DiffOptions {
  /** Each side's connection; `database` names the schema compared. */
  left: ConnectionTarget & { database: string };
  right: ConnectionTarget & { database: string };
  /** Tables to compare (default: every base table on the left). */
  tables?: string[] | undefined;
  /** The right must be a subset of the left: rows only on the left are not differences. */
  subset?: boolean | undefined;
  /** Compare only the left rows in this key range (one destination of a split). */
  leftKeyRange?: LeftKeyRange | undefined;
  /** Chunks compared at once, each on its own pair of connections (default 2). */
  concurrency?: number | undefined;
  /** Rows per chunk (default 100,000). */
  chunkRows?: number | undefined;
  /** Compare chunk checksums first and stream only chunks that differ (default true). */
  checksums?: boolean | undefined;
  logger: Logger;
  onProgress?: ((progress: Progress) => void) | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Compares the tables of two databases row by row and reports, per table, what matches, what
 * differs and what is on one side only. Each table is cut into primary-key chunks (bounds read
 * from the left); both servers checksum each chunk concurrently, and only chunks whose checksums
 * differ are streamed in key order and merged. Nothing is written on either side.
 */
export async function diffDatabases(options: DiffOptions): Promise<DiffOutcome> {
  const concurrency = options.concurrency ?? 2;
  const opened: Connection[] = [];
  const open = async (target: ConnectionTarget) => {
    options.signal?.throwIfAborted();
    const connection = await openDiffConnection(target);
    opened.push(connection);
    return connection;
  };
  let succeeded = false;
  // Interrupted: drop every connection at once, which ends whatever query is running.
  const onAbort = () => {
    for (const connection of opened) connection.destroy();
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const openPair = async () => {
      // Both attempts settle before a failure is thrown, so no connection opens after cleanup.
      const [l, r] = await Promise.allSettled([open(options.left), open(options.right)]);
      if (l.status === 'rejected') throw l.reason;
      if (r.status === 'rejected') throw r.reason;
      return { left: l.value, right: r.value };
    };
    const { left: metaLeft, right: metaRight } = await openPair();
    const plans = await planTables(metaLeft, metaRight, options);
    const padWeights = await readPadWeights(metaLeft, plans);
    const pairs: ConnectionPair[] = [];
    for (let i = 0; i < concurrency; i++) pairs.push(await openPair());

    const tables: TableDiff[] = [];
    const notes: TableNotes[] = [];
    for (const [index, plan] of plans.entries()) {
      options.signal?.throwIfAborted();
      const layout = rowLayout(plan, options.leftKeyRange, padWeights);
      const place = { itemsDone: index, itemsTotal: plans.length };
      const { diff, note } = await diffTable(plan, layout, metaLeft, pairs, options, place);
      tables.push(diff);
      notes.push(note);
      options.logger.debug('table compared', { ...note });
    }
    const total: DiffCounts = { processed: 0, matching: 0, mismatched: 0, extraLeft: 0, extraRight: 0 };
    for (const table of tables) {
      for (const key of Object.keys(total) as Array<keyof DiffCounts>) total[key] += table[key];
    }
    succeeded = true;
    return { result: { tables, total }, notes, subset: Boolean(options.subset) };
  } catch (error) {
    options.signal?.throwIfAborted();
    throw error;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    // A failed run may leave queries streaming: drop those connections rather than wait.
    await Promise.all(
      opened.map((connection) =>
        succeeded ? connection.end().catch(() => connection.destroy()) : connection.destroy(),
      ),
    );
  }
}

/** Reads both schemas and plans every table, refusing the run if any table cannot be compared. */
async function planTables(left: Connection, right: Connection, options: DiffOptions): Promise<TablePlan[]> {
  const [leftTables, rightTables] = await Promise.all([
    readTableDefinitions(left, options.left.database),
    readTableDefinitions(right, options.right.database),
  ]);
  const names = options.tables ?? [...leftTables.keys()];
  const unknown = names.filter((name) => !leftTables.has(name));
  if (unknown.length > 0) {
    throw new UsageError(
      `--tables: no base table ${unknown.join(', ')} in ${options.left.database} on the left`,
      {
        hint: leftTables.size ? `tables there: ${[...leftTables.keys()].slice(0, 20).join(', ')}` : undefined,
      },
    );
  }
  const plans: TablePlan[] = [];
  const problems: PlanProblem[] = [];
  for (const name of names) {
    const plan = planTable(
      options.left.database,
      options.right.database,
      leftTables.get(name)!,
      rightTables.get(name),
      options.leftKeyRange,
    );
    if ('problem' in plan) problems.push(plan);
    else plans.push(plan);
  }
  if (problems.length > 0) {
    throw new VerificationError(
      `the tables differ in structure: ${problems.map((p) => `${p.table} ${p.problem}`).join('; ')}`,
      { hint: 'make the schemas match, or leave these tables out with --tables' },
    );
  }
  return plans;
}

/** The weight of a space for each PAD SPACE collation used by a text key, asked of the left server. */
async function readPadWeights(
  connection: Connection,
  plans: TablePlan[],
): Promise<Map<string, Buffer | undefined>> {
  const weights = new Map<string, Buffer | undefined>();
  for (const key of plans.flatMap((plan) => plan.keyColumns)) {
    const name = `${key.charset}/${key.collation}`;
    if (key.kind !== 'text' || weights.has(name) || !key.charset || !key.collation) continue;
    const order = await readCollationOrder(connection, key.charset, key.collation);
    weights.set(name, order.padSpace ? order.spaceWeight : undefined);
  }
  return weights;
}

async function diffTable(
  plan: TablePlan,
  layout: RowLayout,
  boundaries: Connection,
  pairs: ConnectionPair[],
  options: DiffOptions,
  /** Tables done before this one, of how many (for the progress line). */
  place: { itemsDone: number; itemsTotal: number },
): Promise<{ diff: TableDiff; note: TableNotes }> {
  const started = performance.now();
  const counts = { matching: 0, mismatched: 0, extraLeft: 0, extraRight: 0 };
  const samples = {
    mismatched: new SampleKeeper<{ left: Row; right: Row }>(),
    extraLeft: new SampleKeeper<Row>(),
    extraRight: new SampleKeeper<Row>(),
  };
  const note: TableNotes = {
    table: plan.table,
    orderedBy: plan.keyColumns.length ? 'primary key' : 'row digest',
    chunksConfirmed: 0,
    chunks: 0,
  };
  if (plan.keyColumns.length === 0) {
    options.logger.warn('table has no primary key: compared by full-row order', { table: plan.table });
  }
  const inFlight = new Map<number, number>();
  const progress = () => {
    let rows = processedRows(counts);
    for (const partial of inFlight.values()) rows += partial;
    options.onProgress?.({
      phase: `comparing ${plan.table}`,
      rowsDone: rows,
      ...place,
      ...(plan.estimatedRows > 0 ? { rowsTotal: Math.max(plan.estimatedRows, rows) } : {}),
    });
  };

  const compareChunk = async (chunk: Chunk, pair: ConnectionPair) => {
    note.chunks++;
    const bounds = chunkBoundsSql(plan, chunk);
    const leftWhere = joinConditions([...bounds, plan.leftFilter]);
    const rightWhere = joinConditions(bounds);
    if (options.checksums !== false) {
      const [l, r] = await Promise.all([
        readChecksum(pair.left, checksumSql(plan.leftName, plan.encoding, leftWhere)),
        readChecksum(pair.right, checksumSql(plan.rightName, plan.encoding, rightWhere)),
      ]);
      if (l.count === r.count && l.sum === r.sum) {
        counts.matching += Number(l.count);
        note.chunksConfirmed++;
        progress();
        return;
      }
    }
    const comparison: Comparison = await compareOrderedRows(
      batchCursor(streamRows(pair.left, layout.leftSelect(leftWhere))),
      batchCursor(streamRows(pair.right, layout.rightSelect(rightWhere))),
      {
        compareKeys: layout.compareKeys,
        digestIndex: layout.digestIndex,
        keepLeft: layout.keepLeft,
        normalisedKey: layout.normalisedKey,
        onRows: (rows) => {
          inFlight.set(chunk.index, rows);
          progress();
        },
      },
    );
    inFlight.delete(chunk.index);
    counts.matching += comparison.matching;
    counts.mismatched += comparison.mismatched;
    counts.extraLeft += comparison.extraLeft;
    counts.extraRight += comparison.extraRight;
    samples.mismatched.add(chunk.index, comparison.samples.mismatched);
    samples.extraLeft.add(chunk.index, comparison.samples.extraLeft);
    samples.extraRight.add(chunk.index, comparison.samples.extraRight);
    progress();
  };

  const chunks = chunkSource(plan, boundaries, options.chunkRows ?? 100_000);
  let failure: { error: unknown } | undefined;
  await Promise.all(
    pairs.map(async (pair) => {
      while (!failure) {
        try {
          options.signal?.throwIfAborted();
          const next = await chunks.next();
          if (next.done) return;
          await compareChunk(next.value, pair);
        } catch (error) {
          failure ??= { error };
        }
      }
    }),
  );
  // An interruption shows up in the workers as lost connections: report it as what it is.
  options.signal?.throwIfAborted();
  if (failure) throw failure.error;

  const seconds = Math.round(performance.now() - started) / 1000;
  const resolved = await resolveSamples(plan, layout, pairs[0]!, samples);
  return {
    diff: { table: plan.table, processed: processedRows(counts), ...counts, samples: resolved, seconds },
    note,
  };
}
