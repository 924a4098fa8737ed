import { describe, expect, it } from 'vitest';
import { otherDatabasesThan } from '../../agent/engines/logical/multirestore/ddl.ts';
import { checkStoredProgram } from '../../agent/engines/logical/multirestore/program-ddl.ts';
import { ManifestError } from '../../core/errors.ts';
import type { StoredProgramDefinition } from '../../core/manifest.ts';

const context = {
  release: { flavor: 'mariadb', version: 101106 } as const,
  otherDatabases: otherDatabasesThan('dest', ['dest', 'shop']),
  tables: new Set(['orders']),
};

function program(
  kind: StoredProgramDefinition['kind'],
  name: string,
  create: string,
  more: Partial<StoredProgramDefinition> = {},
): StoredProgramDefinition {
  return {
    kind,
    name,
    create,
    sqlMode: 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION',
    characterSetClient: 'utf8mb4',
    collationConnection: 'utf8mb4_general_ci',
    ...(kind === 'trigger' ? { table: 'orders' } : {}),
    ...more,
  };
}

const procedure = [
  'CREATE DEFINER=`app`@`%` PROCEDURE `add_order`(IN p_id INT, OUT p_total DECIMAL(10,2))',
  '    MODIFIES SQL DATA',
  "    COMMENT 'adds; one order'",
  'BEGIN',
  '  -- a comment; with a semicolon',
  '  DECLARE n INT DEFAULT 0;',
  '  SELECT COUNT(*) INTO n FROM orders o WHERE o.id = p_id;',
  "  IF n = 0 THEN INSERT INTO orders (id, note) VALUES (p_id, 'it''s; new'); END IF;",
  '  SET p_total = n * 1.5; # done',
  'END',
].join('\n');

