import type { KeyRange } from '../../../../core/keyrange.ts';

/** The keyspace id types Vitess shards by: an unsigned 64-bit integer, or a varbinary. */
export type KeyType = 'uint64' | 'bytes';

const COMMA = 0x2c;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const ZERO = 0x30;
const NINE = 0x39;
const MAX_UINT64 = Buffer.from('18446744073709551615', 'latin1');

/**
 * Routes a row to the key ranges that contain its keyspace id, reading the id as the dump wrote it
 * (the first field of the row: decimal for uint64, `"HEX"` for bytes) without decoding it: each range
 * boundary is turned once into the same text, whose order matches the ids' byte order.
 */
export interface KeyspaceIdRouter {
  readonly ranges: readonly KeyRange[];
  /**
   * Fills `out` with the indexes of the ranges containing the id in `row[start, end)`. Throws
   * KeyspaceIdError when the field is NULL or not a keyspace id of this type.
   */
  route(row: Buffer, start: number, end: number, out: number[]): void;
}

/** A keyspace id field that is NULL or malformed; the caller names the table and column. */
export class KeyspaceIdError extends Error {
  readonly isNull: boolean;
  constructor(message: string, isNull: boolean) {
    super(message);
    this.name = 'KeyspaceIdError';
    this.isNull = isNull;
  }
}

function describeField(row: Buffer, start: number, end: number): string {
  return JSON.stringify(row.toString('latin1', start, Math.min(end, start + 40)));
}

function isNullField(row: Buffer, start: number, end: number): boolean {
  return end - start === 2 && row[start] === BACKSLASH && row[start + 1] === 0x4e;
}

/**
 * A uint64 bound as decimal text, such that `id >= bound` (as bytes: 8 big-endian bytes against the
 * boundary) holds exactly when the id's decimal is at least this number. A boundary of up to 8 bytes
 * is the id it pads to; a longer one sorts after its first 8 bytes, so the bound is that plus one.
 * Undefined when no uint64 reaches it.
 */
export function uint64Bound(boundary: Buffer): Buffer | undefined {
  const padded = Buffer.alloc(8);
  boundary.copy(padded, 0, 0, Math.min(8, boundary.length));
  let value = padded.readBigUInt64BE();
  if (boundary.length > 8) value += 1n;
  if (value > 0xffff_ffff_ffff_ffffn) return undefined;
  return Buffer.from(value.toString(), 'latin1');
}

/** Compares two decimal numbers without leading zeros: the longer is larger, else bytewise. */
function compareDecimal(row: Buffer, start: number, end: number, bound: Buffer): number {
  const length = end - start;
  if (length !== bound.length) return length - bound.length;
  return row.compare(bound, 0, bound.length, start, end);
}

interface Bounds {
  /** Inclusive lower bound; undefined when the range has no start. */
  start: Buffer | undefined;
  /** Exclusive upper bound; undefined when the range has no end (or no id reaches it). */
  end: Buffer | undefined;
  /** A start no id reaches: the range holds no id. */
  empty: boolean;
}

/** Compares the id in `row[from, to)` with a bound in the same text form: negative, 0, positive. */
type CompareId = (row: Buffer, from: number, to: number, bound: Buffer) => number;

/**
 * Finds the ranges holding an id. Disjoint ranges (a split: the usual case) are searched by binary
 * search over their starts, so `--shards 256` costs little more per row than `--shards 4`;
 * overlapping ones are each tested.
 */
class RangeMatcher {
  readonly #bounds: Bounds[];
  readonly #compare: CompareId;
  /** Range indexes sorted by start, when the ranges are disjoint. */
  readonly #sorted: number[] | undefined;

  constructor(ranges: readonly KeyRange[], bounds: Bounds[], compare: CompareId) {
    this.#bounds = bounds;
    this.#compare = compare;
    const order = ranges.map((_, i) => i).sort((a, b) => Buffer.compare(ranges[a]!.start, ranges[b]!.start));
    const disjoint = order.every((index, i) => {
      const next = order[i + 1];
      if (next === undefined) return true;
      const end = ranges[index]!.end;
      return end.length > 0 && Buffer.compare(end, ranges[next]!.start) <= 0;
    });
    this.#sorted = disjoint ? order : undefined;
  }

