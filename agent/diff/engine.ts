import { UsageError, VerificationError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import type { Connection, ConnectionTarget } from '../mysql/connection.ts';
import type { Progress } from '../report/reporter.ts';
import {
  batchCursor,
  type Comparison,
  compareOrderedRows,
  processedRows,
  type Row,
  SampleKeeper,
} from './compare.ts';
import { type RowLayout, rowLayout } from './layout.ts';
import { keyParts, type LeftKeyRange, type PlanProblem, planTable, type TablePlan } from './plan.ts';
import { openDiffConnection, queryArrays, streamRows } from './reader.ts';
import { readRowByKey, sameValue, sampleRow } from './samples.ts';
import { readCollationOrder, readTableDefinitions } from './schema.ts';
import { checksumSql, keyAfterSql, keyAtMostSql } from './sql.ts';
import type { DiffCounts, DiffOutcome, DiffSamples, TableDiff, TableNotes } from './types.ts';

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

interface Pair {
  left: Connection;
  right: Connection;
}

interface Chunk {
  index: number;
  /** Exclusive lower bound (the previous chunk's last key); undefined for the first chunk. */
  lower: Row | undefined;
  /** Inclusive upper bound; undefined for the last chunk. */
  upper: Row | undefined;
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
    const [metaLeft, metaRight] = await Promise.all([open(options.left), open(options.right)]);
    const plans = await planTables(metaLeft, metaRight, options);
    const padWeights = await readPadWeights(metaLeft, plans);
    const pairs: Pair[] = [];
    for (let i = 0; i < concurrency; i++)
      pairs.push({ left: await open(options.left), right: await open(options.right) });

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
  pairs: Pair[],
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

  const compareChunk = async (chunk: Chunk, pair: Pair) => {
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

/**
 * The chunks of a table, bounded by the keys of every `chunkRows`-th row of the left (read as they
 * are needed, so bounds are found while earlier chunks are compared). A table that cannot be cut by
 * key is one chunk.
 */
async function* chunkSource(
  plan: TablePlan,
  connection: Connection,
  chunkRows: number,
): AsyncGenerator<Chunk> {
  if (!plan.chunkable) {
    yield { index: 0, lower: undefined, upper: undefined };
    return;
  }
  const parts = keyParts(plan, 'bound');
  const keys = parts.map((part) => part.column).join(', ');
  let lower: Row | undefined;
  for (let index = 0; ; index++) {
    const where = joinConditions([lower ? keyAfterSql(parts, lower) : undefined, plan.leftFilter]);
    const [upper] = await queryArrays(
      connection,
      `SELECT ${keys} FROM ${plan.leftName}${where ? ` WHERE ${where}` : ''} ORDER BY ${keys} LIMIT 1 OFFSET ${chunkRows - 1}`,
    );
    yield { index, lower, upper };
    if (!upper) return;
    lower = upper;
  }
}

function chunkBoundsSql(plan: TablePlan, chunk: Chunk): string[] {
  if (!plan.chunkable) return [];
  const parts = keyParts(plan, 'bound');
  return [
    ...(chunk.lower ? [keyAfterSql(parts, chunk.lower)] : []),
    ...(chunk.upper ? [keyAtMostSql(parts, chunk.upper)] : []),
  ];
}

function joinConditions(conditions: Array<string | undefined>): string | undefined {
  const present = conditions.filter((c): c is string => Boolean(c));
  return present.length ? present.join(' AND ') : undefined;
}

async function readChecksum(connection: Connection, sql: string): Promise<{ count: string; sum: string }> {
  const [row] = await queryArrays(connection, sql);
  return { count: String(row?.[0] ?? '0'), sum: String(row?.[1] ?? '') };
}

/**
 * Turns the kept samples into reported rows. For a table with a primary key the streams carried
 * only keys and digests, so the rows are read back by key (at most 10 of each kind per side).
 */
async function resolveSamples(
  plan: TablePlan,
  layout: RowLayout,
  pair: Pair,
  samples: {
    mismatched: SampleKeeper<{ left: Row; right: Row }>;
    extraLeft: SampleKeeper<Row>;
    extraRight: SampleKeeper<Row>;
  },
): Promise<DiffSamples> {
  const keyNames = plan.keyColumns.map((k) => k.name);
  if (keyNames.length === 0) {
    const full = (row: Row) => ({ key: null, row: sampleRow(plan.columns, row.slice(0, layout.keyLength)) });
    return {
      mismatched: [],
      extraLeft: samples.extraLeft.values().map(full),
      extraRight: samples.extraRight.values().map(full),
    };
  }
  const parts = keyParts(plan, 'lookup');
  const key = (row: Row) => row.slice(0, keyNames.length);
  const read = async (connection: Connection, table: string, row: Row) =>
    readRowByKey(connection, table, plan, parts, key(row));
  const mismatched = [];
  for (const { left, right } of samples.mismatched.values()) {
    const leftRow = await read(pair.left, plan.leftName, left);
    const rightRow = await read(pair.right, plan.rightName, right);
    mismatched.push({
      key: sampleRow(keyNames, key(left)),
      columns: plan.columns.filter((_, i) => !sameValue(leftRow?.[i], rightRow?.[i])),
      left: leftRow ? sampleRow(plan.columns, leftRow) : null,
      right: rightRow ? sampleRow(plan.columns, rightRow) : null,
    });
  }
  const extra = async (connection: Connection, table: string, rows: Row[]) => {
    const out = [];
    for (const row of rows) {
      const full = await read(connection, table, row);
      out.push({ key: sampleRow(keyNames, key(row)), row: full ? sampleRow(plan.columns, full) : null });
    }
    return out;
  };
  return {
    mismatched,
    extraLeft: await extra(pair.left, plan.leftName, samples.extraLeft.values()),
    extraRight: await extra(pair.right, plan.rightName, samples.extraRight.values()),
  };
}
