import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../core/log.ts';
import type { LogicalManifest } from '../../core/manifest.ts';
import { chooseSnapshot } from '../../core/snapshots.ts';
import { FileBackupStorage } from '../../core/storage/file.ts';
import { type CliRun, runStepback } from '../support/cli.ts';
import { tableChecksums } from '../support/data.ts';
import { createTestInstance, type TestInstance } from '../support/mariadb.ts';
import { tempDir } from '../support/root.ts';
import { createEverythingSchema, dumpSchema } from '../support/stored-programs.ts';

let source: TestInstance;
let dest: TestInstance;
let storageRoot: string;

const dump = ['mariadb-dump'];

beforeAll(async () => {
  [source, dest] = await Promise.all([
    createTestInstance({ name: 'programs-source' }),
    createTestInstance({ name: 'programs-dest' }),
  ]);
  storageRoot = await tempDir('programs-storage');
  await createEverythingSchema(source, 'shop');
  // Big enough for its secondary indexes to be built after the load.
  await source.query(
    'CREATE TABLE shop.big (id INT PRIMARY KEY, k INT NOT NULL, c VARCHAR(40), UNIQUE KEY c_u (c), KEY k_1 (k), KEY k_c (k, c)) ENGINE=InnoDB',
  );
  await source.query(
    "INSERT INTO shop.big SELECT seq, seq % 997, CONCAT('c', seq) FROM shop.seq_1_to_120000",
  );
  const run = await runStepback([
    'snapshot',
    '--defaults-file',
    source.cnf,
    '--storage',
    `file://${storageRoot}`,
    '--dir',
    'shop/0',
    '--database',
    'shop',
    '--json',
  ]);
  expect(run.code, run.stderr).toBe(0);
}, 120_000);

afterAll(async () => {
  await Promise.all([source?.dispose(), dest?.dispose()]);
});

/**
 * Copies the snapshot under another address with its triggers' bodies changed by `edit`, and without
 * its view (which calls a stored function, so it cannot be loaded without the routines).
 */
async function tamperedCopy(address: string, edit: (create: string) => string): Promise<void> {
  const files = await fs.readdir(storageRoot, { recursive: true });
  const manifest = files.find((file) => file.endsWith('MANIFEST') && file.includes(`shop${path.sep}0`))!;
  const from = path.dirname(path.join(storageRoot, manifest));
  const to = from.replace(`${path.sep}shop${path.sep}0${path.sep}`, `${path.sep}${address}${path.sep}`);
  await fs.cp(from, to, { recursive: true });
  const json = JSON.parse(await fs.readFile(path.join(to, 'MANIFEST'), 'utf8'));
  json.dir = address;
  json.tables = json.tables.filter((table: { type: string }) => table.type !== 'view');
  for (const program of json.storedPrograms)
    if (program.kind === 'trigger') program.create = edit(program.create);
  await fs.writeFile(path.join(to, 'MANIFEST'), JSON.stringify(json));
}

function multirestore(database: string, ...flags: string[]): Promise<CliRun> {
  return multirestoreWith({}, database, ...flags);
}

function multirestoreWith(
  env: Record<string, string>,
  database: string,
  ...flags: string[]
): Promise<CliRun> {
  return runStepback(
    [
      'multirestore',
      '--defaults-file',
      dest.cnf,
      '--storage',
      `file://${storageRoot}`,
      '--sources',
      'shop/0',
      '--database',
      database,
      ...flags,
      '--json',
    ],
    { env },
  );
}

async function definerOf(instance: TestInstance, sql: string, column: string): Promise<string> {
  const [row] = await instance.query<Record<string, string>[]>(sql);
  return /DEFINER=(\S+)/.exec(String(row?.[column]))?.[1] ?? '';
}

