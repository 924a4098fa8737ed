import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bytesRouter, uint64Bound, uint64Router } from '../../agent/engines/logical/snapshot/keyspace-id.ts';
import { type RowBatch, RowError, RowSplitter } from '../../agent/engines/logical/snapshot/row-splitter.ts';
import { evenKeyRanges, KeyRange, parseKeyRanges, uint64KeyspaceId } from '../../core/keyrange.ts';

/** One field the way SELECT … INTO OUTFILE writes it with the snapshot's options. */
function field(value: Buffer | string | number | bigint | null): Buffer {
  if (value === null) return Buffer.from('\\N');
  if (typeof value === 'number' || typeof value === 'bigint') return Buffer.from(String(value));
  const bytes = typeof value === 'string' ? Buffer.from(value) : value;
  const out: number[] = [0x22];
  for (const byte of bytes) {
    if (byte === 0) out.push(0x5c, 0x30);
    else if (byte === 0x5c || byte === 0x22 || byte === 0x0a) out.push(0x5c, byte);
    else out.push(byte);
  }
  out.push(0x22);
  return Buffer.from(out);
}

function row(...fields: (Buffer | string | number | bigint | null)[]): Buffer {
  const parts: Buffer[] = [];
  fields.forEach((value, i) => {
    if (i > 0) parts.push(Buffer.from(','));
    parts.push(field(value));
  });
  parts.push(Buffer.from('\n'));
  return Buffer.concat(parts);
}

/** Feeds `input` in pieces cut at `cuts` and returns every batch. */
function split(splitter: RowSplitter, input: Buffer, cuts: number[]): RowBatch[] {
  const batches: RowBatch[] = [];
  let at = 0;
  for (const cut of [...cuts, input.length]) {
    batches.push(...splitter.push(input.subarray(at, cut)));
    at = cut;
  }
  batches.push(...splitter.end());
  return batches;
}

function randomCuts(length: number, count: number): number[] {
  return Array.from({ length: count }, () => Math.floor(Math.random() * (length + 1))).sort((a, b) => a - b);
}

/** Awkward values: every byte that means something to the format, and runs of backslashes. */
const awkward: (Buffer | string | number | null)[] = [
  'plain',
  'comma, inside',
  'a "quoted" word',
  'ends with a backslash \\',
  '\\\\',
  '\\',
  'new\nline',
  '\n',
  '\\\n',
  'tab\there',
  Buffer.from([0, 1, 2, 0x0a, 0x5c, 0x22, 0x2c, 0xff, 0]),
  '\\N',
  null,
  'emoji 😀 and ü',
  '',
  123,
  -5,
];

