import { describe, expect, it } from 'vitest';
import {
  checkCreateTable,
  checkCreateView,
  otherDatabasesThan,
} from '../../agent/engines/logical/multirestore/ddl.ts';
import { ManifestError } from '../../core/errors.ts';
import type { TableDefinition, ViewDefinition } from '../../core/manifest.ts';

const mariadb = { flavor: 'mariadb', version: 101106 } as const;
const mysql = { flavor: 'mysql', version: 90704 } as const;

function table(create: string, name = 'orders'): TableDefinition {
  return {
    name,
    type: 'table',
    create,
    columns: [{ name: 'id', type: 'int', generated: false }],
    primaryKey: [],
    rows: 0,
  };
}

function view(create: string, name = 'recent'): ViewDefinition {
  return { name, type: 'view', create };
}

const ordersCreate = [
  'CREATE TABLE `orders` (',
  '  `id` bigint(20) NOT NULL AUTO_INCREMENT,',
  "  `note` varchar(100) DEFAULT 'a;b -- c /* d */' COMMENT 'it''s',",
  '  `total` decimal(65,30) GENERATED ALWAYS AS (`id` * 1.5) VIRTUAL,',
  '  `parent` bigint(20) DEFAULT NULL,',
  '  PRIMARY KEY (`id`),',
  '  CONSTRAINT `fk` FOREIGN KEY (`parent`) REFERENCES `orders` (`id`),',
  "  CONSTRAINT `c` CHECK (`note` LIKE 'x%')",
  ') ENGINE=InnoDB AUTO_INCREMENT=131071 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci',
].join('\n');

describe('checkCreateTable', () => {
  it('accepts what SHOW CREATE TABLE prints and takes the AUTO_INCREMENT option out', () => {
    const checked = checkCreateTable(table(ordersCreate), mariadb);
    expect(checked.autoIncrement).toBe(131071n);
    expect(checked.engine).toBe('InnoDB');
    expect(checked.create).toContain('`id` bigint(20) NOT NULL AUTO_INCREMENT,');
    expect(checked.create).toMatch(/\) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci$/);
  });

  it('keeps a table without AUTO_INCREMENT as it is', () => {
    const create =
      'CREATE TABLE `a b` (\n  `x` int(11) DEFAULT NULL\n) ENGINE=Aria DEFAULT CHARSET=latin1 PAGE_CHECKSUM=1';
    expect(checkCreateTable(table(create, 'a b'), mariadb)).toEqual({
      create,
      autoIncrement: undefined,
      engine: 'Aria',
    });
  });

  it.each([
    ['a second statement', 'CREATE TABLE `orders` (`id` int); DROP DATABASE mysql'],
    ['a comment', 'CREATE TABLE `orders` (`id` int) /*!50000 , x int */'],
    ['another table name', 'CREATE TABLE `users` (`id` int)'],
    ['a qualified name', 'CREATE TABLE `mysql`.`orders` (`id` int)'],
    [
      'a reference into another database',
      'CREATE TABLE `orders` (`id` int, FOREIGN KEY (`id`) REFERENCES `other`.`t` (`id`))',
    ],
    ['AS SELECT', 'CREATE TABLE `orders` (`id` int) AS SELECT * FROM mysql.user'],
    ['SELECT without AS', 'CREATE TABLE `orders` (`id` int) SELECT 1'],
    ['LIKE', 'CREATE TABLE `orders` LIKE `mysql`'],
    ['DATA DIRECTORY', "CREATE TABLE `orders` (`id` int) ENGINE=InnoDB DATA DIRECTORY='/etc'"],
    [
      'a foreign engine',
      "CREATE TABLE `orders` (`id` int) ENGINE=CONNECT TABLE_TYPE=CSV FILE_NAME='/etc/passwd'",
    ],
    [
      'a federated connection',
      "CREATE TABLE `orders` (`id` int) ENGINE=FEDERATED CONNECTION='mysql://x@y/z/t'",
    ],
    ['an unknown option', 'CREATE TABLE `orders` (`id` int) ENGINE=InnoDB SEQUENCE=1'],
    [
      'a partition in a foreign engine',
      'CREATE TABLE `orders` (`id` int) PARTITION BY HASH (`id`) (PARTITION p0 ENGINE = CONNECT)',
    ],
    ['a temporary table', 'CREATE TEMPORARY TABLE `orders` (`id` int)'],
    ['something else', 'DROP TABLE `orders`'],
  ])('refuses %s', (_what, create) => {
    expect(() => checkCreateTable(table(create), mariadb)).toThrow(ManifestError);
  });

  it('names the table and the reason', () => {
    expect(() => checkCreateTable(table('CREATE TABLE `orders` (`id` int) ENGINE=CONNECT'), mariadb)).toThrow(
      'the CREATE TABLE of "orders" is refused: engine CONNECT is not allowed',
    );
  });
});

