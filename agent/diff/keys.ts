/**
 * Comparing primary keys the way the server ordered them. Rows arrive ordered by the server's
 * ORDER BY; the merge must agree with that order exactly, or it reports false extras. Each key
 * column is compared by what the server sorts on:
 *
 * - exact numbers (integers, DECIMAL, YEAR, and ENUM/SET by their index `col+0`): numerically;
 * - FLOAT/DOUBLE: as numbers;
 * - DATE/DATETIME/TIMESTAMP: as text once the fraction is normalised (the session is in UTC);
 * - TIME: as signed microseconds;
 * - BINARY/VARBINARY/BLOB/BIT: bytewise, a shorter prefix first;
 * - character strings: by the collation's weights, which the server computes (`WEIGHT_STRING`),
 *   padded with the weight of a space for PAD SPACE collations (where 'a' = 'a ' and 'a\t' < 'a').
 */

export type KeyKind = 'number' | 'float' | 'temporal' | 'time' | 'binary' | 'text';

export interface KeyColumnOrder {
  kind: KeyKind;
  /** Text only: the collation's weight of one space, when the collation pads with spaces. */
  padWeight?: Buffer | undefined;
}

/** Compares two exact decimal numbers given as text (`-12`, `3.50`, `0.000`). */
export function compareDecimalText(a: string, b: string): number {
  const x = splitDecimal(a);
  const y = splitDecimal(b);
  if (x.negative !== y.negative) return x.negative ? -1 : 1;
  const magnitude = compareMagnitude(x, y);
  return x.negative && magnitude !== 0 ? -magnitude : magnitude;
}

interface DecimalParts {
  negative: boolean;
  integer: string;
  fraction: string;
}

function splitDecimal(text: string): DecimalParts {
  let value = text.trim();
  let negative = false;
  if (value.startsWith('-')) {
    negative = true;
    value = value.slice(1);
  } else if (value.startsWith('+')) {
    value = value.slice(1);
  }
  const dot = value.indexOf('.');
  const integer = (dot < 0 ? value : value.slice(0, dot)).replace(/^0+/, '');
  const fraction = (dot < 0 ? '' : value.slice(dot + 1)).replace(/0+$/, '');
  // -0 and -0.00 are zero.
  if (integer === '' && fraction === '') negative = false;
  return { negative, integer, fraction };
}

function compareMagnitude(x: DecimalParts, y: DecimalParts): number {
  if (x.integer.length !== y.integer.length) return x.integer.length < y.integer.length ? -1 : 1;
  if (x.integer !== y.integer) return x.integer < y.integer ? -1 : 1;
  if (x.fraction === y.fraction) return 0;
  // Fractions without trailing zeros compare as text.
  return x.fraction < y.fraction ? -1 : 1;
}

/** `007.50` → `7.5`, `-0.0` → `0`: one spelling per exact number. */
export function canonicalDecimal(text: string): string {
  const { negative, integer, fraction } = splitDecimal(text);
  const body = `${integer || '0'}${fraction ? `.${fraction}` : ''}`;
  return negative ? `-${body}` : body;
}

function compareExact(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : a > b ? 1 : 0;
  return compareDecimalText(String(a), String(b));
}

/** `2024-01-02` → `2024-01-02 00:00:00`, `… 10:00:00.500000` → `… 10:00:00.5`. */
export function normaliseTemporal(text: string): string {
  let value = text.length === 10 ? `${text} 00:00:00` : text;
  if (value.includes('.')) value = value.replace(/\.?0+$/, '');
  return value;
}

/** `-838:59:59.000001` → signed microseconds. */
export function timeMicroseconds(text: string): number {
  const match = /^(-)?(\d+):(\d\d):(\d\d)(?:\.(\d{1,6}))?$/.exec(text);
  if (!match) throw new RangeError(`${JSON.stringify(text)} is not a TIME value`);
  const [, sign, hours, minutes, seconds, fraction = ''] = match;
  const micros =
    ((Number(hours) * 60 + Number(minutes)) * 60 + Number(seconds)) * 1_000_000 +
    Number(fraction.padEnd(6, '0'));
  return sign ? -micros : micros;
}

