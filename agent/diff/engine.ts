import { UsageError, VerificationError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import { type Connection, type ConnectionTarget, queryValue } from '../mysql/connection.ts';
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
    if (options.signal?.aborted) {
      // Opened after the interruption dropped the others: nothing will close it later.
      connection.destroy();
      options.signal.throwIfAborted();
    }
    opened.push(connection);
    return connection;
  };
  let succeeded = false;
  // Interrupted: drop every connection at once, which ends whatever query is running.
  const onAbort = () => {
    for (const connection of opened) connection.destroy();
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  // mysql2 may leave a query on a destroyed connection unsettled: an interruption rejects at once
  // instead of waiting for it (the work left behind ends with its connections).
  let rejectAborted: (reason: unknown) => void = () => {};
  const aborted = new Promise<never>((_, reject) => {
    rejectAborted = () => reject(options.signal?.reason);
  });
  aborted.catch(() => {});
  options.signal?.addEventListener('abort', rejectAborted, { once: true });
  const work = (async (): Promise<DiffOutcome> => {
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

    const runs = plans.map(
      (plan, index) =>
        new TableRun(plan, rowLayout(plan, options.leftKeyRange, padWeights), options, {
          itemsDone: index,
          itemsTotal: plans.length,
        }),
    );
    // One queue of chunks over every table, in table order: while the last chunks of a table are
    // compared, the next table's bounds are read and its first chunks start.
    const chunkRows = options.chunkRows ?? 100_000;
    async function* allChunks(): AsyncGenerator<{ run: TableRun; chunk: Chunk }> {
      for (const run of runs) {
        for await (const chunk of chunkSource(run.plan, metaLeft, chunkRows)) yield { run, chunk };
      }
    }
    const queue = allChunks();
    let failure: { error: unknown } | undefined;
    await Promise.all(
      pairs.map(async (pair) => {
        while (!failure) {
          try {
            options.signal?.throwIfAborted();
            const next = await queue.next();
            if (next.done) return;
            await next.value.run.compareChunk(next.value.chunk, pair);
          } catch (error) {
            failure ??= { error };
          }
        }
      }),
    );
    // An interruption shows up in the workers as lost connections: report it as what it is.
    options.signal?.throwIfAborted();
    if (failure) throw failure.error;

    const tables: TableDiff[] = [];
    const notes: TableNotes[] = [];
    for (const run of runs) {
      const { diff, note } = await run.finish(pairs[0]!);
      tables.push(diff);
      notes.push(note);
      options.logger.debug('table compared', { ...note });
    }
    const total: DiffCounts = { processed: 0, matching: 0, mismatched: 0, extraLeft: 0, extraRight: 0 };
    if (options.leftKeyRange) total.withoutKeyspaceId = 0;
    for (const table of tables) {
      for (const key of Object.keys(total) as Array<keyof DiffCounts>)
        total[key] = (total[key] ?? 0) + (table[key] ?? 0);
    }
    return { result: { tables, total }, notes, subset: Boolean(options.subset) };
  })();
  work.catch(() => {});
  try {
    const outcome = await Promise.race([work, aborted]);
    succeeded = true;
    return outcome;
  } catch (error) {
    options.signal?.throwIfAborted();
    throw error;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    options.signal?.removeEventListener('abort', rejectAborted);
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

/** The comparison of one table: its chunks, compared by whichever connection pair is free, and its report. */
class TableRun {
  readonly plan: TablePlan;
  readonly #layout: RowLayout;
  readonly #options: DiffOptions;
  /** Tables before this one, of how many (for the progress line). */
  readonly #place: { itemsDone: number; itemsTotal: number };
  #started: number | undefined;
  #ended = 0;
  readonly #counts = { matching: 0, mismatched: 0, extraLeft: 0, extraRight: 0 };
  readonly #samples = {
    mismatched: new SampleKeeper<{ left: Row; right: Row }>(),
    extraLeft: new SampleKeeper<Row>(),
    extraRight: new SampleKeeper<Row>(),
  };
  readonly #note: TableNotes;
  /** Rows streamed so far by chunks still being merged. */
  readonly #inFlight = new Map<number, number>();

  constructor(
    plan: TablePlan,
    layout: RowLayout,
    options: DiffOptions,
    place: { itemsDone: number; itemsTotal: number },
  ) {
    this.plan = plan;
    this.#layout = layout;
    this.#options = options;
    this.#place = place;
    this.#note = {
      table: plan.table,
      orderedBy: plan.keyColumns.length ? 'primary key' : 'row digest',
      chunksConfirmed: 0,
      chunks: 0,
    };
  }

  #progress(): void {
    let rows = processedRows(this.#counts);
    for (const partial of this.#inFlight.values()) rows += partial;
    this.#options.onProgress?.({
      phase: `comparing ${this.plan.table}`,
      rowsDone: rows,
      ...this.#place,
      ...(this.plan.estimatedRows > 0 ? { rowsTotal: Math.max(this.plan.estimatedRows, rows) } : {}),
    });
  }

  async compareChunk(chunk: Chunk, pair: ConnectionPair): Promise<void> {
    const { plan } = this;
    if (this.#started === undefined) {
      this.#started = performance.now();
      if (plan.keyColumns.length === 0) {
        this.#options.logger.warn('table has no primary key: compared by full-row order', {
          table: plan.table,
        });
      }
    }
    this.#note.chunks++;
    try {
      await this.#compare(chunk, pair);
    } finally {
      this.#ended = performance.now();
    }
    this.#progress();
  }

  async #compare(chunk: Chunk, pair: ConnectionPair): Promise<void> {
    const { plan } = this;
    const layout = this.#layout;
    const counts = this.#counts;
    const bounds = chunkBoundsSql(plan, chunk);
    const leftWhere = joinConditions([...bounds, plan.leftFilter]);
    const rightWhere = joinConditions(bounds);
    if (this.#options.checksums !== false) {
      const [l, r] = await Promise.all([
        readChecksum(pair.left, checksumSql(plan.leftName, plan.encoding, leftWhere)),
        readChecksum(pair.right, checksumSql(plan.rightName, plan.encoding, rightWhere)),
      ]);
      if (l.count === r.count && l.sum === r.sum) {
        counts.matching += Number(l.count);
        this.#note.chunksConfirmed++;
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
          this.#inFlight.set(chunk.index, rows);
          this.#progress();
        },
      },
    );
    this.#inFlight.delete(chunk.index);
    counts.matching += comparison.matching;
    counts.mismatched += comparison.mismatched;
    counts.extraLeft += comparison.extraLeft;
    counts.extraRight += comparison.extraRight;
    this.#samples.mismatched.add(chunk.index, comparison.samples.mismatched);
    this.#samples.extraLeft.add(chunk.index, comparison.samples.extraLeft);
    this.#samples.extraRight.add(chunk.index, comparison.samples.extraRight);
  }

  /** The table's report, once every chunk is compared: samples read back in full, and seconds. */
  async finish(pair: ConnectionPair): Promise<{ diff: TableDiff; note: TableNotes }> {
    const seconds = this.#started === undefined ? 0 : Math.round(this.#ended - this.#started) / 1000;
    const resolved = await resolveSamples(this.plan, this.#layout, pair, this.#samples);
    // Rows no key range holds are not skipped silently: they are counted, and any is a difference.
    const withoutKeyspaceId = this.plan.leftWithoutKeyspaceId
      ? Number(
          await queryValue(
            pair.left,
            `SELECT COUNT(*) FROM ${this.plan.leftName} WHERE ${this.plan.leftWithoutKeyspaceId}`,
          ),
        )
      : undefined;
    return {
      diff: {
        table: this.plan.table,
        processed: processedRows(this.#counts),
        ...this.#counts,
        ...(withoutKeyspaceId === undefined ? {} : { withoutKeyspaceId }),
        samples: resolved,
        seconds,
      },
      note: this.#note,
    };
  }
}