describe('RowSplitter', () => {
  it('cuts rows at unescaped newlines only, wherever the chunks are cut', () => {
    const rows = awkward.map((value, i) => row(i, value, 'tail\\'));
    const input = Buffer.concat(rows);
    for (let cut = 0; cut <= input.length; cut++) {
      const splitter = new RowSplitter({ batchBytes: 1 });
      const batches = split(splitter, input, [cut]);
      expect(batches.map((b) => b.data.toString('latin1'))).toEqual(rows.map((r) => r.toString('latin1')));
      expect(splitter.rows).toBe(rows.length);
    }
  });

  it('keeps runs of backslashes before a newline apart from an escaped newline across chunk boundaries', () => {
    // The last two are unenclosed fields (as a number or a format without quotes would be): an even
    // run of backslashes before the newline ends the row, an odd one escapes it.
    const rows = [row('\\\\\\'), row('x\n\\'), row('\\\n\\\n'), row(null), row('\\')];
    rows.push(Buffer.from('a\\\\\n'), Buffer.from('\\\\\\\\\nb\\\\\\\nc\n'));
    const input = Buffer.concat(rows);
    for (let a = 0; a <= input.length; a++) {
      for (let b = a; b <= input.length; b++) {
        const batches = split(new RowSplitter({ batchBytes: 1 }), input, [a, b]);
        expect(Buffer.concat(batches.map((x) => x.data)).equals(input)).toBe(true);
        expect(batches.map((x) => x.rows)).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
      }
    }
  });

  it('hands out whole rows in batches of at most batchBytes unless one row is longer', () => {
    const rows = Array.from({ length: 500 }, (_, i) => row(i, randomBytes(i % 97), i % 5 === 0 ? null : 'x'));
    rows.push(row(9999, 'y'.repeat(3000)));
    const input = Buffer.concat(rows);
    const batches = split(new RowSplitter({ batchBytes: 1024 }), input, randomCuts(input.length, 20));
    expect(Buffer.concat(batches.map((b) => b.data)).equals(input)).toBe(true);
    expect(batches.reduce((sum, b) => sum + b.rows, 0)).toBe(rows.length);
    for (const batch of batches) {
      if (batch.rows > 1) expect(batch.data.length).toBeLessThanOrEqual(1024);
    }
    expect(batches.some((b) => b.data.length > 3000 && b.rows === 1)).toBe(true);
  });

  it('refuses a dump that stops inside a row', () => {
    const splitter = new RowSplitter({ batchBytes: 100 });
    splitter.push(Buffer.from('1,"complete"\n2,"cut \\\n'));
    expect(() => splitter.end()).toThrow(RowError);
    expect(() => splitter.end()).toThrow(/ends inside row 2/);
  });
});

describe('RowSplitter with a uint64 keyspace id', () => {
  const ranges = parseKeyRanges('-40,40-80,80-c0,c0-');

  it('routes each row to the range holding its id and drops the id field', () => {
    const ids = [
      0n,
      1n,
      0x3fff_ffff_ffff_ffffn,
      0x4000_0000_0000_0000n,
      0x7fff_ffff_ffff_ffffn,
      0x8000_0000_0000_0000n,
    ];
    ids.push(0xbfff_ffff_ffff_ffffn, 0xc000_0000_0000_0000n, 0xffff_ffff_ffff_ffffn);
    const input = Buffer.concat(ids.map((id) => row(id, `row ${id}`)));
    const splitter = new RowSplitter({ router: uint64Router(ranges), batchBytes: 4096 });
    const batches = split(splitter, input, [7]);
    const byRange = ranges.map((_, r) =>
      batches
        .filter((b) => b.target === r)
        .map((b) => b.data.toString())
        .join(''),
    );
    expect(byRange).toEqual([
      '"row 0"\n"row 1"\n"row 4611686018427387903"\n',
      '"row 4611686018427387904"\n"row 9223372036854775807"\n',
      '"row 9223372036854775808"\n"row 13835058055282163711"\n',
      '"row 13835058055282163712"\n"row 18446744073709551615"\n',
    ]);
  });

  it('agrees with KeyRange.contains on random ids and ranges, including overlapping ones', () => {
    const tests = [
      ...parseKeyRanges('-40,40-80,80-'),
      ...evenKeyRanges(7),
      KeyRange.parse('0102030405060708ff-'),
      KeyRange.parse('-00000000000000000001'),
      KeyRange.full(),
    ];
    const router = uint64Router(tests);
    const out: number[] = [];
    for (let i = 0; i < 5000; i++) {
      const id = randomBytes(8).readBigUInt64BE() >> BigInt(Math.floor(Math.random() * 64));
      const text = Buffer.from(`${id},x`);
      router.route(text, 0, text.indexOf(','), out);
      const expected = tests.flatMap((range, r) => (range.contains(uint64KeyspaceId(id)) ? [r] : []));
      expect(out).toEqual(expected);
    }
  });

  it.each([
    ['64 even ranges', evenKeyRanges(64)],
    ['ranges with gaps, out of order', parseKeyRanges('f0-,-10,20-30,3000000000000001-31')],
    ['boundaries longer than 8 bytes', parseKeyRanges('-8000000000000000ff,8000000000000000ff-')],
  ])('finds the one range of disjoint ranges (%s) like KeyRange.contains', (_what, disjoint) => {
    const router = uint64Router(disjoint);
    const bytes = bytesRouter(disjoint);
    const out: number[] = [];
    for (let i = 0; i < 5000; i++) {
      const id = randomBytes(8).readBigUInt64BE() >> BigInt(Math.floor(Math.random() * 64));
      const expected = disjoint.flatMap((range, r) => (range.contains(uint64KeyspaceId(id)) ? [r] : []));
      const text = Buffer.from(`${id},x`);
      router.route(text, 0, text.indexOf(','), out);
      expect(out).toEqual(expected);
      const hex = Buffer.from(`"${uint64KeyspaceId(id).toString('hex').toUpperCase()}",x`);
      bytes.route(hex, 0, hex.indexOf(','), out);
      expect(out).toEqual(expected);
    }
  });

  it('turns boundaries longer than 8 bytes into the next id', () => {
    expect(uint64Bound(Buffer.from('80', 'hex'))?.toString()).toBe('9223372036854775808');
    expect(uint64Bound(Buffer.from('000000000000000000', 'hex'))?.toString()).toBe('1');
    expect(uint64Bound(Buffer.from('ffffffffffffffff00', 'hex'))).toBeUndefined();
  });

  it('names the row whose keyspace id is NULL or not a number', () => {
    const router = uint64Router(ranges);
    expect(() =>
      split(new RowSplitter({ router, batchBytes: 64 }), Buffer.from('5,"a"\n\\N,"b"\n'), []),
    ).toThrow(/row 2: keyspace id is NULL/);
    expect(() => split(new RowSplitter({ router, batchBytes: 64 }), Buffer.from('-5,"a"\n'), [])).toThrow(
      /row 1: keyspace id "-5" is not a uint64/,
    );
    expect(() =>
      split(new RowSplitter({ router, batchBytes: 64 }), Buffer.from('18446744073709551616,"a"\n'), []),
    ).toThrow(/is not a uint64/);
  });
});