  match(row: Buffer, from: number, to: number, out: number[]): void {
    const sorted = this.#sorted;
    if (!sorted) {
      for (let r = 0; r < this.#bounds.length; r++) if (this.#holds(r, row, from, to)) out.push(r);
      return;
    }
    // The last range whose start is at or below the id is the only one that may hold it.
    let low = 0;
    let high = sorted.length - 1;
    let candidate = -1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      const bound = this.#bounds[sorted[middle]!]!;
      if (bound.empty) high = middle - 1;
      else if (!bound.start || this.#compare(row, from, to, bound.start) >= 0) {
        candidate = middle;
        low = middle + 1;
      } else high = middle - 1;
    }
    if (candidate >= 0 && this.#holds(sorted[candidate]!, row, from, to)) out.push(sorted[candidate]!);
  }

  #holds(r: number, row: Buffer, from: number, to: number): boolean {
    const bound = this.#bounds[r]!;
    if (bound.empty) return false;
    if (bound.start && this.#compare(row, from, to, bound.start) < 0) return false;
    return !bound.end || this.#compare(row, from, to, bound.end) < 0;
  }
}

const compareBytes: CompareId = (row, from, to, bound) => row.compare(bound, 0, bound.length, from, to);

export function uint64Router(ranges: readonly KeyRange[]): KeyspaceIdRouter {
  const bounds: Bounds[] = ranges.map((range) => {
    const start = range.start.length > 0 ? uint64Bound(range.start) : undefined;
    return {
      start,
      end: range.end.length > 0 ? uint64Bound(range.end) : undefined,
      empty: range.start.length > 0 && start === undefined,
    };
  });
  const matcher = new RangeMatcher(ranges, bounds, compareDecimal);
  return {
    ranges,
    route(row, start, end, out) {
      out.length = 0;
      let from = start;
      if (from === end) throw new KeyspaceIdError('keyspace id is empty', false);
      for (let i = from; i < end; i++) {
        const byte = row[i]!;
        if (byte < ZERO || byte > NINE) {
          if (isNullField(row, start, end)) throw new KeyspaceIdError('keyspace id is NULL', true);
          throw new KeyspaceIdError(`keyspace id ${describeField(row, start, end)} is not a uint64`, false);
        }
      }
      while (from < end - 1 && row[from] === ZERO) from++;
      if (compareDecimal(row, from, end, MAX_UINT64) > 0) {
        throw new KeyspaceIdError(`keyspace id ${describeField(row, start, end)} is not a uint64`, false);
      }
      matcher.match(row, from, end, out);
    },
  };
}

function isHexDigit(byte: number): boolean {
  return (byte >= ZERO && byte <= NINE) || (byte >= 0x41 && byte <= 0x46);
}

/**
 * Varbinary ids are dumped as `HEX(col)`: uppercase hex in double quotes. Hex text compares like the
 * bytes it encodes (two digits per byte, digit order is byte order, prefixes stay prefixes).
 */
export function bytesRouter(ranges: readonly KeyRange[]): KeyspaceIdRouter {
  const bounds = ranges.map((range) => ({
    start:
      range.start.length > 0 ? Buffer.from(range.start.toString('hex').toUpperCase(), 'latin1') : undefined,
    end: range.end.length > 0 ? Buffer.from(range.end.toString('hex').toUpperCase(), 'latin1') : undefined,
  }));
  const matcher = new RangeMatcher(
    ranges,
    bounds.map((bound) => ({ ...bound, empty: false })),
    compareBytes,
  );
  return {
    ranges,
    route(row, start, end, out) {
      out.length = 0;
      if (isNullField(row, start, end)) throw new KeyspaceIdError('keyspace id is NULL', true);
      const valid =
        end - start >= 2 && row[start] === QUOTE && row[end - 1] === QUOTE && (end - start) % 2 === 0;
      if (valid) {
        for (let i = start + 1; i < end - 1; i++) {
          if (!isHexDigit(row[i]!)) {
            throw new KeyspaceIdError(`keyspace id ${describeField(row, start, end)} is not hex`, false);
          }
        }
      } else {
        throw new KeyspaceIdError(
          `keyspace id ${describeField(row, start, end)} is not a quoted hex string`,
          false,
        );
      }
      matcher.match(row, start + 1, end - 1, out);
    },
  };
}

export function keyspaceIdRouter(type: KeyType, ranges: readonly KeyRange[]): KeyspaceIdRouter {
  return type === 'uint64' ? uint64Router(ranges) : bytesRouter(ranges);
}

/** Where the first field of a row ends: its first comma (keyspace ids never hold one). */
export function firstFieldEnd(row: Buffer, start: number, end: number): number {
  const comma = row.indexOf(COMMA, start);
  return comma < 0 || comma >= end ? -1 : comma;
}
