import { firstFieldEnd, KeyspaceIdError, type KeyspaceIdRouter } from './keyspace-id.ts';

const NEWLINE = 0x0a;
const BACKSLASH = 0x5c;

/** Whole rows for one target (a key range), ready to be written as they are. */
export interface RowBatch {
  target: number;
  data: Buffer;
  rows: number;
}

export interface RowSplitterOptions {
  /**
   * Routes each row by its first field (the keyspace id), which is left out of the output. Without a
   * router every row goes to target 0 unchanged.
   */
  router?: KeyspaceIdRouter | undefined;
  /** Batches are handed out before they grow past this many bytes; a longer row is a batch of its own. */
  batchBytes: number;
}

/** A row the splitter could not place; `row` counts from 1. */
export class RowError extends Error {
  readonly row: number;
  constructor(message: string, row: number, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'RowError';
    this.row = row;
  }
}

function trailingBackslashes(buffer: Buffer): number {
  let count = 0;
  for (let i = buffer.length - 1; i >= 0 && buffer[i] === BACKSLASH; i--) count++;
  return count;
}

/**
 * Cuts the text of SELECT … INTO OUTFILE (backslash escapes) into whole rows, whatever the chunk
 * boundaries. A row ends at a newline that is not escaped, i.e. not preceded by an odd run of
 * backslashes: data newlines are written as `\` + newline, data backslashes as `\\`, so commas,
 * quotes, NUL (`\0`) and NULL (`\N`) never end a row. Rows are never rewritten: without a router a
 * batch is a slice of the input; with one, each row minus its first field is copied into its ranges'
 * batches.
 */
export class RowSplitter {
  readonly #router: KeyspaceIdRouter | undefined;
  readonly #batchBytes: number;
  /** The start of a row that continues in the next chunk. */
  #carry: Buffer[] = [];
  #carryLength = 0;
  #carryBackslashes = 0;
  #rows = 0;
  /** Per target: the batch being filled (router mode). */
  readonly #pending: { data: Buffer | undefined; used: number; rows: number }[] = [];
  readonly #targets: number[] = [];

  constructor(options: RowSplitterOptions) {
    if (!(options.batchBytes > 0))
      throw new RangeError(`batchBytes must be positive, got ${options.batchBytes}`);
    this.#router = options.router;
    this.#batchBytes = options.batchBytes;
    const targets = options.router ? options.router.ranges.length : 1;
    for (let i = 0; i < targets; i++) this.#pending.push({ data: undefined, used: 0, rows: 0 });
  }

  /** Rows seen so far (each counted once, whatever number of ranges it went to). */
  get rows(): number {
    return this.#rows;
  }

  /** Takes the next bytes of the dump; returns the batches that became full. */
  push(chunk: Buffer): RowBatch[] {
    const out: RowBatch[] = [];
    let from = 0;
    if (this.#carryLength > 0) {
      const end = this.#rowEnd(chunk, 0, this.#carryBackslashes);
      if (end < 0) {
        this.#addCarry(chunk);
        return out;
      }
      this.#carry.push(chunk.subarray(0, end + 1));
      const row = Buffer.concat(this.#carry, this.#carryLength + end + 1);
      this.#carry = [];
      this.#carryLength = 0;
      this.#carryBackslashes = 0;
      this.#take(row, 0, row.length, out);
      from = end + 1;
    }
    if (this.#router) this.#splitRows(chunk, from, out);
    else this.#sliceRows(chunk, from, out);
    return out;
  }

  /** Ends the input: returns what is left. Throws when the input stopped inside a row. */
  end(): RowBatch[] {
    if (this.#carryLength > 0) {
      throw new RowError(
        `the dump ends inside row ${this.#rows + 1} (${this.#carryLength} bytes without an end of line)`,
        this.#rows + 1,
      );
    }
    const out: RowBatch[] = [];
    for (let target = 0; target < this.#pending.length; target++) this.#flush(target, out);
    return out;
  }

  /** The index of the newline ending the row that runs from `from`, or -1. */
  #rowEnd(chunk: Buffer, from: number, backslashesBefore: number): number {
    let at = chunk.indexOf(NEWLINE, from);
    while (at >= 0) {
      let run = 0;
      let i = at - 1;
      while (i >= from && chunk[i] === BACKSLASH) {
        run++;
        i--;
      }
      if (i < from) run += backslashesBefore;
      if (run % 2 === 0) return at;
      at = chunk.indexOf(NEWLINE, at + 1);
    }
    return -1;
  }

  #addCarry(part: Buffer): void {
    if (part.length === 0) return;
    this.#carry.push(part);
    this.#carryLength += part.length;
    const trailing = trailingBackslashes(part);
    this.#carryBackslashes = trailing === part.length ? this.#carryBackslashes + trailing : trailing;
  }

  /** Without a router: batches are slices of the chunk, cut between rows. */
  #sliceRows(chunk: Buffer, from: number, out: RowBatch[]): void {
    let batchStart = from;
    let batchRows = 0;
    let start = from;
    for (;;) {
      const end = this.#rowEnd(chunk, start, 0);
      if (end < 0) break;
      if (batchRows > 0 && end + 1 - batchStart > this.#batchBytes) {
        out.push({ target: 0, data: chunk.subarray(batchStart, start), rows: batchRows });
        batchStart = start;
        batchRows = 0;
      }
      batchRows++;
      this.#rows++;
      start = end + 1;
    }
    if (batchRows > 0) out.push({ target: 0, data: chunk.subarray(batchStart, start), rows: batchRows });
    this.#addCarry(chunk.subarray(start));
  }

  #splitRows(chunk: Buffer, from: number, out: RowBatch[]): void {
    let start = from;
    for (;;) {
      const end = this.#rowEnd(chunk, start, 0);
      if (end < 0) break;
      this.#take(chunk, start, end + 1, out);
      start = end + 1;
    }
    this.#addCarry(chunk.subarray(start));
  }

  /** One whole row `[start, end)` (newline included). */
  #take(buffer: Buffer, start: number, end: number, out: RowBatch[]): void {
    this.#rows++;
    const router = this.#router;
    if (!router) {
      out.push({ target: 0, data: buffer.subarray(start, end), rows: 1 });
      return;
    }
    const fieldEnd = firstFieldEnd(buffer, start, end);
    if (fieldEnd < 0) throw new RowError(`row ${this.#rows} has no field after its keyspace id`, this.#rows);
    try {
      router.route(buffer, start, fieldEnd, this.#targets);
    } catch (error) {
      if (error instanceof KeyspaceIdError)
        throw new RowError(`row ${this.#rows}: ${error.message}`, this.#rows, error);
      throw error;
    }
    for (const target of this.#targets) this.#append(target, buffer, fieldEnd + 1, end, out);
  }

  #append(target: number, source: Buffer, start: number, end: number, out: RowBatch[]): void {
    const pending = this.#pending[target]!;
    const length = end - start;
    if (pending.used + length > this.#batchBytes) this.#flush(target, out);
    if (length > this.#batchBytes) {
      out.push({ target, data: source.subarray(start, end), rows: 1 });
      return;
    }
    pending.data ??= Buffer.allocUnsafe(this.#batchBytes);
    source.copy(pending.data, pending.used, start, end);
    pending.used += length;
    pending.rows++;
  }

  #flush(target: number, out: RowBatch[]): void {
    const pending = this.#pending[target]!;
    if (pending.rows === 0 || !pending.data) return;
    out.push({ target, data: pending.data.subarray(0, pending.used), rows: pending.rows });
    pending.data = undefined;
    pending.used = 0;
    pending.rows = 0;
  }
}
