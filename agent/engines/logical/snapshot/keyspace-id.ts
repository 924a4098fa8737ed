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
  /** A start no uint64 reaches: the range holds no uint64 id. */
  empty: boolean;
}

export function uint64Router(ranges: readonly KeyRange[]): KeyspaceIdRouter {
  const bounds: Bounds[] = ranges.map((range) => {
    const start = range.start.length > 0 ? uint64Bound(range.start) : undefined;
    return {
      start,
      end: range.end.length > 0 ? uint64Bound(range.end) : undefined,
      empty: range.start.length > 0 && start === undefined,
    };
  });
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
      for (let r = 0; r < bounds.length; r++) {
        const bound = bounds[r]!;
        if (bound.empty) continue;
        if (bound.start && compareDecimal(row, from, end, bound.start) < 0) continue;
        if (bound.end && compareDecimal(row, from, end, bound.end) >= 0) continue;
        out.push(r);
      }
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
      const from = start + 1;
      const to = end - 1;
      for (let r = 0; r < bounds.length; r++) {
        const bound = bounds[r]!;
        if (bound.start && row.compare(bound.start, 0, bound.start.length, from, to) < 0) continue;
        if (bound.end && row.compare(bound.end, 0, bound.end.length, from, to) >= 0) continue;
        out.push(r);
      }
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
