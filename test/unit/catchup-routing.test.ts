import { describe, expect, it } from 'vitest';
import type { DestinationTable, RowChange } from '../../agent/engines/logical/catchup/destination.ts';
import { RowRouter } from '../../agent/engines/logical/catchup/routing.ts';
import { touchesCopiedTable } from '../../agent/engines/logical/catchup/statements.ts';
import { gtidPosition } from '../../core/gtid-position.ts';
import { KeyRange } from '../../core/keyrange.ts';

const customers: DestinationTable = {
  name: 'customers',
  columns: ['id', 'ksid', 'name'],
  primaryKey: ['id'],
  autoIncrement: true,
};
const low = { range: KeyRange.parse('-80'), column: 'ksid', type: 'uint64' as const };
const inLow = '1';
const inHigh = '18446744073709551615';

function route(router: RowRouter, event: Parameters<RowRouter['route']>[0]): [string, unknown][] {
  const out: RowChange[] = [];
  router.route(event, out);
  return out.map((change) => [change.kind, change.row.id]);
}

describe('RowRouter', () => {
  const router = new RowRouter([customers], low);

  it('keeps inserts and deletes whose keyspace id is in the range, and none with a NULL id', () => {
    const rows = [
      { id: 1, ksid: inLow },
      { id: 2, ksid: inHigh },
      { id: 3, ksid: null },
    ];
    expect(route(router, { type: 'insert', table: 'customers', rows })).toEqual([['upsert', 1]]);
    expect(route(router, { type: 'delete', table: 'customers', rows })).toEqual([['delete', 1]]);
  });

  it('turns an update that moves a row out of the range into a delete, and into it into an insert', () => {
    expect(
      route(router, {
        type: 'update',
        table: 'customers',
        rows: [
          { before: { id: 1, ksid: inLow }, after: { id: 1, ksid: inHigh } },
          { before: { id: 2, ksid: inHigh }, after: { id: 2, ksid: 5 } },
          { before: { id: 3, ksid: inHigh }, after: { id: 3, ksid: inHigh } },
          { before: { id: 4, ksid: inLow }, after: { id: 4, ksid: inLow, name: 'x' } },
        ],
      }),
    ).toEqual([
      ['delete', 1],
      ['upsert', 2],
      ['upsert', 4],
    ]);
  });

  it('deletes the old primary key of an update that changed it', () => {
    expect(
      route(router, {
        type: 'update',
        table: 'customers',
        rows: [{ before: { id: 1, ksid: inLow }, after: { id: 9, ksid: inLow } }],
      }),
    ).toEqual([
      ['delete', 1],
      ['upsert', 9],
    ]);
  });

  it('routes varbinary keyspace ids bytewise, and ignores tables the destination does not hold', () => {
    const bytes = new RowRouter([customers], {
      range: KeyRange.parse('40-80'),
      column: 'ksid',
      type: 'bytes',
    });
    const rows = [
      { id: 1, ksid: Buffer.from('3fff', 'hex') },
      { id: 2, ksid: Buffer.from('40', 'hex') },
      { id: 3, ksid: Buffer.from('7fffffff', 'hex') },
      { id: 4, ksid: Buffer.from('80', 'hex') },
    ];
    expect(route(bytes, { type: 'insert', table: 'customers', rows })).toEqual([
      ['upsert', 2],
      ['upsert', 3],
    ]);
    expect(route(bytes, { type: 'insert', table: 'other', rows })).toEqual([]);
  });

  it('keeps every row of the tables it holds without a key range (a vertical split)', () => {
    const tables = new RowRouter([customers], undefined);
    expect(route(tables, { type: 'insert', table: 'customers', rows: [{ id: 1, ksid: null }] })).toEqual([
      ['upsert', 1],
    ]);
  });
});

describe('touchesCopiedTable', () => {
  it('matches a statement that names a copied table of the source database', () => {
    expect(touchesCopiedTable('ALTER TABLE customers ADD x INT', 'shop', 'shop', ['customers'])).toBe(true);
    expect(
      touchesCopiedTable('ALTER TABLE `shop`.`Customers` ADD x INT', 'mysql', 'shop', ['customers']),
    ).toBe(true);
    expect(touchesCopiedTable('/* c */ DROP TABLE shop.customers', 'other', 'shop', ['customers'])).toBe(
      true,
    );
  });

  it('ignores statements on other tables or other databases', () => {
    expect(touchesCopiedTable('CREATE TABLE audit (id INT)', 'shop', 'shop', ['customers'])).toBe(false);
    expect(touchesCopiedTable('ALTER TABLE customers ADD x INT', 'crm', 'shop', ['customers'])).toBe(false);
  });
});

describe('gtidPosition', () => {
  it('advances a MariaDB position per domain and compares sequence numbers exactly', () => {
    const position = gtidPosition('mariadb', '0-1-10,1-2-5');
    expect(position.covers('0-1-10')).toBe(true);
    expect(position.covers('0-1-11')).toBe(false);
    position.add('0-1-18446744073709551615');
    expect(position.covers('0-1-18446744073709551614,1-2-5')).toBe(true);
    expect(position.covers('2-1-1')).toBe(false);
    expect(position.toString()).toBe('0-1-18446744073709551615,1-2-5');
  });

  it('merges MySQL intervals and checks a set is contained, tags apart', () => {
    const uuid = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
    const position = gtidPosition('mysql', `${uuid}:1-5:7`);
    expect(position.covers(`${uuid}:1-6`)).toBe(false);
    position.add(`${uuid}:6`);
    expect(position.covers(`${uuid}:1-7`)).toBe(true);
    expect(position.toString()).toBe(`${uuid}:1-7`);
    position.add(`${uuid}:blue:3`);
    expect(position.covers(`${uuid}:blue:3`)).toBe(true);
    expect(position.covers(`${uuid}:blue:4`)).toBe(false);
  });
});
