/**
 * The comparison itself, free of any database: a merge of two row streams ordered by key, with
 * VDiff's reconciliation of extras, and the tallies and samples a table's report is made of.
 * Rows are arrays (as the driver returns them); the caller says where the sort key and the
 * row digest sit.
 */

export type Row = readonly unknown[];

/** A position in an ordered stream of rows. */
export interface RowCursor {
  /** The current row; undefined before the first advance and after the last row. */
  readonly row: Row | undefined;
  /** Moves to the next row: `true` when that happened at once, else a promise to await. */
  advance(): true | Promise<void>;
}

export interface CompareSpec {
  /** Orders rows by key exactly as both servers returned them. */
  compareKeys: (a: Row, b: Row) => number;
  /** Where each row carries the digest of its whole content. */
  digestIndex: number;
  /** Left rows that do not pass are not part of the comparison (a key range). */
  keepLeft?: ((row: Row) => boolean) | undefined;
  /**
   * The key of a row normalised across types (1 = 1.00, weights without padding). Extras on both
   * sides with the same normalised key are one mismatched (or matching) row, not two extras.
   */
  normalisedKey?: ((row: Row) => string) | undefined;
  /** How many extras per side are held for reconciliation (default 10,000). */
  reconcileLimit?: number;
  /** Samples kept per kind (default 10). */
  sampleLimit?: number;
  /** Called with the number of rows compared so far, every few thousand rows. */
  onRows?: ((rows: number) => void) | undefined;
}

export interface Sampled<T> {
  /** Position in the merge, to keep samples in key order across chunks. */
  seq: number;
  value: T;
}

export interface Comparison {
  matching: number;
  mismatched: number;
  extraLeft: number;
  extraRight: number;
  samples: {
    mismatched: Sampled<{ left: Row; right: Row }>[];
    extraLeft: Sampled<Row>[];
    extraRight: Sampled<Row>[];
  };
}

export function emptyComparison(): Comparison {
  return {
    matching: 0,
    mismatched: 0,
    extraLeft: 0,
    extraRight: 0,
    samples: { mismatched: [], extraLeft: [], extraRight: [] },
  };
}

/** Rows counted by a comparison: each key once, whatever happened to it. */
export function processedRows(c: Pick<Comparison, 'matching' | 'mismatched' | 'extraLeft' | 'extraRight'>) {
  return c.matching + c.mismatched + c.extraLeft + c.extraRight;
}

/**
 * Merges two streams ordered by key and classifies every key: matching (same digest), mismatched
 * (same key, different digest), extra on the left, extra on the right. Holds only the current row
 * of each side, the first samples and a bounded list of extras to reconcile.
 */
export async function compareOrderedRows(
  left: RowCursor,
  right: RowCursor,
  spec: CompareSpec,
): Promise<Comparison> {
  const sampleLimit = spec.sampleLimit ?? 10;
  const reconcileLimit = spec.normalisedKey ? (spec.reconcileLimit ?? 10_000) : 0;
  const { compareKeys, digestIndex, keepLeft, onRows } = spec;
  const result = emptyComparison();
  const pendingLeft: Sampled<Row>[] = [];
  const pendingRight: Sampled<Row>[] = [];
  let seq = 0;

  const onExtra = (side: 'left' | 'right', row: Row) => {
    const pending = side === 'left' ? pendingLeft : pendingRight;
    if (side === 'left') result.extraLeft++;
    else result.extraRight++;
    // Extras are kept for reconciliation (which then picks the samples) or only as samples.
    if (pending.length < Math.max(reconcileLimit, sampleLimit)) pending.push({ seq, value: detach(row) });
    seq++;
  };
  // Moving within a batch is synchronous; only the end of a batch costs an await.
  const advanceLeft = (): true | Promise<void> => {
    for (;;) {
      const step = left.advance();
      if (step !== true) return step.then(skipLeft);
      if (!keepLeft || left.row === undefined || keepLeft(left.row)) return true;
    }
  };
  const skipLeft = async (): Promise<void> => {
    if (!keepLeft || left.row === undefined || keepLeft(left.row)) return;
    const step = advanceLeft();
    if (step !== true) await step;
  };
  const advanceRight = (): true | Promise<void> => right.advance();
  const advanceBoth = (): true | Promise<unknown> => {
    const l = advanceLeft();
    const r = advanceRight();
    return l === true && r === true ? true : Promise.all([l, r]);
  };

  const first = advanceBoth();
  if (first !== true) await first;
  let sinceReport = 0;
  while (left.row !== undefined && right.row !== undefined) {
    const order = compareKeys(left.row, right.row);
    if (order === 0) {
      if (left.row[digestIndex] === right.row[digestIndex]) {
        result.matching++;
      } else {
        result.mismatched++;
        if (result.samples.mismatched.length < sampleLimit)
          result.samples.mismatched.push({
            seq,
            value: { left: detach(left.row), right: detach(right.row) },
          });
      }
      seq++;
      const step = advanceBoth();
      if (step !== true) await step;
    } else if (order < 0) {
      onExtra('left', left.row);
      const step = advanceLeft();
      if (step !== true) await step;
    } else {
      onExtra('right', right.row);
      const step = advanceRight();
      if (step !== true) await step;
    }
    if (++sinceReport === 8192) {
      sinceReport = 0;
      onRows?.(processedRows(result));
    }
  }
  while (left.row !== undefined) {
    onExtra('left', left.row);
    const step = advanceLeft();
    if (step !== true) await step;
  }
  while (right.row !== undefined) {
    onExtra('right', right.row);
    const step = advanceRight();
    if (step !== true) await step;
  }

  if (spec.normalisedKey) reconcile(result, pendingLeft, pendingRight, spec.normalisedKey, digestIndex);
  result.samples.mismatched.sort((a, b) => a.seq - b.seq).splice(sampleLimit);
  result.samples.extraLeft = pendingLeft.slice(0, sampleLimit);
  result.samples.extraRight = pendingRight.slice(0, sampleLimit);
  onRows?.(processedRows(result));
  return result;
}

