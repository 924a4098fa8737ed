import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readManifest } from '../../core/backups.ts';
import { snapshotDir } from '../../core/storage/layout.ts';
import { runStepback } from '../support/cli.ts';
import { fillRandom, stateOf, tableChecksums } from '../support/data.ts';
import { recordFault } from '../support/faults.ts';
import { createTestInstance, type TestInstance } from '../support/mariadb.ts';
import { s3rverCredentials, startS3, type TestS3 } from '../support/s3.ts';
import { moderateFaults, type S3FaultProxy, startS3FaultProxy, storedObject } from '../support/s3-faults.ts';

// Backup, restore, snapshot and multirestore run through the CLI as an operator runs them, every S3
// request through the fault proxy.

const MiB = 1024 * 1024;
let s3: TestS3;
let proxy: S3FaultProxy;

beforeAll(async () => {
  s3 = await startS3();
  proxy = await startS3FaultProxy(s3.endpoint);
});

afterAll(async () => {
  await proxy?.stop();
  await s3?.stop();
});

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('stepback through S3 faults', () => {
  let source: TestInstance;
  let target: TestInstance;
  const env = {
    AWS_ACCESS_KEY_ID: s3rverCredentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3rverCredentials.secretAccessKey,
    AWS_REGION: 'us-east-1',
  };
  /** Storage flags as an operator gives them, every request through the fault proxy. */
  const storageArgs = (prefix: string) => [
    '--storage',
    `s3://${s3.bucket}/${prefix}`,
    '--s3-endpoint',
    proxy.endpoint,
    '--s3-path-style',
  ];

  beforeAll(async () => {
    [source, target] = await Promise.all([
      createTestInstance({ name: 'faults-source' }),
      createTestInstance({ name: 'faults-target' }),
    ]);
    await source.query('CREATE DATABASE shop');
    await source.query(
      'CREATE TABLE shop.orders (id INT PRIMARY KEY, note VARCHAR(200), amount DECIMAL(12,2) NULL) ENGINE=InnoDB',
    );
    await source.query(
      "INSERT INTO shop.orders SELECT seq, CONCAT('order ', seq, ' — ünïcödé'), IF(seq % 7 = 0, NULL, seq * 1.5) FROM shop.seq_1_to_3000",
    );
    // 10 MiB that does not compress: its file is stored in several parts.
    await fillRandom(source, 'shop', 'blobs', 10_000);
  });

  afterAll(async () => {
    await Promise.all([source?.dispose(), target?.dispose()]);
  });

  /** Rows of `database` on `from` that `to` (in `copy`) lacks, table by table: what a run lost. */
  async function rowsLost(from: TestInstance, database: string, to: TestInstance, copy = database) {
    let lost = 0;
    const tables = await from.query<{ name: string }[]>(
      "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = ? AND table_type = 'BASE TABLE'",
      [database],
    );
    for (const { name } of tables) {
      const [{ n: had }] = await from.query<[{ n: number }]>(
        `SELECT COUNT(*) AS n FROM \`${database}\`.\`${name}\``,
      );
      const [{ n: has }] = await to
        .query<[{ n: number }]>(`SELECT COUNT(*) AS n FROM \`${copy}\`.\`${name}\``)
        .catch(() => [{ n: 0 }] as [{ n: number }]);
      lost += Math.max(0, Number(had) - Number(has));
    }
    return lost;
  }

  /** Objects under `prefix` that no complete backup's MANIFEST lists: what a run left behind. */
  async function objectsLeft(prefix: string, keep: (key: string) => boolean = () => false) {
    const direct = s3.storage(prefix);
    const keys: string[] = [];
    for await (const entry of direct.listKeys(`${prefix}/`)) keys.push(entry.key);
    await direct.close();
    return keys.filter((key) => !keep(key)).length;
  }

  /** Every object of a stored backup matches its manifest's size and hash, read straight from s3rver. */
  async function expectStoredAsManifestSays(prefix: string, dir: string, name: string) {
    const direct = s3.storage(prefix);
    const manifest = await readManifest(direct.openBackup(dir, name));
    for (const file of manifest.files) {
      const stored = await storedObject(s3, `${prefix}/${dir}/${name}/${file.name}`);
      expect(stored?.length, file.name).toBe(file.storedSize);
      expect(sha256(stored!), file.name).toBe(file.sha256);
    }
    await direct.close();
    return manifest;
  }

  it('backs up and restores through faults, resuming a broken download with a ranged GET', async () => {
    const name = '2026-11-24.100000.faults';
    proxy.setFaults(moderateFaults(), 11);
    const made = await runStepback(
      [
        'backup',
        '--defaults-file',
        source.cnf,
        ...storageArgs('cli'),
        '--dir',
        'shop/0',
        '--name',
        name,
        '--json',
      ],
      { env },
    );
    expect(made.code, made.stderr).toBe(0);
    const manifest = await expectStoredAsManifestSays('cli', 'shop/0', name);
    const blobs = manifest.files.find((file) => file.name.endsWith('.shop.blobs.ibd.zst'));
    expect(blobs?.storedSize).toBeGreaterThan(8 * MiB);
    const blobsKey = `cli/shop/0/${name}/${blobs?.name}`;

    // The first GET of the big file breaks off a third of the way in, on top of the random faults.
    proxy.setFaults(
      [
        { kind: 'truncate', method: 'GET', key: new RegExp(`${blobs?.name}$`), nth: [1], bytes: 3 * MiB },
        ...moderateFaults(),
      ],
      12,
    );
    const from = proxy.requests.length;
    const restored = await runStepback(
      ['restore', '--defaults-file', target.cnf, ...storageArgs('cli'), '--dir', 'shop/0', '--json'],
      { env },
    );
    const faults = proxy.hits();
    proxy.setFaults([]);
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.json).toMatchObject({ backup: name });
    expect(await tableChecksums(target, 'shop')).toEqual(await tableChecksums(source, 'shop'));
    const blobGets = proxy.requests.slice(from).filter((r) => r.method === 'GET' && r.key === blobsKey);
    expect(blobGets[0]).toMatchObject({ fault: 'truncate', range: undefined });
    // Resumed past what was passed on, not from byte 0 (the client may not have passed on all 3 MiB).
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(blobGets[1]?.range ?? '')?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(3 * MiB);
    // The faults did happen: the run went through several kinds of them.
    expect(Object.keys(faults).length).toBeGreaterThanOrEqual(3);
    const listed = new Set([...manifest.files.map((file) => file.name), 'MANIFEST']);
    recordFault({
      fault: 'S3 faults (503, 500, resets, truncated and slow bodies) under backup and restore',
      cases: 1,
      survived: 1,
      rowsLost: await rowsLost(source, 'shop', target),
      filesLeft: await objectsLeft('cli', (key) => listed.has(key.split('/').pop()!)),
    });
  });

  it('snapshots and multirestores through faults, byte-identical', async () => {
    proxy.setFaults(moderateFaults(0.06), 21);
    const snap = await runStepback(
      [
        'snapshot',
        '--defaults-file',
        source.cnf,
        ...storageArgs('cli-logical'),
        '--dir',
        'shop/snap',
        '--database',
        'shop',
        '--max-file-size',
        '4MiB',
        '--json',
      ],
      { env },
    );
    expect(snap.code, snap.stderr).toBe(0);
    const [entry] = (snap.json as { snapshots: { dir: string; name: string }[] }).snapshots;
    await expectStoredAsManifestSays('cli-logical', snapshotDir(entry!.dir), entry!.name);
    const snapshotFaults = proxy.hits();
    proxy.setFaults(moderateFaults(0.06), 22);
    const run = await runStepback(
      [
        'multirestore',
        '--defaults-file',
        target.cnf,
        ...storageArgs('cli-logical'),
        '--sources',
        `${entry!.dir}@${entry!.name}`,
        '--database',
        'shop_copy',
        '--json',
      ],
      { env },
    );
    const faults = proxy.hits();
    proxy.setFaults([]);
    expect(run.code, run.stderr).toBe(0);
    expect(await tableChecksums(target, 'shop_copy')).toEqual(await tableChecksums(source, 'shop'));
    // The faults did happen, over both runs: several kinds of them.
    expect(Object.keys({ ...snapshotFaults, ...faults }).length).toBeGreaterThanOrEqual(3);
    recordFault({
      fault: 'S3 faults (503, 500, resets, truncated and slow bodies) under snapshot and multirestore',
      cases: 1,
      survived: 1,
      rowsLost: await rowsLost(source, 'shop', target, 'shop_copy'),
      filesLeft: await objectsLeft('cli-logical', (key) => /\.csv\.zst$|\/MANIFEST$/.test(key)),
    });
  });

  it('fails a backup whose file fails past the retries, naming the object, with no MANIFEST', async () => {
    const name = '2026-11-24.110000.faults';
    proxy.setFaults([{ kind: 'internalError', method: 'PUT', key: /shop\.blobs\.ibd/ }]);
    const run = await runStepback(
      [
        'backup',
        '--defaults-file',
        source.cnf,
        ...storageArgs('cli-fail'),
        '--dir',
        'shop/0',
        '--name',
        name,
      ],
      { env },
    );
    proxy.setFaults([]);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(
      new RegExp(`s3://${s3.bucket}/cli-fail/shop/0/${name}/\\d+\\.shop\\.blobs\\.ibd`),
    );
    const direct = s3.storage('cli-fail');
    const keys: string[] = [];
    for await (const entry of direct.listKeys('cli-fail/')) keys.push(entry.key);
    expect(keys.filter((key) => key.endsWith('/MANIFEST'))).toEqual([]);
    expect(await direct.listBackups('shop/0')).toEqual([]);
    await direct.close();
    // The source was put back as it was found.
    expect(await stateOf(source)).toMatchObject({ running: true, readOnly: false });
    recordFault({
      fault: 'S3 write failing past the retries (backup)',
      cases: 1,
      survived: 1,
      rowsLost: null,
      filesLeft: await objectsLeft('cli-fail'),
    });
  });

  it('fails a snapshot whose data file fails past the retries, naming the object, with no MANIFEST', async () => {
    proxy.setFaults([{ kind: 'internalError', method: 'PUT', key: /\.csv\.zst$/ }]);
    const run = await runStepback(
      [
        'snapshot',
        '--defaults-file',
        source.cnf,
        ...storageArgs('cli-logical-fail'),
        '--dir',
        'shop/snap',
        '--database',
        'shop',
      ],
      { env },
    );
    proxy.setFaults([]);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(
      new RegExp(`s3://${s3.bucket}/cli-logical-fail/snapshots/shop/snap/-/[^/ ]+/[\\d.]+\\.csv\\.zst`),
    );
    const direct = s3.storage('cli-logical-fail');
    const keys: string[] = [];
    for await (const entry of direct.listKeys('cli-logical-fail/')) keys.push(entry.key);
    expect(keys.filter((key) => key.endsWith('/MANIFEST'))).toEqual([]);
    await direct.close();
    expect(await stateOf(source)).toMatchObject({ running: true, readOnly: false });
    recordFault({
      fault: 'S3 write failing past the retries (snapshot)',
      cases: 1,
      survived: 1,
      rowsLost: null,
      filesLeft: await objectsLeft('cli-logical-fail'),
    });
  });

  it('fails a restore whose file cannot be read past the retries, naming the object', async () => {
    const name = '2026-11-24.100000.faults';
    proxy.setFaults([{ kind: 'internalError', method: 'GET', key: /shop\.blobs\.ibd/ }]);
    const run = await runStepback(
      [
        'restore',
        '--defaults-file',
        target.cnf,
        ...storageArgs('cli'),
        '--dir',
        'shop/0',
        '--backup',
        name,
        '--delete-before-restore',
      ],
      { env },
    );
    proxy.setFaults([]);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(new RegExp(`cli/shop/0/${name}/\\d+\\.shop\\.blobs\\.ibd`));
    // What the target held is still there.
    expect(await tableChecksums(target, 'shop')).toEqual(await tableChecksums(source, 'shop'));
    recordFault({
      fault: 'S3 read failing past the retries (restore)',
      cases: 1,
      survived: 1,
      rowsLost: await rowsLost(source, 'shop', target),
      filesLeft: null,
    });
  });
});
