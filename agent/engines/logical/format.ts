import type { ColumnDefinition } from '../../../core/manifest.ts';
import { quoteIdentifier } from '../../mysql/connection.ts';

/**
 * The text format of snapshot data files, shared by SELECT … INTO OUTFILE and LOAD DATA: binary
 * charset, comma-separated, strings enclosed in double quotes, backslash escapes, one row per line.
 * These exact options round-trip NULL (`\N`), NUL, quotes, backslashes, newlines and any byte.
 */
export const DATA_FORMAT =
  "CHARACTER SET binary FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n'";

/** How one column travels through a data file. */
export interface ColumnCodec {
  /** The SELECT expression that writes it. */
  select: string;
  /** The LOAD DATA column-list entry that reads it: the column, or a user variable. */
  load: string;
  /** The LOAD DATA SET assignment when `load` is a variable. */
  set?: string;
}

/**
 * BIT values are written as raw bytes, unescaped (a bit value 0x0a would end the row), so they travel
 * as unsigned decimals. MariaDB's UUID/INET4/INET6 read a binary-charset string as their 16/4-byte
 * binary form, so their text form is converted back to text on load. MySQL refuses to make a JSON
 * value of a binary-charset string, so JSON columns (MySQL's own type; MariaDB's JSON is LONGTEXT)
 * are read as utf8mb4 text.
 */
export function columnCodec(column: ColumnDefinition, index: number): ColumnCodec {
  const name = quoteIdentifier(column.name);
  const type = column.type.toLowerCase();
  if (/^bit\b/.test(type)) {
    return {
      select: `CAST(${name} AS UNSIGNED)`,
      load: `@c${index}`,
      set: `${name} = CAST(@c${index} AS UNSIGNED)`,
    };
  }
  if (/^(uuid|inet4|inet6)\b/.test(type)) {
    return { select: name, load: `@c${index}`, set: `${name} = CONVERT(@c${index} USING latin1)` };
  }
  if (/^json\b/.test(type)) {
    return { select: name, load: `@c${index}`, set: `${name} = CONVERT(@c${index} USING utf8mb4)` };
  }
  return { select: name, load: name };
}

/** The columns a data file holds, in order: every column that is not generated. */
export function dataColumns(columns: readonly ColumnDefinition[]): ColumnDefinition[] {
  return columns.filter((column) => !column.generated);
}

/**
 * Storage names are flat and safe whatever the table is called: `<table index>.<part>.csv[.zst]`,
 * the table's name stays in the manifest.
 */
export function dataFileName(tableIndex: number, part: number, suffix: string): string {
  return `${String(tableIndex).padStart(4, '0')}.${String(part).padStart(4, '0')}.csv${suffix}`;
}
