import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PrivateInstance } from '../../local/private-instance.ts';
import { runStepback } from '../support/cli.ts';
import { tableChecksums } from '../support/data.ts';
import { createMysqlInstance, mysqldWrapper, mysqlRoot } from '../support/mysql.ts';
import { tempDir } from '../support/root.ts';
import { createEverythingSchema, dumpSchema } from '../support/stored-programs.ts';

let source: PrivateInstance;
let target: PrivateInstance;
let storageRoot: string;

/** MySQL's own mysqldump, run through the root's loader like its mysqld. */
const mysqldump = [
  path.join(mysqlRoot, 'lib64', 'ld-linux-x86-64.so.2'),
  '--library-path',
  `${path.join(mysqlRoot, 'usr', 'lib', 'x86_64-linux-gnu')}:${path.join(mysqlRoot, 'lib', 'x86_64-linux-gnu')}`,
  path.join(mysqlRoot, 'usr', 'bin', 'mysqldump'),
  // The servers' GTIDs differ by design: the dump compares schemas.
  '--set-gtid-purged=OFF',
];

beforeAll(async () => {
  [source, target] = await Promise.all([
    createMysqlInstance({ name: 'programs-source' }),
    createMysqlInstance({ name: 'programs-target' }),
  ]);
  storageRoot = await tempDir('mysql-programs-storage');
  await createEverythingSchema(source, 'shop');
  // SHOW CREATE TABLE writes these in version comments on MySQL.
  await source.query(
    'CREATE TABLE shop.hidden (id INT PRIMARY KEY, secret VARCHAR(20) INVISIBLE) ENGINE=InnoDB',
  );
  await source.query("INSERT INTO shop.hidden (id, secret) VALUES (1, 'a'), (2, 'b')");
  await source.query(
    'CREATE TABLE shop.parts (id INT PRIMARY KEY, v INT) ENGINE=InnoDB PARTITION BY HASH (id) PARTITIONS 3',
  );
  await source.query('INSERT INTO shop.parts VALUES (1, 1), (2, 2), (3, 3), (4, 4)');
  await target.query("CREATE USER 'app'@'%' IDENTIFIED BY 'other-secret'");
  await target.query("GRANT ALL ON shop.* TO 'app'@'%'");
}, 120_000);

afterAll(async () => {
  await Promise.all([source?.dispose(), target?.dispose()]);
});

describe('snapshots carry triggers, routines, events, definers and the character set (MySQL 9.7)', () => {
  it('round-trips the schema: mysqldump with routines, triggers and events is equal, and the data', async () => {
    const [shown] = await source.query<Record<string, string>[]>('SHOW CREATE TABLE shop.hidden');
    expect(shown?.['Create Table']).toContain('/*!80023 INVISIBLE */');
    const snapshot = await runStepback([
      'snapshot',
      '--defaults-file',
      source.cnf,
      '--mysqld',
      mysqldWrapper,
      '--storage',
      `file://${storageRoot}`,
      '--dir',
      'shop/0',
      '--database',
      'shop',
      '--json',
    ]);
    expect(snapshot.code, snapshot.stderr).toBe(0);
    const load = await runStepback([
      'multirestore',
      '--defaults-file',
      target.cnf,
      '--mysqld',
      mysqldWrapper,
      '--storage',
      `file://${storageRoot}`,
      '--sources',
      'shop/0',
      '--database',
      'shop',
      '--json',
    ]);
    expect(load.code, load.stderr).toBe(0);
    expect(load.json).toMatchObject({
      storedPrograms: { triggers: 3, procedures: 2, functions: 1, events: 1 },
      definersReplaced: [],
    });
    expect(await dumpSchema(mysqldump, target, 'shop')).toBe(await dumpSchema(mysqldump, source, 'shop'));
    expect(await tableChecksums(target, 'shop')).toEqual(await tableChecksums(source, 'shop'));
    const [secret] = await target.query<{ secret: string }[]>('SELECT secret FROM shop.hidden WHERE id = 2');
    expect(secret?.secret).toBe('b');
  }, 120_000);
});
