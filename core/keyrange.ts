import { UsageError } from './errors.ts';
import { quoted } from './paths.ts';

/**
 * A Vitess key range: hex start inclusive, hex end exclusive, either side empty for unbounded
 * (`-80`, `80-`, `40-80`, `-`). Keyspace ids compare as bytes: a uint64 id as its 8 big-endian
 * bytes, a varbinary id as itself.
 */
export class KeyRange {
  readonly start: Buffer;
  readonly end: Buffer;

  constructor(start: Buffer, end: Buffer) {
    if (end.length > 0 && Buffer.compare(start, end) >= 0) {
      throw new UsageError(
        `key range start ${start.toString('hex')} is not below its end ${end.toString('hex')}`,
      );
    }
    this.start = start;
    this.end = end;
  }

  static full(): KeyRange {
    return new KeyRange(Buffer.alloc(0), Buffer.alloc(0));
  }

  /** Parses `-80`, `40-80`, `80-`, `-` (and `0`, Vitess's name of the single unsharded shard). */
  static parse(text: string): KeyRange {
    const value = text.trim().toLowerCase();
    if (value === '0' || value === '-') return KeyRange.full();
    const match = /^((?:[0-9a-f]{2}){0,32})-((?:[0-9a-f]{2}){0,32})$/.exec(value);
    if (!match) {
      throw new UsageError(`${quoted(text)} is not a key range`, {
        hint: 'use hex boundaries with an even number of digits: -80, 40-80, 80-, or - for everything',
      });
    }
    return new KeyRange(Buffer.from(match[1]!, 'hex'), Buffer.from(match[2]!, 'hex'));
  }

  isFull(): boolean {
    return this.start.length === 0 && this.end.length === 0;
  }

  /** start <= id < end, with an empty side unbounded. */
  contains(id: Buffer): boolean {
    if (this.start.length > 0 && Buffer.compare(this.start, id) > 0) return false;
    return this.end.length === 0 || Buffer.compare(id, this.end) < 0;
  }

  equals(other: KeyRange): boolean {
    return this.start.equals(other.start) && this.end.equals(other.end);
  }

  /** The Vitess name: `40-80`; the full range is `-`. */
  toString(): string {
    return `${this.start.toString('hex')}-${this.end.toString('hex')}`;
  }
}

/**
 * The parts of `within` (default: the whole keyspace) that no range covers (`-40,80-` leaves
 * `40-80`): rows whose keyspace id falls there would be in no copy. Empty when nothing is left out.
 */
export function uncoveredRanges(ranges: readonly KeyRange[], within: KeyRange = KeyRange.full()): KeyRange[] {
  const sorted = [...ranges].sort((a, b) => Buffer.compare(a.start, b.start));
  const reachesEnd = (bound: Buffer) =>
    bound.length === 0 || (within.end.length > 0 && Buffer.compare(bound, within.end) >= 0);
  const gaps: KeyRange[] = [];
  let covered: Buffer = within.start;
  for (const range of sorted) {
    if (Buffer.compare(range.start, covered) > 0) {
      gaps.push(new KeyRange(covered, reachesEnd(range.start) ? within.end : range.start));
      if (reachesEnd(range.start)) return gaps;
    }
    if (reachesEnd(range.end)) return gaps;
    if (Buffer.compare(range.end, covered) > 0) covered = range.end;
  }
  gaps.push(new KeyRange(covered, within.end));
  return gaps;
}

/** `-40,40-80,80-` → three ranges, refusing duplicates. */
export function parseKeyRanges(list: string): KeyRange[] {
  const ranges = list
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)
    .map((part) => KeyRange.parse(part));
  if (ranges.length === 0) throw new UsageError('no key ranges given');
  const seen = new Set<string>();
  for (const range of ranges) {
    if (seen.has(range.toString())) throw new UsageError(`key range ${range} is listed twice`);
    seen.add(range.toString());
  }
  return ranges;
}

/**
 * `count` ranges splitting the keyspace evenly, named the way Vitess names them (`--shards 4` →
 * -40, 40-80, 80-c0, c0-): boundaries of one byte up to 256 shards, two bytes up to 65,536.
 */
export function evenKeyRanges(count: number): KeyRange[] {
  if (!Number.isInteger(count) || count < 1 || count > 65_536) {
    throw new UsageError(`--shards must be an integer from 1 to 65536, got ${count}`);
  }
  if (count === 1) return [KeyRange.full()];
  const width = count <= 256 ? 1 : 2;
  const max = 256 ** width;
  const boundary = (i: number) => {
    const value = Math.floor((i * max) / count);
    const buffer = Buffer.alloc(width);
    buffer.writeUIntBE(value, 0, width);
    return buffer;
  };
  return Array.from(
    { length: count },
    (_, i) =>
      new KeyRange(
        i === 0 ? Buffer.alloc(0) : boundary(i),
        i === count - 1 ? Buffer.alloc(0) : boundary(i + 1),
      ),
  );
}

/** The 8 big-endian bytes of an unsigned 64-bit keyspace id given as decimal text or bigint. */
export function uint64KeyspaceId(value: string | bigint): Buffer {
  const number = typeof value === 'bigint' ? value : BigInt(value);
  if (number < 0n || number > 0xffff_ffff_ffff_ffffn)
    throw new RangeError(`keyspace id ${value} is not a uint64`);
  const buffer = Buffer.alloc(8);
  buffer.writeBigUInt64BE(number);
  return buffer;
}