describe('snapshots carry triggers, routines, events, definers and the character set (MariaDB)', () => {
  it('refuses a manifest whose trigger would grant privileges, creating nothing, unless told to leave the programs out', async () => {
    await tamperedCopy('evil/0', (create) =>
      create.replace(/FOR EACH ROW .*$/s, "FOR EACH ROW BEGIN GRANT ALL ON *.* TO 'app'@'%'; END"),
    );
    const run = await runStepback([
      'multirestore',
      '--defaults-file',
      dest.cnf,
      '--storage',
      `file://${storageRoot}`,
      '--sources',
      'evil/0',
      '--database',
      'evil',
      '--json',
    ]);
    expect(run.code, run.stderr).toBe(5);
    expect(run.stderr).toContain('GRANT is not allowed');
    expect(await dest.query('SHOW DATABASES LIKE "evil"')).toEqual([]);
    // The way out the refusal names: the tables and views without the programs.
    expect(run.stderr).toContain('--skip-stored-programs');
    const skipped = await runStepback([
      'multirestore',
      '--defaults-file',
      dest.cnf,
      '--storage',
      `file://${storageRoot}`,
      '--sources',
      'evil/0',
      '--database',
      'evil',
      '--skip-stored-programs',
      '--definer-fallback',
      '--json',
    ]);
    expect(skipped.code, `${skipped.stderr}${skipped.stdout}`).toBe(0);
    expect(skipped.json).toMatchObject({
      storedPrograms: { triggers: 0, procedures: 0, functions: 0, events: 0, skipped: 7 },
    });
    expect(
      await dest.query("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'evil'"),
    ).toEqual([]);
    expect(await tableChecksums(dest, 'evil')).toEqual(await tableChecksums(source, 'shop'));
  }, 60_000);

  it('refuses a DEFINER that does not exist on the destination, naming the account', async () => {
    const run = await multirestore('shop');
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("'app'@'%'");
    expect(run.stderr).toContain('--definer-fallback');
    expect(await dest.query('SHOW DATABASES LIKE "shop"')).toEqual([]);
  }, 60_000);

  it('falls back to the loading user when asked, and says so', async () => {
    const run = await multirestore('shop_fallback', '--definer-fallback');
    expect(run.code, run.stderr).toBe(0);
    const json = run.json as { definersReplaced: { object: string; definer: string }[] };
    expect(json.definersReplaced).toEqual([
      { object: 'view "big_orders"', definer: "'app'@'%'" },
      { object: 'trigger "orders_ai"', definer: "'app'@'%'" },
    ]);
    expect(await definerOf(dest, 'SHOW CREATE VIEW shop_fallback.big_orders', 'Create View')).toBe(
      '`root`@`localhost`',
    );
    expect(await tableChecksums(dest, 'shop_fallback')).toEqual(await tableChecksums(source, 'shop'));
  }, 60_000);

  it('round-trips the schema: the dumps with routines, triggers and events are equal, and the data', async () => {
    await dest.query("CREATE USER 'app'@'%' IDENTIFIED BY 'other-secret'");
    await dest.query("GRANT ALL ON shop.* TO 'app'@'%'");
    const run = await multirestore('shop');
    expect(run.code, run.stderr).toBe(0);
    expect(run.json).toMatchObject({
      storedPrograms: { triggers: 3, procedures: 2, functions: 1, events: 1 },
      definersReplaced: [],
      indexesAfterLoad: ['big'],
    });
    expect(await dumpSchema(dump, dest, 'shop')).toBe(await dumpSchema(dump, source, 'shop'));
    expect(await tableChecksums(dest, 'shop')).toEqual(await tableChecksums(source, 'shop'));
    const [charset] = await dest.query<{ c: string }[]>(
      "SELECT DEFAULT_COLLATION_NAME AS c FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'shop'",
    );
    expect(charset?.c).toBe('latin1_german1_ci');
    // The copies work: the procedure inserts, both triggers write the audit in order.
    const c = await dest.connect('shop');
    try {
      await c.query("CALL add_order('after', 20)");
      const [audit] = await c.query('SELECT what FROM audit ORDER BY id DESC LIMIT 2');
      expect((audit as { what: string }[]).map((row) => row.what)).toEqual(['second after', 'insert']);
      const [gross] = await c.query('SELECT gross FROM big_orders ORDER BY id DESC LIMIT 1');
      expect((gross as { gross: string }[])[0]?.gross).toBe('24.000 Grüße');
    } finally {
      await c.end();
    }
  }, 60_000);

  it('finishes a load killed after its first file: late indexes, triggers, events and data all there', async () => {
    const killed = await multirestoreWith({ STEPBACK_FAULT_PHASE: 'multirestore:loading' }, 'shop_killed');
    expect(killed.code).not.toBe(0);
    const run = await multirestore('shop_killed');
    expect(run.code, run.stderr).toBe(0);
    expect(run.json).toMatchObject({ resumed: true, indexesAfterLoad: ['big'] });
    const copy = (await dumpSchema(dump, dest, 'shop_killed')).replaceAll('shop_killed', 'shop');
    expect(copy).toBe(await dumpSchema(dump, source, 'shop'));
    expect(await tableChecksums(dest, 'shop_killed')).toEqual(await tableChecksums(source, 'shop'));
  }, 60_000);

  it('runs again over its own finished load: the programs are created again, nothing is loaded twice', async () => {
    const before = await dumpSchema(dump, dest, 'shop');
    const checksums = await tableChecksums(dest, 'shop');
    const run = await multirestore('shop');
    expect(run.code, run.stderr).toBe(0);
    expect(run.json).toMatchObject({ resumed: true, files: { loaded: 0 } });
    expect(await dumpSchema(dump, dest, 'shop')).toBe(before);
    expect(await tableChecksums(dest, 'shop')).toEqual(checksums);
  }, 60_000);

  it('carries only the triggers of the tables taken when --tables moves some tables', async () => {
    const run = await runStepback([
      'snapshot',
      '--defaults-file',
      source.cnf,
      '--storage',
      `file://${storageRoot}`,
      '--dir',
      'shop/vertical',
      '--database',
      'shop',
      '--tables',
      'orders',
      '--json',
    ]);
    expect(run.code, run.stderr).toBe(0);
    const { manifest } = await chooseSnapshot(
      new FileBackupStorage(storageRoot),
      'shop/vertical',
      {},
      silentLogger,
    );
    const programs = (manifest as LogicalManifest).storedPrograms?.map((p) => `${p.kind} ${p.name}`);
    // In the order they fire for each table, timing and event (ACTION_ORDER).
    expect(programs).toEqual(['trigger orders_ai', 'trigger orders_bu', 'trigger orders_ai_second']);
    expect((manifest as LogicalManifest).collation).toBe('latin1_german1_ci');
  }, 60_000);

  it('refuses a destination with a routine of the same name unless asked to replace it', async () => {
    await dest.query('CREATE DATABASE clash');
    await dest.query('CREATE PROCEDURE clash.add_order() SELECT 1');
    const refused = await multirestore('clash');
    expect(refused.code).toBe(4);
    expect(refused.stderr).toContain('procedure "add_order"');
    expect(refused.stderr).toContain('--replace-stored-programs');
    const replaced = await multirestore('clash', '--replace-stored-programs');
    expect(replaced.code, replaced.stderr).toBe(0);
    const [row] = await dest.query<Record<string, string>[]>('SHOW CREATE PROCEDURE clash.add_order');
    const [original] = await source.query<Record<string, string>[]>('SHOW CREATE PROCEDURE shop.add_order');
    expect(row?.['Create Procedure']).toBe(original?.['Create Procedure']);
  }, 60_000);
});
