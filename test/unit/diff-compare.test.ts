import { describe, expect, it } from 'vitest';
import {
  arrayCursor,
  batchCursor,
  type CompareSpec,
  compareOrderedRows,
  type Row,
  SampleKeeper,
} from '../../agent/diff/compare.ts';
import {
  canonicalDecimal,
  compareDecimalText,
  compareKeyValue,
  compareWeights,
  type KeyColumnOrder,
  normalisedRowKey,
  normaliseKeyValue,
  rowKeyComparator,
  timeMicroseconds,
} from '../../agent/diff/keys.ts';

const hex = (text: string) => Buffer.from(text, 'hex');

describe('key order', () => {
  it('orders exact numbers numerically whatever their spelling', () => {
    const values = ['-10', '-9.5', '-0.001', '0', '0.5', '2', '10', '10.01', '18446744073709551615'];
    for (let i = 0; i < values.length; i++) {
      for (let j = 0; j < values.length; j++) {
        expect(Math.sign(compareDecimalText(values[i]!, values[j]!))).toBe(Math.sign(i - j));
      }
    }
    expect(compareDecimalText('1.50', '1.5')).toBe(0);
    expect(compareDecimalText('-0.00', '0')).toBe(0);
    expect(compareKeyValue({ kind: 'number' }, 9, '10')).toBeLessThan(0);
    expect(compareKeyValue({ kind: 'number' }, '9223372036854775808', '9223372036854775807')).toBeGreaterThan(
      0,
    );
  });

  it('spells an exact number one way', () => {
    expect(canonicalDecimal('007.50')).toBe('7.5');
    expect(canonicalDecimal('-0.000')).toBe('0');
    expect(canonicalDecimal('-12')).toBe('-12');
    expect(canonicalDecimal('0.25')).toBe('0.25');
  });

  it('compares PAD SPACE weights as if the shorter were padded with spaces', () => {
    const space = hex('0020');
    // utf8mb4_general_ci: 'a' = 0041, 'a ' = 00410020, 'a\t' = 00410009.
    expect(compareWeights(hex('0041'), hex('00410020'), space)).toBe(0);
    expect(compareWeights(hex('00410009'), hex('0041'), space)).toBeLessThan(0);
    expect(compareWeights(hex('0041'), hex('00410009'), space)).toBeGreaterThan(0);
    expect(compareWeights(hex('0041'), hex('00410041'), space)).toBeLessThan(0);
    expect(compareWeights(hex('0042'), hex('00410041'), space)).toBeGreaterThan(0);
    // NO PAD: the shorter prefix sorts first.
    expect(compareWeights(hex('00410009'), hex('0041'))).toBeGreaterThan(0);
  });

  it('normalises keys so that equal keys have one spelling', () => {
    const text: KeyColumnOrder = { kind: 'text', padWeight: hex('0020') };
    expect(normaliseKeyValue(text, hex('00410020'))).toBe(normaliseKeyValue(text, hex('0041')));
    expect(normaliseKeyValue({ kind: 'number' }, '1.00')).toBe(normaliseKeyValue({ kind: 'number' }, 1));
    expect(normaliseKeyValue({ kind: 'temporal' }, '2024-01-02')).toBe(
      normaliseKeyValue({ kind: 'temporal' }, '2024-01-02 00:00:00.000000'),
    );
    expect(normaliseKeyValue({ kind: 'binary' }, Buffer.from('ab'))).toBe('6162');
  });

  it('orders TIME values, negative ones first', () => {
    expect(timeMicroseconds('-838:59:59')).toBeLessThan(timeMicroseconds('-00:00:01'));
    expect(timeMicroseconds('100:00:00')).toBeGreaterThan(timeMicroseconds('99:59:59.999999'));
    expect(timeMicroseconds('00:00:00.5')).toBe(500_000);
  });

  it('orders temporal values with differing fractions', () => {
    const order: KeyColumnOrder = { kind: 'temporal' };
    expect(compareKeyValue(order, '2024-01-01 10:00:00', '2024-01-01 10:00:00.000000')).toBe(0);
    expect(compareKeyValue(order, '2024-01-01 10:00:00', '2024-01-01 10:00:00.000001')).toBeLessThan(0);
    expect(compareKeyValue(order, '2024-01-01', '2024-01-01 00:00:01')).toBeLessThan(0);
  });

  it('compares composite keys column by column', () => {
    const compare = rowKeyComparator([{ kind: 'number' }, { kind: 'binary' }], [0, 1]);
    expect(compare([1, Buffer.from('b')], [1, Buffer.from('a')])).toBeGreaterThan(0);
    expect(compare([1, Buffer.from('b')], [2, Buffer.from('a')])).toBeLessThan(0);
    expect(compare([2, Buffer.from('a')], ['2', Buffer.from('a')])).toBe(0);
  });
});

/** Rows are [key, digest]. */
const spec = (extra: Partial<CompareSpec> = {}): CompareSpec => ({
  compareKeys: rowKeyComparator([{ kind: 'number' }], [0]),
  digestIndex: 1,
  normalisedKey: (row) => normalisedRowKey([{ kind: 'number' }], [0], row),
  ...extra,
});

const rows = (...pairs: Array<[number | string, string]>): Row[] => pairs;