describe('RowSplitter with a varbinary keyspace id', () => {
  it('agrees with KeyRange.contains on random ids of every length, the empty id included', () => {
    const ranges = [...parseKeyRanges('-40,40-80,80-'), KeyRange.parse('4142-414243'), KeyRange.parse('-00')];
    const router = bytesRouter(ranges);
    const out: number[] = [];
    for (let i = 0; i < 5000; i++) {
      const id =
        i < 4 ? Buffer.from(['', 'A', 'AB', 'ABC'][i]!) : randomBytes(Math.floor(Math.random() * 10));
      const text = Buffer.from(`"${id.toString('hex').toUpperCase()}",x`);
      router.route(text, 0, text.indexOf(','), out);
      expect(out).toEqual(ranges.flatMap((range, r) => (range.contains(id) ? [r] : [])));
    }
  });

  it('routes whole rows holding awkward bytes and keeps them byte for byte', () => {
    const ranges = parseKeyRanges('-80,80-');
    const rows = awkward.map((value, i) => ({ id: Buffer.from([i * 15]), rest: row(value, i) }));
    const input = Buffer.concat(
      rows.map(({ id, rest }) =>
        Buffer.concat([Buffer.from(`"${id.toString('hex').toUpperCase()}",`), rest]),
      ),
    );
    for (const cut of [1, 5, 33, input.length - 2]) {
      const batches = split(new RowSplitter({ router: bytesRouter(ranges), batchBytes: 50 }), input, [cut]);
      for (const [r, range] of ranges.entries()) {
        const got = Buffer.concat(batches.filter((b) => b.target === r).map((b) => b.data));
        const expected = Buffer.concat(rows.filter(({ id }) => range.contains(id)).map(({ rest }) => rest));
        expect(got.equals(expected)).toBe(true);
      }
    }
  });
});
