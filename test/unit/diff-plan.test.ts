import { describe, expect, it } from 'vitest';
import { planTable, type TablePlan } from '../../agent/diff/plan.ts';
import type { ColumnDefinition, TableDefinition } from '../../agent/diff/schema.ts';
import { KeyRange } from '../../core/keyrange.ts';

const column = (name: string, columnType: string): ColumnDefinition => ({
  name,
  dataType: 'bigint',
  columnType,
  kind: 'integer',
  nullable: false,
  collation: undefined,
  charset: undefined,
  precision: 20,
  scale: 0,
});

const table = (estimatedRows: number): TableDefinition => ({
  name: 'orders',
  columns: [column('id', 'bigint(20)'), column('ksid', 'bigint(20) unsigned')],
  primaryKey: ['id'],
  estimatedRows,
});

describe('a table plan', () => {
  it('counts progress against the whole table, or with a left key range against the rows of that range', () => {
    const whole = planTable('shop', 'copy', table(1000), table(1000), undefined) as TablePlan;
    expect(whole.estimatedRows).toBe(1000);
    const range = { range: KeyRange.parse('-80'), column: 'ksid', type: 'uint64' as const };
    const half = planTable('shop', 'shop_low', table(1000), table(480), range) as TablePlan;
    expect(half.leftFilter).toBeDefined();
    expect(half.estimatedRows).toBe(480);
  });
});