describe('compareOrderedRows', () => {
  it('reports nothing for identical streams', async () => {
    const same = rows([1, 'a'], [2, 'b'], [3, 'c']);
    const result = await compareOrderedRows(arrayCursor(same), arrayCursor(same), spec());
    expect(result).toMatchObject({ matching: 3, mismatched: 0, extraLeft: 0, extraRight: 0 });
  });

  it('classifies updates, deletes and inserts exactly, with samples in key order', async () => {
    const left = rows([1, 'a'], [2, 'b'], [3, 'c'], [4, 'd'], [6, 'f']);
    const right = rows([1, 'a'], [2, 'B'], [4, 'd'], [5, 'e'], [6, 'F'], [7, 'g']);
    const result = await compareOrderedRows(arrayCursor(left), arrayCursor(right), spec());
    expect(result).toMatchObject({ matching: 2, mismatched: 2, extraLeft: 1, extraRight: 2 });
    expect(result.samples.mismatched.map((s) => s.value.left[0])).toEqual([2, 6]);
    expect(result.samples.extraLeft.map((s) => s.value[0])).toEqual([3]);
    expect(result.samples.extraRight.map((s) => s.value[0])).toEqual([5, 7]);
  });

  it('handles an empty side', async () => {
    const some = rows([1, 'a'], [2, 'b']);
    expect(await compareOrderedRows(arrayCursor([]), arrayCursor(some), spec())).toMatchObject({
      matching: 0,
      extraRight: 2,
    });
    expect(await compareOrderedRows(arrayCursor(some), arrayCursor([]), spec())).toMatchObject({
      matching: 0,
      extraLeft: 2,
    });
  });

  it('keeps only the first samples of each kind', async () => {
    const left = Array.from({ length: 50 }, (_, i): Row => [i, 'x']);
    const result = await compareOrderedRows(arrayCursor(left), arrayCursor([]), spec({ sampleLimit: 3 }));
    expect(result.extraLeft).toBe(50);
    expect(result.samples.extraLeft.map((s) => s.value[0])).toEqual([0, 1, 2]);
  });

  it('ignores left rows outside the kept set', async () => {
    const left = rows([1, 'a'], [2, 'b'], [3, 'c'], [4, 'd']);
    const right = rows([2, 'b'], [4, 'd'], [5, 'e']);
    const result = await compareOrderedRows(
      arrayCursor(left),
      arrayCursor(right),
      spec({ keepLeft: (row) => Number(row[0]) % 2 === 0 }),
    );
    expect(result).toMatchObject({ matching: 2, mismatched: 0, extraLeft: 0, extraRight: 1 });
  });

  it('reconciles extras with the same normalised key into one mismatched or matching row', async () => {
    // The left spells keys as decimals the comparator here does not equate, as a server whose
    // order disagrees with ours would: both sides see extras.
    const byText = (a: Row, b: Row) =>
      String(a[0]) < String(b[0]) ? -1 : String(a[0]) > String(b[0]) ? 1 : 0;
    const left = rows(['1.0', 'a'], ['2.0', 'b'], ['3', 'c']);
    const right = rows(['1', 'a'], ['2', 'X'], ['4', 'd']);
    const result = await compareOrderedRows(
      arrayCursor(left),
      arrayCursor(right),
      spec({ compareKeys: byText }),
    );
    expect(result).toMatchObject({ matching: 1, mismatched: 1, extraLeft: 1, extraRight: 1 });
    expect(result.samples.mismatched.map((s) => [s.value.left[0], s.value.right[0]])).toEqual([['2.0', '2']]);
    expect(result.samples.extraLeft.map((s) => s.value[0])).toEqual(['3']);
    expect(result.samples.extraRight.map((s) => s.value[0])).toEqual(['4']);
  });

  it('pairs duplicated rows one for one when rows are ordered by digest (no primary key)', async () => {
    const byDigest = rowKeyComparator([{ kind: 'binary' }], [0]);
    const d = (text: string) => Buffer.from(text);
    const left: Row[] = [
      [d('a'), 'a'],
      [d('a'), 'a'],
      [d('b'), 'b'],
    ];
    const right: Row[] = [
      [d('a'), 'a'],
      [d('b'), 'b'],
      [d('b'), 'b'],
      [d('c'), 'c'],
    ];
    const result = await compareOrderedRows(arrayCursor(left), arrayCursor(right), {
      compareKeys: byDigest,
      digestIndex: 1,
    });
    expect(result).toMatchObject({ matching: 2, mismatched: 0, extraLeft: 1, extraRight: 2 });
  });

  it('reads batches, skipping empty ones', async () => {
    async function* batches(): AsyncGenerator<Row[]> {
      yield [[1, 'a']];
      yield [];
      yield [
        [2, 'b'],
        [3, 'c'],
      ];
    }
    const result = await compareOrderedRows(
      batchCursor(batches()),
      arrayCursor(rows([1, 'a'], [2, 'b'], [3, 'c'])),
      spec(),
    );
    expect(result).toMatchObject({ matching: 3, extraLeft: 0, extraRight: 0 });
  });

  it('passes a stream failure on', async () => {
    async function* failing(): AsyncGenerator<Row[]> {
      yield [[1, 'a']];
      throw new Error('connection lost');
    }
    await expect(
      compareOrderedRows(batchCursor(failing()), arrayCursor(rows([1, 'a'], [2, 'b'])), spec()),
    ).rejects.toThrow('connection lost');
  });
});

describe('SampleKeeper', () => {
  it('keeps the first samples in chunk order whatever order chunks finish in', () => {
    const keeper = new SampleKeeper<string>(3);
    keeper.add(2, [
      { seq: 0, value: 'c0' },
      { seq: 1, value: 'c1' },
    ]);
    keeper.add(0, [{ seq: 5, value: 'a5' }]);
    keeper.add(1, [
      { seq: 0, value: 'b0' },
      { seq: 9, value: 'b9' },
    ]);
    expect(keeper.values()).toEqual(['a5', 'b0', 'b9']);
  });
});