describe('checkStoredProgram', () => {
  it('accepts a procedure as SHOW CREATE prints it, with or without its DEFINER', () => {
    const checked = checkStoredProgram(program('procedure', 'add_order', procedure), context);
    expect(checked.definer).toEqual({ user: 'app', host: '%' });
    expect(checked.statement(true)).toBe(procedure);
    expect(checked.statement(false)).toBe(procedure.replace('DEFINER=`app`@`%` ', ''));
  });

  it('accepts a function, a trigger and an event', () => {
    const fn =
      'CREATE DEFINER=`root`@`localhost` FUNCTION `doubled`(x INT) RETURNS int(11)\n    DETERMINISTIC\nRETURN x * 2';
    expect(checkStoredProgram(program('function', 'doubled', fn), context).statement(true)).toBe(fn);
    const trigger =
      "CREATE DEFINER=`root`@`localhost` TRIGGER `orders_bi` BEFORE INSERT ON `orders` FOR EACH ROW SET NEW.note = CONCAT(NEW.note, '!')";
    expect(checkStoredProgram(program('trigger', 'orders_bi', trigger), context).statement(true)).toBe(
      trigger,
    );
    const event =
      "CREATE DEFINER=`root`@`localhost` EVENT `purge` ON SCHEDULE EVERY 1 HOUR STARTS '2026-12-01 00:00:00' ON COMPLETION PRESERVE DISABLE ON SLAVE DO DELETE FROM orders WHERE id < 0";
    expect(checkStoredProgram(program('event', 'purge', event), context).statement(false)).toBe(
      event.replace('DEFINER=`root`@`localhost` ', ''),
    );
  });

  it('lexes a body under its own sql_mode: without backslash escapes a quote may end a string', () => {
    const create = "CREATE DEFINER=`root`@`localhost` PROCEDURE `p`()\nBEGIN SELECT 'a\\'; SELECT 1; END";
    expect(() => checkStoredProgram(program('procedure', 'p', create), context)).toThrow(ManifestError);
    expect(
      checkStoredProgram(
        program('procedure', 'p', create, { sqlMode: 'NO_BACKSLASH_ESCAPES' }),
        context,
      ).statement(true),
    ).toBe(create);
    const hidden =
      "CREATE DEFINER=`root`@`localhost` PROCEDURE `p`()\nBEGIN SELECT 'a\\'; GRANT ALL ON *.* TO x; SELECT ''; END";
    expect(() =>
      checkStoredProgram(program('procedure', 'p', hidden, { sqlMode: 'NO_BACKSLASH_ESCAPES' }), context),
    ).toThrow('GRANT is not allowed');
  });

  it.each([
    ['dynamic SQL', 'BEGIN PREPARE s FROM @q; EXECUTE s; END'],
    ['another database', 'BEGIN DELETE FROM shop.orders; END'],
    ['a system table', 'BEGIN SELECT * FROM `mysql`.`user`; END'],
    ['a three-part name', 'BEGIN SELECT a.b.c FROM orders; END'],
    ['a file read', "BEGIN SELECT LOAD_FILE('/etc/passwd'); END"],
    ['a file write', "BEGIN SELECT 1 INTO OUTFILE '/tmp/x'; END"],
    ['LOAD DATA', "BEGIN LOAD DATA INFILE '/etc/passwd' INTO TABLE orders; END"],
    ['a grant', 'BEGIN GRANT ALL ON *.* TO x; END'],
    ['a password change', "BEGIN UPDATE orders SET note = 'x'; SET PASSWORD = 'y'; END"],
    ["another account's password", "SET PASSWORD FOR 'root'@'localhost' = 'y'"],
    ['a new account', "BEGIN CREATE OR REPLACE USER x IDENTIFIED BY 'y'; END"],
    ['a dropped database', 'BEGIN DROP DATABASE IF EXISTS x; END'],
    ['a server setting', 'BEGIN SET GLOBAL read_only = 0; END'],
    ['a server setting by variable', 'BEGIN SET @@global.read_only = 0; END'],
    ['replication', "BEGIN CHANGE MASTER TO MASTER_HOST = 'x'; END"],
    [
      'a nested definer',
      'BEGIN CREATE DEFINER=`root`@`localhost` EVENT e ON SCHEDULE EVERY 1 DAY DO SELECT 1; END',
    ],
    ['a foreign engine', 'BEGIN CREATE TABLE t (a int) ENGINE=CONNECT; END'],
    ['a shutdown', 'BEGIN SHUTDOWN; END'],
    ['a statement after END', 'BEGIN SELECT 1; END; DROP TABLE orders'],
    ['";" outside BEGIN … END', 'SELECT 1; DROP TABLE orders'],
    ['another language', "LANGUAGE JAVASCRIPT AS 'x'"],
    ['a version comment hiding a grant', 'BEGIN /*!50000 GRANT ALL ON *.* TO x */; END'],
  ])('refuses a procedure body with %s', (_what, body) => {
    const create = `CREATE DEFINER=\`root\`@\`localhost\` PROCEDURE \`p\`()\n${body}`;
    expect(() => checkStoredProgram(program('procedure', 'p', create), context)).toThrow(ManifestError);
  });

  it('takes SET password in an UPDATE or INSERT … SET for a column', () => {
    const create =
      "CREATE PROCEDURE `p`()\nBEGIN UPDATE orders SET password = 'x' WHERE id = 1; INSERT INTO orders SET password = 'y'; END";
    expect(checkStoredProgram(program('procedure', 'p', create), context).statement(false)).toBe(create);
  });

  it.each([
    ['another name', 'procedure', 'CREATE PROCEDURE `q`() SELECT 1'],
    ['a qualified name', 'procedure', 'CREATE PROCEDURE `p`.`x`() SELECT 1'],
    ['another kind', 'procedure', 'CREATE FUNCTION `p`() RETURNS INT RETURN 1'],
    ['a UDF', 'function', "CREATE FUNCTION `p` RETURNS STRING SONAME 'evil.so'"],
    [
      'a trigger on another table',
      'trigger',
      'CREATE TRIGGER `p` BEFORE INSERT ON `users` FOR EACH ROW SET @a = 1',
    ],
    [
      'a trigger in another database',
      'trigger',
      'CREATE TRIGGER `p` BEFORE INSERT ON `orders`.`x` FOR EACH ROW SET @a = 1',
    ],
    ['an event without a schedule', 'event', 'CREATE EVENT `p` DO SELECT 1'],
    ['a stray comment', 'procedure', 'CREATE PROCEDURE `p`() /* a /* b */ SELECT 1'],
  ] as const)('refuses %s', (_what, kind, create) => {
    expect(() => checkStoredProgram(program(kind, 'p', create), context)).toThrow(ManifestError);
  });
});