describe('checkCreateView', () => {
  const others = otherDatabasesThan('dest', ['dest', 'shop', 'orders_archive']);

  it('keeps the algorithm, DEFINER, security and body, or leaves the DEFINER to the loading user', () => {
    const create =
      "CREATE ALGORITHM=MERGE DEFINER=`app`@`%` SQL SECURITY INVOKER VIEW `recent` AS select `orders`.`id` AS `id` from `orders` where `orders`.`note` <> 'x.y' WITH CASCADED CHECK OPTION";
    const checked = checkCreateView(view(create), others, mariadb);
    expect(checked.definer).toEqual({ user: 'app', host: '%' });
    expect(checked.statement(true)).toBe(
      "CREATE ALGORITHM=MERGE DEFINER=`app`@`%` SQL SECURITY INVOKER VIEW `recent` AS select `orders`.`id` AS `id` from `orders` where `orders`.`note` <> 'x.y' WITH CASCADED CHECK OPTION",
    );
    expect(checked.statement(false)).toBe(
      "CREATE ALGORITHM=MERGE SQL SECURITY INVOKER VIEW `recent` AS select `orders`.`id` AS `id` from `orders` where `orders`.`note` <> 'x.y' WITH CASCADED CHECK OPTION",
    );
  });

  it('accepts a column list and a view of a view', () => {
    const create = 'CREATE VIEW `recent` (`a`,`b`) AS select `x`.`id`,`x`.`n` from `other_view` `x`';
    expect(checkCreateView(view(create), others, mariadb).statement(true)).toBe(
      'CREATE ALGORITHM=UNDEFINED SQL SECURITY DEFINER VIEW `recent` (`a`,`b`) AS select `x`.`id`,`x`.`n` from `other_view` `x`',
    );
  });

  it.each([
    ['a system database', 'CREATE VIEW `recent` AS select * from `mysql`.`user`'],
    ['another database of this server', 'CREATE VIEW `recent` AS select * from shop.orders'],
    ['a three-part name', 'CREATE VIEW `recent` AS select `x`.`y`.`z` from `t`'],
    ['LOAD_FILE', "CREATE VIEW `recent` AS select load_file('/etc/shadow')"],
    ['another view name', 'CREATE VIEW `users` AS select 1'],
    ['a second statement', 'CREATE VIEW `recent` AS select 1; DROP TABLE t'],
    ['a body that is not a SELECT', 'CREATE VIEW `recent` AS DELETE FROM t'],
  ])('refuses %s', (_what, create) => {
    expect(() => checkCreateView(view(create), others, mariadb)).toThrow(ManifestError);
  });
});

describe('version comments', () => {
  it('keeps what applies to the destination server, without the markers, and drops the rest', () => {
    const create = [
      'CREATE TABLE `orders` (',
      '  `id` int NOT NULL,',
      '  `hidden` int DEFAULT NULL /*!80023 INVISIBLE */,',
      '  PRIMARY KEY (`id`)',
      ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 /*!80016 ENCRYPTION='N' */",
      '/*!50100 PARTITION BY HASH (`id`)',
      'PARTITIONS 4 */',
    ].join('\n');
    const checked = checkCreateTable(table(create), mysql).create;
    expect(checked).toContain('`hidden` int DEFAULT NULL   INVISIBLE  ,');
    expect(checked).toMatch(/ENCRYPTION='N'\s+PARTITION BY HASH \(`id`\)\nPARTITIONS 4\s*$/);
    expect(checked).not.toContain('/*');
    // MariaDB-only comments do not apply to MySQL; a version above the server's is dropped.
    const other = checkCreateTable(
      table('CREATE TABLE `orders` (`id` int /*M!100301 INVISIBLE */ /*!99999 , `x` int */)'),
      mysql,
    ).create;
    expect(other).toBe('CREATE TABLE `orders` (`id` int    )');
  });

  it('checks an applying comment like the rest of the statement', () => {
    expect(() =>
      checkCreateTable(table("CREATE TABLE `orders` (`id` int) /*!50100 DATA DIRECTORY='/etc' */"), mysql),
    ).toThrow('DIRECTORY is not allowed');
    expect(() =>
      checkCreateTable(
        table(
          'CREATE TABLE `orders` (`id` int) /*!50100 PARTITION BY HASH (`id`) (PARTITION p0 ENGINE = CONNECT) */',
        ),
        mysql,
      ),
    ).toThrow('engine CONNECT is not allowed');
  });

  it.each([
    ['a comment inside one', 'CREATE TABLE `orders` (`id` int /*!80023 /* x */ INVISIBLE */)'],
    [
      'a nested comment in one that does not apply',
      'CREATE TABLE `orders` (`id` int /*!99999 /* */ , y int */)',
    ],
    ['six digits after /*!', 'CREATE TABLE `orders` (`id` int /*!800230 INVISIBLE */)'],
    ['digits run into the content', 'CREATE TABLE `orders` (`id` int /*!80023INVISIBLE */)'],
    ['an unclosed one', 'CREATE TABLE `orders` (`id` int /*!80023 INVISIBLE )'],
    ['"--" before a control character', 'CREATE TABLE `orders` (`id` int --\r, x int\n)'],
  ])('refuses %s', (_what, create) => {
    expect(() => checkCreateTable(table(create), mysql)).toThrow(ManifestError);
  });
});
