import { describe, expect, it } from 'vitest';
import { UsageError } from '../../core/errors.ts';
import {
  evenKeyRanges,
  KeyRange,
  parseKeyRanges,
  uint64KeyspaceId,
  uncoveredRanges,
} from '../../core/keyrange.ts';

const id = (hex: string) => Buffer.from(hex, 'hex');

describe('KeyRange', () => {
  it('contains its start and not its end', () => {
    const range = KeyRange.parse('40-80');
    expect(range.contains(id('40'))).toBe(true);
    expect(range.contains(id('4000000000000000'))).toBe(true);
    expect(range.contains(id('7fffffffffffffff'))).toBe(true);
    expect(range.contains(id('80'))).toBe(false);
    expect(range.contains(id('8000000000000000'))).toBe(false);
    expect(range.contains(id('3fffffffffffffff'))).toBe(false);
  });

  it('treats an empty start or end as unbounded', () => {
    expect(KeyRange.parse('-80').contains(id(''))).toBe(true);
    expect(KeyRange.parse('-80').contains(id('0000000000000000'))).toBe(true);
    expect(KeyRange.parse('80-').contains(id('ffffffffffffffff'))).toBe(true);
    expect(KeyRange.parse('80-').contains(id('7f'))).toBe(false);
    expect(KeyRange.parse('-').contains(id('ff'))).toBe(true);
    expect(KeyRange.parse('0').isFull()).toBe(true);
  });

  it('compares varbinary ids bytewise, shorter prefixes first', () => {
    const range = KeyRange.parse('61-62');
    expect(range.contains(Buffer.from('a'))).toBe(true);
    expect(range.contains(Buffer.from('azzz'))).toBe(true);
    expect(range.contains(Buffer.from('b'))).toBe(false);
    expect(range.contains(Buffer.from('`'))).toBe(false);
  });

  it('round-trips its Vitess name', () => {
    for (const name of ['-80', '80-', '40-80', '-', '0102-0a0b'])
      expect(KeyRange.parse(name).toString()).toBe(name);
  });

  it.each(['x-80', '4-80', '80-40', '40-40', '-8', ''])('refuses %j with a usage error', (text) => {
    expect(() => KeyRange.parse(text)).toThrow(UsageError);
  });
});

describe('parseKeyRanges and evenKeyRanges', () => {
  it('parses a comma separated list and refuses duplicates', () => {
    expect(parseKeyRanges('-40, 40-80,80-').map(String)).toEqual(['-40', '40-80', '80-']);
    expect(() => parseKeyRanges('-80,-80')).toThrow(/twice/);
  });

  it('splits evenly with Vitess names', () => {
    expect(evenKeyRanges(1).map(String)).toEqual(['-']);
    expect(evenKeyRanges(2).map(String)).toEqual(['-80', '80-']);
    expect(evenKeyRanges(4).map(String)).toEqual(['-40', '40-80', '80-c0', 'c0-']);
    expect(evenKeyRanges(3).map(String)).toEqual(['-55', '55-aa', 'aa-']);
    expect(evenKeyRanges(512)[1]?.toString()).toBe('0080-0100');
  });

  it('covers every id exactly once', () => {
    const ranges = evenKeyRanges(5);
    for (const value of [0n, 1n, 0x3333333333333333n, 0x7fffffffffffffffn, 0xffffffffffffffffn]) {
      expect(ranges.filter((r) => r.contains(uint64KeyspaceId(value)))).toHaveLength(1);
    }
  });

  it('encodes uint64 ids as 8 big-endian bytes', () => {
    expect(uint64KeyspaceId('18446744073709551615').toString('hex')).toBe('ffffffffffffffff');
    expect(uint64KeyspaceId(0x80n).toString('hex')).toBe('0000000000000080');
    expect(() => uint64KeyspaceId(-1n)).toThrow(RangeError);
  });
});

describe('uncoveredRanges', () => {
  const gaps = (list: string) => uncoveredRanges(parseKeyRanges(list)).map(String);

  it('finds nothing left out when the ranges cover the keyspace, in any order and overlapping', () => {
    expect(gaps('-')).toEqual([]);
    expect(gaps('80-,-80')).toEqual([]);
    expect(gaps('-40,40-80,80-c0,c0-')).toEqual([]);
    expect(gaps('-90,80-')).toEqual([]);
    expect(uncoveredRanges(evenKeyRanges(300))).toEqual([]);
  });

  it('names each part no range covers: the start, the middle and the end of the keyspace', () => {
    expect(gaps('40-80')).toEqual(['-40', '80-']);
    expect(gaps('-40,80-')).toEqual(['40-80']);
    expect(gaps('-40,40-80')).toEqual(['80-']);
    expect(gaps('10-20,30-40,-10')).toEqual(['20-30', '40-']);
  });

  it('looks only inside the source shard when given its range', () => {
    const within = (list: string, shard: string) =>
      uncoveredRanges(parseKeyRanges(list), KeyRange.parse(shard)).map(String);
    expect(within('-40,40-80', '-80')).toEqual([]);
    expect(within('-40', '-80')).toEqual(['40-80']);
    expect(within('90-a0', '80-c0')).toEqual(['80-90', 'a0-c0']);
    expect(within('-', '40-80')).toEqual([]);
  });
});
