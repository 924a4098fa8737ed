import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PrivateInstance } from '../../local/private-instance.ts';
import { runStepback } from '../support/cli.ts';
import { tableChecksums } from '../support/data.ts';
import { createMysqlInstance, mysqldWithClientTools } from '../support/mysql.ts';
import { startS3, type TestS3 } from '../support/s3.ts';

/**
 * Point-in-time recovery on a running MySQL 9.7 server (needs .stepback-mysql/, made by
 * scripts/setup.js as root), with the archive in S3 (s3rver): archive, list, and a restore to the
 * second before a DELETE.
 */

let source: PrivateInstance;
let target: PrivateInstance;
let storage: string;
let s3: TestS3;
let mysqld: string;
let beforeDelete: { checksums: Record<string, string>; executed: string; time: string };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const executed = async (instance: PrivateInstance) =>
  String((await instance.query<[{ set: string }]>('SELECT @@GLOBAL.gtid_executed AS `set`'))[0].set).replace(
    /\n/g,
    '',
  );

beforeAll(async () => {
  mysqld = await mysqldWithClientTools();
  [source, target] = await Promise.all([
    createMysqlInstance({ name: 'pitr-source' }),
    createMysqlInstance({ name: 'pitr-target' }),
  ]);
  s3 = await startS3();
  storage = s3.url('pitr');
  await source.query('CREATE DATABASE shop');
  await source.query(
    'CREATE TABLE shop.orders (id INT PRIMARY KEY, note VARCHAR(100), doc JSON) ENGINE=InnoDB',
  );
  for (let id = 1; id <= 20; id++) {
    await source.query('INSERT INTO shop.orders VALUES (?, ?, JSON_OBJECT(?, ?))', [
      id,
      `order ${id}`,
      'n',
      id,
    ]);
  }
  const backup = await runStepback(
    [
      'backup',
      '--storage',
      storage,
      '--dir',
      'shop/0',
      '--defaults-file',
      source.cnf,
      '--mysqld',
      mysqld,
      '--json',
    ],
    { env: s3.env },
  );
  expect(backup.code, backup.stderr).toBe(0);
  await sleep(1100);
  await source.query("UPDATE shop.orders SET note = 'changed' WHERE id % 2 = 0");
  await source.query("INSERT INTO shop.orders VALUES (100, 'late', NULL)");
  await sleep(1100);
  const [{ now }] = await source.query<[{ now: number }]>('SELECT UNIX_TIMESTAMP() AS now');
  beforeDelete = {
    checksums: await tableChecksums(source, 'shop'),
    executed: await executed(source),
    time: new Date((Number(now) - 1) * 1000).toISOString(),
  };
  await source.query('DELETE FROM shop.orders WHERE id > 5');
  const archive = await runStepback(
    [
      'binlogs',
      'archive',
      '--storage',
      storage,
      '--dir',
      'shop/0',
      '--defaults-file',
      source.cnf,
      '--mysqld',
      mysqld,
      '--max-age',
      '0',
      '--json',
    ],
    { env: s3.env },
  );
  expect(archive.code, archive.stderr).toBe(0);
}, 180_000);

afterAll(async () => {
  await Promise.all([source?.dispose(), target?.dispose(), s3?.stop()]);
});

describe('point-in-time restore from archived binary logs (MySQL 9.7)', () => {
  it('lists the archive without gaps, up to what the server has executed', async () => {
    const list = await runStepback(['binlogs', 'list', '--storage', storage, '--dir', 'shop/0', '--json'], {
      env: s3.env,
    });
    expect(list.code, list.stderr).toBe(0);
    const listed = list.json as { ranges: { gtidsTo: string }[]; gaps: unknown[] };
    expect(listed.gaps).toEqual([]);
    expect(listed.ranges).toHaveLength(1);
    expect(listed.ranges[0]?.gtidsTo).toBe(await executed(source));
  });

  it('restores into a fresh instance to the second before the DELETE, with gtid_executed of that moment', async () => {
    const run = await runStepback(
      [
        'restore',
        '--storage',
        storage,
        '--dir',
        'shop/0',
        '--defaults-file',
        target.cnf,
        '--mysqld',
        mysqld,
        '--to-time',
        beforeDelete.time,
        '--json',
      ],
      { env: s3.env },
    );
    expect(run.code, run.stderr).toBe(0);
    expect((run.json as { position: string }).position).toBe(beforeDelete.executed);
    expect(await tableChecksums(target, 'shop')).toEqual(beforeDelete.checksums);
    expect(await executed(target)).toBe(beforeDelete.executed);
  });
});
