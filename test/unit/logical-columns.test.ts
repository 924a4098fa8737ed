import { describe, expect, it } from 'vitest';
import { columnCodec, dataColumns } from '../../agent/engines/logical/format.ts';
import { loadStatement } from '../../agent/engines/logical/multirestore/load.ts';
import { isGeneratedColumn } from '../../agent/engines/logical/snapshot/schema.ts';
import type { TableDefinition } from '../../core/manifest.ts';

/**
 * information_schema.COLUMNS rows (COLUMN_NAME, COLUMN_TYPE, EXTRA) captured from MySQL 9.7.4 for
 * `CREATE TABLE t (id INT PRIMARY KEY, created TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
 * touched DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6), doc JSON,
 * total INT AS (id * 2) VIRTUAL, kept INT AS (id + 1) STORED, ts TIMESTAMP NULL ON UPDATE CURRENT_TIMESTAMP)`.
 */
const mysqlRows = [
  { name: 'id', type: 'int', extra: '' },
  { name: 'created', type: 'timestamp', extra: 'DEFAULT_GENERATED' },
  { name: 'touched', type: 'datetime(6)', extra: 'DEFAULT_GENERATED on update CURRENT_TIMESTAMP(6)' },
  { name: 'doc', type: 'json', extra: '' },
  { name: 'total', type: 'int', extra: 'VIRTUAL GENERATED' },
  { name: 'kept', type: 'int', extra: 'STORED GENERATED' },
  { name: 'ts', type: 'timestamp', extra: 'on update CURRENT_TIMESTAMP' },
];

/** The same table captured from MariaDB 10.11 (its JSON is LONGTEXT with a CHECK). */
const mariadbRows = [
  { name: 'id', type: 'int(11)', extra: '' },
  { name: 'created', type: 'timestamp', extra: '' },
  { name: 'touched', type: 'datetime(6)', extra: 'on update current_timestamp(6)' },
  { name: 'doc', type: 'longtext', extra: '' },
  { name: 'total', type: 'int(11)', extra: 'VIRTUAL GENERATED' },
  { name: 'kept', type: 'int(11)', extra: 'STORED GENERATED' },
  { name: 'ts', type: 'timestamp', extra: 'on update current_timestamp()' },
];

function table(rows: typeof mysqlRows): TableDefinition {
  return {
    name: 't',
    type: 'table',
    create: 'CREATE TABLE `t` (…)',
    columns: rows.map((row) => ({ name: row.name, type: row.type, generated: isGeneratedColumn(row.extra) })),
    primaryKey: ['id'],
    rows: 0,
  };
}

describe('which columns a logical dump carries', () => {
  it('leaves out VIRTUAL and STORED generated columns, on MySQL and MariaDB', () => {
    for (const rows of [mysqlRows, mariadbRows]) {
      expect(dataColumns(table(rows).columns).map((c) => c.name)).toEqual([
        'id',
        'created',
        'touched',
        'doc',
        'ts',
      ]);
    }
  });

  it("keeps MySQL's DEFAULT_GENERATED columns (expression defaults such as CURRENT_TIMESTAMP)", () => {
    expect(isGeneratedColumn('DEFAULT_GENERATED')).toBe(false);
    expect(isGeneratedColumn('DEFAULT_GENERATED on update CURRENT_TIMESTAMP')).toBe(false);
    expect(isGeneratedColumn('VIRTUAL GENERATED')).toBe(true);
    expect(isGeneratedColumn('STORED GENERATED')).toBe(true);
    expect(isGeneratedColumn('PERSISTENT GENERATED')).toBe(true);
    expect(isGeneratedColumn('')).toBe(false);
  });
});

describe('the LOAD DATA statement of a table', () => {
  it('reads a MySQL JSON column through a variable converted to utf8mb4 (MySQL refuses binary-charset JSON)', () => {
    expect(loadStatement('shop', table(mysqlRows))).toBe(
      "LOAD DATA INFILE ? INTO TABLE `shop`.`t` CHARACTER SET binary FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (`id`, `created`, `touched`, @c3, `ts`) SET `doc` = CONVERT(@c3 USING utf8mb4)",
    );
  });

  it("loads MariaDB's JSON (LONGTEXT) straight into the column", () => {
    expect(loadStatement('shop', table(mariadbRows))).toMatch(/\(`id`, `created`, `touched`, `doc`, `ts`\)$/);
  });

  it('dumps a JSON column as itself', () => {
    expect(columnCodec({ name: 'doc', type: 'json', generated: false }, 0).select).toBe('`doc`');
  });
});
