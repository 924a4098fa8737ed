import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { PrivateInstance } from '../../local/private-instance.ts';

const run = promisify(execFile);

/**
 * A database that holds everything a snapshot must carry: a non-default character set, triggers
 * (two on one event, in order; one with a definer account), a procedure, a function (with a
 * non-ASCII literal), one created under another sql_mode, a view with a DEFINER that calls the
 * function, and an event. The triggers fill `audit`, so a load that fired them would show in its
 * checksum.
 */
export async function createEverythingSchema(instance: PrivateInstance, database: string): Promise<void> {
  await instance.query(`CREATE DATABASE ${database} CHARACTER SET latin1 COLLATE latin1_german1_ci`);
  await instance.query("CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY 'app-secret'");
  await instance.query(`GRANT ALL ON ${database}.* TO 'app'@'%'`);
  const c = await instance.connect(database);
  try {
    // Routines are parsed under the session's sql_mode: set it, as an application would.
    await c.query("SET SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION'");
    const statements = [
      'CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(100), amount DECIMAL(10,2), placed DATETIME) ENGINE=InnoDB',
      'CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, order_id INT, what VARCHAR(40)) ENGINE=InnoDB',
      "CREATE DEFINER='app'@'%' TRIGGER orders_ai AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit (order_id, what) VALUES (NEW.id, 'insert')",
      "CREATE TRIGGER orders_ai_second AFTER INSERT ON orders FOR EACH ROW FOLLOWS orders_ai INSERT INTO audit (order_id, what) VALUES (NEW.id, CONCAT('second ', NEW.note))",
      "CREATE TRIGGER orders_bu BEFORE UPDATE ON orders FOR EACH ROW SET NEW.note = CONCAT(NEW.note, ' (changed)')",
      [
        'CREATE PROCEDURE add_order(IN p_note VARCHAR(100), IN p_amount DECIMAL(10,2))',
        '    MODIFIES SQL DATA',
        "    COMMENT 'adds one order; audited'",
        'BEGIN',
        '  DECLARE n INT DEFAULT 0;',
        '  -- the trigger writes the audit row',
        "  INSERT INTO orders (note, amount, placed) VALUES (p_note, p_amount, '2026-12-01 10:00:00');",
        '  SELECT COUNT(*) INTO n FROM orders;',
        'END',
      ].join('\n'),
      "CREATE FUNCTION with_tax(x DECIMAL(10,2)) RETURNS VARCHAR(40) CHARSET utf8mb4 DETERMINISTIC RETURN CONCAT(x * 1.2, ' Grüße')",
      "CREATE DEFINER='app'@'%' SQL SECURITY DEFINER VIEW big_orders AS SELECT id, with_tax(amount) AS gross FROM orders WHERE amount > 10",
      "CREATE EVENT purge_audit ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' ON COMPLETION PRESERVE DISABLE COMMENT 'keeps audit short' DO DELETE FROM audit WHERE id < 0",
    ];
    for (const statement of statements) await c.query(statement);
    await c.query("SET SESSION sql_mode = 'ANSI_QUOTES,NO_BACKSLASH_ESCAPES'");
    await c.query(
      `CREATE PROCEDURE "quoted_modes"() READS SQL DATA SELECT 'a\\b' AS "back slash", COUNT(*) FROM "orders"`,
    );
    await c.query("SET SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION'");
    for (let i = 1; i <= 200; i++) await c.query('CALL add_order(?, ?)', [`order ${i}`, i * 0.75]);
    await c.query('UPDATE orders SET note = note WHERE id % 10 = 0');
  } finally {
    await c.end();
  }
}

/**
 * `<dump> --routines --triggers --events --no-data` of one database, normalised: the header lines
 * (host, versions) and AUTO_INCREMENT counters left out, and the database's own name before a
 * column of a view (MariaDB adds it to every qualified column when a view is created from what SHOW
 * CREATE VIEW printed, as it does reloading its own dump), and a column's character set written
 * before its collation (MySQL adds it to a column whose collation a CREATE TABLE names, as SHOW
 * CREATE TABLE did: reloading its own dump does the same).
 */
export async function dumpSchema(
  dump: readonly string[],
  instance: PrivateInstance,
  database: string,
): Promise<string> {
  const [command, ...prefix] = dump;
  const { stdout } = await run(
    command!,
    [
      ...prefix,
      `--socket=${instance.socket}`,
      '--user=root',
      '--routines',
      '--triggers',
      '--events',
      '--no-data',
      '--skip-dump-date',
      '--databases',
      database,
    ],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  return stdout
    .split('\n')
    .filter((line) => !/^-- (MariaDB dump|MySQL dump|Host:|Server version)/.test(line))
    .join('\n')
    .replace(/ AUTO_INCREMENT=\d+/g, '')
    .replaceAll(`\`${database}\`.\``, '`')
    .replace(/ CHARACTER SET (\w+) COLLATE (\1_\w+)/g, ' COLLATE $2');
}