/**
 * Compares collation weights. With a pad weight the shorter is extended with spaces, as PAD SPACE
 * collations compare (`WEIGHT_STRING` itself does not pad).
 */
export function compareWeights(a: Buffer, b: Buffer, padWeight?: Buffer): number {
  const common = Math.min(a.length, b.length);
  const head = Buffer.compare(a.subarray(0, common), b.subarray(0, common));
  if (head !== 0 || a.length === b.length) return head;
  if (!padWeight || padWeight.length === 0) return a.length < b.length ? -1 : 1;
  const longer = a.length > b.length ? a : b;
  const sign = a.length > b.length ? 1 : -1;
  for (let at = common; at < longer.length; at += padWeight.length) {
    const unit = longer.subarray(at, at + padWeight.length);
    const order = Buffer.compare(unit, padWeight.subarray(0, unit.length));
    if (order !== 0) return order * sign;
    if (unit.length < padWeight.length) return sign;
  }
  return 0;
}

/** Trailing pad weights removed: equal weights under PAD SPACE give equal text. */
function trimPadding(weight: Buffer, padWeight: Buffer | undefined): Buffer {
  if (!padWeight || padWeight.length === 0) return weight;
  let end = weight.length;
  while (end >= padWeight.length && weight.subarray(end - padWeight.length, end).equals(padWeight)) {
    end -= padWeight.length;
  }
  return weight.subarray(0, end);
}

function asBuffer(value: unknown): Buffer {
  return Buffer.isBuffer(value) ? value : Buffer.from(String(value), 'utf8');
}

/** Compares one key column's sort values. */
export function compareKeyValue(order: KeyColumnOrder, a: unknown, b: unknown): number {
  switch (order.kind) {
    case 'number':
      return compareExact(a, b);
    case 'float': {
      const x = Number(a);
      const y = Number(b);
      return x < y ? -1 : x > y ? 1 : 0;
    }
    case 'temporal': {
      const x = normaliseTemporal(String(a));
      const y = normaliseTemporal(String(b));
      return x < y ? -1 : x > y ? 1 : 0;
    }
    case 'time': {
      const x = timeMicroseconds(String(a));
      const y = timeMicroseconds(String(b));
      return x < y ? -1 : x > y ? 1 : 0;
    }
    case 'binary':
      return Buffer.compare(asBuffer(a), asBuffer(b));
    case 'text':
      return compareWeights(asBuffer(a), asBuffer(b), order.padWeight);
  }
}

/**
 * One spelling of a key column's sort value, equal exactly when the values compare equal: what
 * reconciliation matches extras by.
 */
export function normaliseKeyValue(order: KeyColumnOrder, value: unknown): string {
  switch (order.kind) {
    case 'number':
      return canonicalDecimal(String(value));
    case 'float':
      return String(Number(value));
    case 'temporal':
      return normaliseTemporal(String(value));
    case 'time':
      return String(timeMicroseconds(String(value)));
    case 'binary':
      return asBuffer(value).toString('hex');
    case 'text':
      return trimPadding(asBuffer(value), order.padWeight).toString('hex');
  }
}

/** Compares rows by the sort values at `indexes`, column by column. */
export function rowKeyComparator(
  orders: KeyColumnOrder[],
  indexes: number[],
): (a: readonly unknown[], b: readonly unknown[]) => number {
  if (orders.length === 1) {
    const [order] = orders as [KeyColumnOrder];
    const [index] = indexes as [number];
    return (a, b) => compareKeyValue(order, a[index], b[index]);
  }
  return (a, b) => {
    for (let i = 0; i < orders.length; i++) {
      const order = compareKeyValue(orders[i]!, a[indexes[i]!], b[indexes[i]!]);
      if (order !== 0) return order;
    }
    return 0;
  };
}

/** The normalised key of a row, for matching extras across sides. */
export function normalisedRowKey(
  orders: KeyColumnOrder[],
  indexes: number[],
  row: readonly unknown[],
): string {
  return orders.map((order, i) => normaliseKeyValue(order, row[indexes[i]!])).join('\u0000');
}