/**
 * A row to hold after the stream moved on: the driver's byte values are views of whole socket
 * reads, so they are copied rather than kept alive with everything around them.
 */
function detach(row: Row): Row {
  return row.some(Buffer.isBuffer)
    ? row.map((value) => (Buffer.isBuffer(value) ? Buffer.from(value) : value))
    : row;
}

/**
 * VDiff's reconciliation: an extra on the left and an extra on the right with the same normalised
 * key are the same row, which the two orders did not line up. It is matching when the digests
 * agree and mismatched otherwise. Changes `result` and removes the pairs from the pending lists.
 */
export function reconcile(
  result: Comparison,
  pendingLeft: Sampled<Row>[],
  pendingRight: Sampled<Row>[],
  normalisedKey: (row: Row) => string,
  digestIndex: number,
): void {
  if (pendingLeft.length === 0 || pendingRight.length === 0) return;
  const lefts = new Map<string, Sampled<Row>[]>();
  for (const entry of pendingLeft) {
    const key = normalisedKey(entry.value);
    const list = lefts.get(key);
    if (list) list.push(entry);
    else lefts.set(key, [entry]);
  }
  const pairedLeft = new Set<Sampled<Row>>();
  const pairedRight = new Set<Sampled<Row>>();
  for (const entry of pendingRight) {
    const candidate = lefts.get(normalisedKey(entry.value))?.shift();
    if (!candidate) continue;
    pairedLeft.add(candidate);
    pairedRight.add(entry);
    result.extraLeft--;
    result.extraRight--;
    if (candidate.value[digestIndex] === entry.value[digestIndex]) {
      result.matching++;
    } else {
      result.mismatched++;
      result.samples.mismatched.push({
        seq: Math.min(candidate.seq, entry.seq),
        value: { left: candidate.value, right: entry.value },
      });
    }
  }
  if (pairedLeft.size === 0) return;
  const keptLeft = pendingLeft.filter((entry) => !pairedLeft.has(entry));
  const keptRight = pendingRight.filter((entry) => !pairedRight.has(entry));
  pendingLeft.splice(0, pendingLeft.length, ...keptLeft);
  pendingRight.splice(0, pendingRight.length, ...keptRight);
}

/** A cursor over an array (tests, and rows already in memory). */
export function arrayCursor(rows: readonly Row[]): RowCursor {
  let index = -1;
  return {
    get row() {
      return index >= 0 ? rows[index] : undefined;
    },
    advance() {
      if (index < rows.length) index++;
      return true;
    },
  };
}

/**
 * A cursor over batches of rows: moving within a batch is synchronous, so the merge pays for an
 * await once per batch rather than once per row.
 */
export function batchCursor(batches: AsyncIterator<Row[]>): RowCursor {
  let batch: Row[] = [];
  let index = 0;
  let current: Row | undefined;
  let done = false;
  const load = async (): Promise<void> => {
    while (!done) {
      const next = await batches.next();
      if (next.done) {
        done = true;
        current = undefined;
        return;
      }
      if (next.value.length > 0) {
        batch = next.value;
        index = 0;
        current = batch[0];
        return;
      }
    }
  };
  return {
    get row() {
      return current;
    },
    advance() {
      if (index + 1 < batch.length) {
        current = batch[++index];
        return true;
      }
      batch = [];
      current = undefined;
      return load();
    },
  };
}

/**
 * Keeps the first `limit` samples of a table in key order, as chunks finish in any order: each
 * chunk's samples are ranked by (chunk, position).
 */
export class SampleKeeper<T> {
  readonly #limit: number;
  #kept: Array<{ chunk: number; seq: number; value: T }> = [];

  constructor(limit = 10) {
    this.#limit = limit;
  }

  add(chunk: number, samples: Sampled<T>[]): void {
    if (samples.length === 0) return;
    this.#kept.push(...samples.map((s) => ({ chunk, seq: s.seq, value: s.value })));
    this.#kept.sort((a, b) => a.chunk - b.chunk || a.seq - b.seq);
    this.#kept.splice(this.#limit);
  }

  values(): T[] {
    return this.#kept.map((entry) => entry.value);
  }
}
