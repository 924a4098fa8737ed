import type { KeyRange } from '../../core/keyrange.ts';
import { quoteIdentifier } from '../mysql/connection.ts';

/**
 * The SQL text the diff sends: the canonical row encoding both servers hash, chunk bounds and
 * key-range filters. Pure string builders; every value that reaches SQL text is validated or
 * hex-encoded here.
 */

export interface EncodedColumn {
  /** The expression read for the column on both sides (the column, or a normalising cast). */
  expression: string;
  /**
   * A byte string (text, binary, ENUM, anything not a number or date): hashed as its bytes and,
   * unless it is the last one, preceded by its length.
   */
  bytes: boolean;
  nullable: boolean;
  /**
   * The character set the expression yields for a byte string: `binary` for binary columns,
   * undefined when the server does not say (then every byte string is cast to binary).
   */
  charset?: string | undefined;
}

/**
 * One byte string per row that two rows share only when their values are equal:
 * `[null flags 0x00] numbers… 0x00 length 0x00 bytes … 0x00 last bytes`. The flags spell which
 * nullable columns are NULL (a NULL is skipped, an empty string is not, so the two never look alike,
 * and no skipped column is confused with a shift of columns). Numbers and dates come first, as their
 * text, which holds no 0x00. Byte strings come last, each preceded by its length as a field of its
 * own (so no 0x00 inside a value can shift the next one), except the last one, which runs to the
 * end. Byte strings are cast to binary only when they are text in more than one character set: a
 * binary separator alone does not stop the server from converting text of differing character sets
 * to one, where distinct bytes can become the same '?'. Every function here costs on every row of
 * both servers, so the columns are probed once (by the plan) and only what needs it is encoded.
 */
export function rowEncodingSql(columns: EncodedColumn[]): string {
  const flags = columns.filter((c) => c.nullable).map((c) => `ISNULL(${c.expression})`);
  const numbers = columns.filter((c) => !c.bytes).map((c) => c.expression);
  const strings = columns.filter((c) => c.bytes);
  const textCharsets = new Set(strings.filter((c) => c.charset !== 'binary').map((c) => c.charset));
  const cast = textCharsets.size > 1 || textCharsets.has(undefined);
  const values = strings.map((c, i) => {
    const value = cast && c.charset !== 'binary' ? `CAST(${c.expression} AS BINARY)` : c.expression;
    return i === strings.length - 1 ? value : `LENGTH(${c.expression}), ${value}`;
  });
  const fields = [...(flags.length ? [`CONCAT(${flags.join(', ')})`] : []), ...numbers, ...values];
  return `CONCAT_WS(_binary X'00', ${fields.join(', ')})`;
}

/** The row digest: SHA-256 of the encoding, as 64 hex digits. */
export function rowDigestSql(encoding: string): string {
  return `SHA2(${encoding}, 256)`;
}

/**
 * A chunk's checksum: its row count and the exact (DECIMAL) sum of the first 64 bits of each row's
 * SHA-256. Unlike an XOR of CRC32s, a duplicated row, a lost row or values swapped between rows
 * change it. Since the encoding is injective, two chunks that differ in any byte of any column
 * differ in at least one row's digest; with SHA-256 taken as a random function, their sums are
 * equal with probability at most 2^-64 (about 5 × 10^-20 per chunk): the last differing row's 64
 * bits must hit one exact value. No cheaper 64-bit hash exists on both servers: MySQL 9.7 has no
 * MD5, SHA1 or CRC32C, and two CRC32s are linear in the bytes, so the obvious second one (another
 * seed, another column order) fails exactly when the first does.
 */
export function checksumSql(table: string, encoding: string, where: string | undefined): string {
  return `SELECT COUNT(*) AS row_count, SUM(CAST(CONV(LEFT(${rowDigestSql(encoding)}, 16), 16, 10) AS UNSIGNED)) AS row_hash_sum FROM ${table}${where ? ` WHERE ${where}` : ''}`;
}

/** How a key column's values are written as SQL literals. */
export type LiteralKind = 'number' | 'float' | 'temporal' | 'binary' | 'text';

