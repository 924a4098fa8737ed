import { describe, expect, it } from 'vitest';
import { commonExpression } from '../../agent/diff/plan.ts';
import type { ColumnDefinition } from '../../agent/diff/schema.ts';
import { keyAfterSql, keyAtMostSql, keyLiteral, keyRangeSql, rowEncodingSql } from '../../agent/diff/sql.ts';
import { KeyRange } from '../../core/keyrange.ts';

describe('diff SQL', () => {
  it('writes key literals that cannot carry SQL', () => {
    expect(keyLiteral('number', '-12.50')).toBe('-12.50');
    expect(() => keyLiteral('number', '1 OR 1=1')).toThrow(RangeError);
    expect(keyLiteral('text', "it's\\")).toBe(`_utf8mb4 X'${Buffer.from("it's\\").toString('hex')}'`);
    expect(keyLiteral('binary', Buffer.from([0, 255]))).toBe("X'00ff'");
    expect(keyLiteral('temporal', '2024-01-01 00:00:00.5')).toBe("'2024-01-01 00:00:00.5'");
    expect(() => keyLiteral('temporal', "2024' OR '1")).toThrow(RangeError);
  });

  it('spells composite bounds as ORs the optimizer turns into ranges', () => {
    const parts = [
      { column: '`a`', literal: 'number' as const },
      { column: '`b`', literal: 'binary' as const },
    ];
    expect(keyAfterSql(parts, [1, Buffer.from('x')])).toBe("((`a` > 1) OR (`a` = 1 AND `b` > X'78'))");
    expect(keyAtMostSql(parts, [1, Buffer.from('x')])).toBe("((`a` < 1) OR (`a` = 1 AND `b` <= X'78'))");
    expect(keyAfterSql(parts.slice(0, 1), [7])).toBe('`a` > 7');
  });

  it('flags nullable columns and length-prefixes every byte string but the last in the row encoding', () => {
    expect(
      rowEncodingSql([
        { expression: '`name`', bytes: true, nullable: true, charset: 'utf8mb4' },
        { expression: '`id`', bytes: false, nullable: false },
        { expression: '`note`', bytes: true, nullable: false, charset: 'utf8mb4' },
        { expression: '`blob`', bytes: true, nullable: false, charset: 'binary' },
      ]),
    ).toBe(
      "CONCAT_WS(_binary X'00', CONCAT(ISNULL(`name`)), `id`, LENGTH(`name`), `name`, LENGTH(`note`), `note`, `blob`)",
    );
  });

  it('encodes a table without nullable columns or byte strings as its numbers alone', () => {
    expect(
      rowEncodingSql([
        { expression: '`id`', bytes: false, nullable: false },
        { expression: '`at`', bytes: false, nullable: false },
      ]),
    ).toBe("CONCAT_WS(_binary X'00', `id`, `at`)");
  });

  it('casts text to binary when a row mixes character sets, or one is not known', () => {
    const mixed = rowEncodingSql([
      { expression: '`a`', bytes: true, nullable: false, charset: 'latin1' },
      { expression: '`b`', bytes: true, nullable: false, charset: 'utf8mb4' },
      { expression: '`c`', bytes: true, nullable: false, charset: 'binary' },
    ]);
    expect(mixed).toBe(
      "CONCAT_WS(_binary X'00', LENGTH(`a`), CAST(`a` AS BINARY), LENGTH(`b`), CAST(`b` AS BINARY), `c`)",
    );
    expect(rowEncodingSql([{ expression: '`j`', bytes: true, nullable: false, charset: undefined }])).toBe(
      "CONCAT_WS(_binary X'00', CAST(`j` AS BINARY))",
    );
  });

  it('filters uint64 and varbinary keyspace ids as KeyRange.contains does', () => {
    expect(keyRangeSql(KeyRange.parse('-'), 'k', 'uint64')).toBeUndefined();
    expect(keyRangeSql(KeyRange.parse('40-80'), 'k', 'uint64')).toBe(
      '`k` >= 4611686018427387904 AND `k` < 9223372036854775808',
    );
    expect(keyRangeSql(KeyRange.parse('-80'), 'k', 'bytes')).toBe("`k` < X'80'");
    // A bound longer than 8 bytes: an 8-byte id equal to its first 8 bytes sorts before it.
    const long = KeyRange.parse('800000000000000000-');
    expect(keyRangeSql(long, 'k', 'uint64')).toBe('`k` > 9223372036854775808');
    expect(long.contains(Buffer.from('8000000000000000', 'hex'))).toBe(false);
  });

  it('casts columns defined differently to a type that holds both', () => {
    const column = (columnType: string, extra: Partial<ColumnDefinition>): ColumnDefinition => ({
      name: 'c',
      dataType: columnType.replace(/\(.*/, ''),
      columnType,
      kind: 'decimal',
      nullable: true,
      collation: undefined,
      charset: undefined,
      precision: undefined,
      scale: undefined,
      ...extra,
    });
    const d102 = column('decimal(10,2)', { precision: 10, scale: 2 });
    expect(commonExpression(d102, d102)).toBe('`c`');
    expect(commonExpression(d102, column('decimal(14,4)', { precision: 14, scale: 4 }))).toBe(
      'CAST(`c` AS DECIMAL(65, 4))',
    );
    expect(commonExpression(d102, column('double', { kind: 'float' }))).toBe('CAST(`c` AS DOUBLE)');
    const latin = column('varchar(10)', { kind: 'text', charset: 'latin1' });
    expect(commonExpression(latin, { ...latin, charset: 'utf8mb4' })).toBe('CONVERT(`c` USING utf8mb4)');
    expect(commonExpression(d102, column('decimal(65,0)', { precision: 65, scale: 0 }))).toMatchObject({
      problem: expect.stringContaining('too wide'),
    });
  });
});