/** A key value as a literal the server compares in the column's own type and collation. */
export function keyLiteral(kind: LiteralKind, value: unknown): string {
  switch (kind) {
    case 'number': {
      const text = String(value);
      if (!/^-?\d+(\.\d+)?$/.test(text))
        throw new RangeError(`${JSON.stringify(text)} is not an exact number`);
      return text;
    }
    case 'float': {
      const number = Number(value);
      if (!Number.isFinite(number)) throw new RangeError(`${JSON.stringify(value)} is not a number`);
      return String(number);
    }
    case 'temporal': {
      const text = String(value);
      if (!/^-?[0-9][0-9:. -]*$/.test(text))
        throw new RangeError(`${JSON.stringify(text)} is not a date or time`);
      return `'${text}'`;
    }
    case 'binary':
      return `X'${toBuffer(value).toString('hex')}'`;
    case 'text':
      // Hex keeps the bytes exact whatever sql_mode says about backslashes; the introducer makes
      // it text that takes the column's collation.
      return `_utf8mb4 X'${toBuffer(value).toString('hex')}'`;
  }
}

function toBuffer(value: unknown): Buffer {
  return Buffer.isBuffer(value) ? value : Buffer.from(String(value), 'utf8');
}

export interface KeyPart {
  /** The quoted column. */
  column: string;
  literal: LiteralKind;
}

/**
 * `key > bound` over a composite key, spelled as ORs of equalities (MariaDB uses the primary key
 * for these ranges; it does not for row constructors).
 */
export function keyAfterSql(parts: KeyPart[], bound: readonly unknown[]): string {
  return keyComparisonSql(parts, bound, '>');
}

/** `key <= bound` over a composite key. */
export function keyAtMostSql(parts: KeyPart[], bound: readonly unknown[]): string {
  return keyComparisonSql(parts, bound, '<=');
}

/** `key = bound`. */
export function keyEqualsSql(parts: KeyPart[], bound: readonly unknown[]): string {
  return parts.map((part, i) => `${part.column} = ${keyLiteral(part.literal, bound[i])}`).join(' AND ');
}

function keyComparisonSql(parts: KeyPart[], bound: readonly unknown[], last: '>' | '<='): string {
  const strict = last === '>' ? '>' : '<';
  const alternatives: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const equalities = parts
      .slice(0, i)
      .map((part, j) => `${part.column} = ${keyLiteral(part.literal, bound[j])}`);
    const operator = i === parts.length - 1 ? last : strict;
    alternatives.push(
      [...equalities, `${parts[i]!.column} ${operator} ${keyLiteral(parts[i]!.literal, bound[i])}`].join(
        ' AND ',
      ),
    );
  }
  return alternatives.length === 1 ? alternatives[0]! : `(${alternatives.map((a) => `(${a})`).join(' OR ')})`;
}

/**
 * The SQL filter for rows whose keyspace id is in `range`: a BIGINT UNSIGNED id compares as its 8
 * big-endian bytes, a VARBINARY id as itself (both as `KeyRange.contains` compares). Undefined for
 * the full range.
 */
export function keyRangeSql(range: KeyRange, column: string, type: 'uint64' | 'bytes'): string | undefined {
  const quoted = quoteIdentifier(column);
  const conditions: string[] = [];
  if (type === 'bytes') {
    if (range.start.length > 0) conditions.push(`${quoted} >= X'${range.start.toString('hex')}'`);
    if (range.end.length > 0) conditions.push(`${quoted} < X'${range.end.toString('hex')}'`);
  } else {
    if (range.start.length > 0) {
      const [bound, longer] = uint64Bound(range.start);
      // An id is 8 bytes: it is at least a longer start only when its 8 bytes exceed the start's.
      conditions.push(longer ? `${quoted} > ${bound}` : `${quoted} >= ${bound}`);
    }
    if (range.end.length > 0) {
      const [bound, longer] = uint64Bound(range.end);
      conditions.push(longer ? `${quoted} <= ${bound}` : `${quoted} < ${bound}`);
    }
  }
  return conditions.length ? conditions.join(' AND ') : undefined;
}

/** The first 8 bytes of a bound (zero-padded) as a uint64, and whether the bound had more bytes. */
function uint64Bound(bytes: Buffer): [string, boolean] {
  const padded = Buffer.alloc(8);
  bytes.copy(padded, 0, 0, Math.min(8, bytes.length));
  return [padded.readBigUInt64BE().toString(), bytes.length > 8];
}
