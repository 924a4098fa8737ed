import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  type BackupSummary,
  backupName,
  chooseBackup,
  planPrune,
  pruneBackups,
  timeOfBackupName,
  validateBackup,
} from '../../core/backups.ts';
import { HashMismatchError, ManifestError, NoBackupError } from '../../core/errors.ts';
import { recordingLogger, silentLogger } from '../../core/log.ts';
import type { PhysicalManifest } from '../../core/manifest.ts';
import { FileBackupStorage } from '../../core/storage/file.ts';
import { VerifyingStream } from '../../core/stream/verify.ts';
import { physicalManifest } from '../support/manifests.ts';
import { tempDir } from '../support/root.ts';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

let storage: FileBackupStorage;

/** A complete backup whose one file holds `content`, finished at `finishedAt`. */
async function completeBackup(
  name: string,
  finishedAt: string,
  content = Buffer.from(name),
): Promise<PhysicalManifest> {
  const handle = await storage.startBackup('ks/0', name);
  const stored = await handle.writeFile('0000', () => Readable.from([content]));
  const manifest = physicalManifest({
    name,
    dir: 'ks/0',
    finishedAt,
    files: [
      {
        name: '0000',
        base: 'data',
        path: 'ibdata1',
        rawSize: content.length,
        storedSize: stored.size,
        sha256: stored.sha256,
      },
    ],
  });
  await handle.endBackup(manifest);
  return manifest;
}

async function incompleteBackup(name: string): Promise<void> {
  const handle = await storage.startBackup('ks/0', name);
  await handle.writeFile('0000', () => Readable.from([Buffer.from('partial')]));
}

beforeEach(async () => {
  storage = new FileBackupStorage(await tempDir('backups'));
});

describe('backup names', () => {
  it('start with the UTC time so they sort by time, and the time reads back', () => {
    const time = new Date('2026-11-24T09:05:03.250Z');
    const name = backupName(time, 'db-1.example/../x');
    expect(name).toBe('2026-11-24.090503.db-1.example-..-x');
    expect(timeOfBackupName(name)?.toISOString()).toBe('2026-11-24T09:05:03.000Z');
    expect(timeOfBackupName('nightly')).toBeUndefined();
  });
});

describe('chooseBackup', () => {
  it('picks the newest complete backup and warns about each newer incomplete one', async () => {
    await completeBackup('2026-11-20.000000.db1', '2026-11-20T00:10:00Z');
    await completeBackup('2026-11-21.000000.db1', '2026-11-21T00:10:00Z');
    await incompleteBackup('2026-11-22.000000.db1');
    const logger = recordingLogger();
    const chosen = await chooseBackup(storage, 'ks/0', {}, logger);
    expect(chosen.handle.name).toBe('2026-11-21.000000.db1');
    expect(chosen.skipped.map((s) => s.name)).toEqual(['2026-11-22.000000.db1']);
    expect(logger.records.filter((r) => r.level === 'warn').map((r) => r.message)).toEqual([
      expect.stringContaining('skipping backup 2026-11-22.000000.db1'),
    ]);
  });

  it('picks a named backup, or the newest finished at or before a time', async () => {
    await completeBackup('2026-11-20.000000.db1', '2026-11-20T00:10:00Z');
    await completeBackup('2026-11-21.000000.db1', '2026-11-21T00:10:00Z');
    expect(
      (await chooseBackup(storage, 'ks/0', { name: '2026-11-20.000000.db1' }, silentLogger)).handle.name,
    ).toBe('2026-11-20.000000.db1');
    const atOrBefore = new Date('2026-11-21T00:05:00Z');
    expect((await chooseBackup(storage, 'ks/0', { atOrBefore }, silentLogger)).handle.name).toBe(
      '2026-11-20.000000.db1',
    );
  });

  it('fails with NoBackupError when nothing is complete, or the named one is missing or incomplete', async () => {
    await incompleteBackup('2026-11-22.000000.db1');
    await expect(chooseBackup(storage, 'ks/0', {}, silentLogger)).rejects.toBeInstanceOf(NoBackupError);
    await expect(chooseBackup(storage, 'ks/0', { name: 'nope' }, silentLogger)).rejects.toThrow(
      /does not exist/,
    );
    await expect(
      chooseBackup(storage, 'ks/0', { name: '2026-11-22.000000.db1' }, silentLogger),
    ).rejects.toThrow(/is not complete/);
    await expect(chooseBackup(storage, 'empty/0', {}, silentLogger)).rejects.toBeInstanceOf(NoBackupError);
  });

  it('fails a named backup whose MANIFEST does not check out as a verification failure, not as missing', async () => {
    const manifest = await completeBackup('2026-11-20.000000.db1', '2026-11-20T00:10:00Z');
    await fs.writeFile(path.join(storage.root, 'ks/0', manifest.name, 'MANIFEST'), '{"formatVersion": 1}');
    const error = await chooseBackup(storage, 'ks/0', { name: manifest.name }, silentLogger).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ManifestError);
    expect((error as ManifestError).exitCode).toBe(5);
  });
});

describe('validateBackup', () => {
  it('passes an intact backup, shallow and deep', async () => {
    const manifest = await completeBackup(
      '2026-11-20.000000.db1',
      '2026-11-20T00:10:00Z',
      Buffer.alloc(100_000, 3),
    );
    const handle = storage.openBackup('ks/0', manifest.name);
    expect((await validateBackup(handle, manifest)).problems).toEqual([]);
    const deep = await validateBackup(handle, manifest, { deep: true });
    expect(deep.problems).toEqual([]);
    expect(deep.bytes).toBe(100_000);
  });

  it('names a missing file, a wrong size and (deep) a flipped byte', async () => {
    const manifest = await completeBackup(
      '2026-11-20.000000.db1',
      '2026-11-20T00:10:00Z',
      Buffer.alloc(1000, 3),
    );
    const handle = storage.openBackup('ks/0', manifest.name);
    const withMissing = {
      ...manifest,
      files: [...manifest.files, { ...manifest.files[0]!, name: '0001', path: 'x' }],
    };
    expect((await validateBackup(handle, withMissing)).problems).toEqual([
      { file: '0001', problem: 'missing' },
    ]);
    const wrongSize = { ...manifest, files: [{ ...manifest.files[0]!, storedSize: 999 }] };
    expect((await validateBackup(handle, wrongSize)).problems[0]?.problem).toContain('size 1000');
    const wrongHash = {
      ...manifest,
      files: [{ ...manifest.files[0]!, sha256: sha256(Buffer.alloc(1000, 4)) }],
    };
    expect((await validateBackup(handle, wrongHash)).problems).toEqual([]);
    expect((await validateBackup(handle, wrongHash, { deep: true })).problems[0]).toMatchObject({
      file: '0000',
    });
  });
});

describe('VerifyingStream', () => {
  const data = Buffer.from('stored bytes');
  const sink = () => new Writable({ write: (_c, _e, done) => done() });

  it('passes bytes with the expected size and hash', async () => {
    await pipeline(
      Readable.from([data]),
      new VerifyingStream({ name: 'f', sha256: sha256(data), storedSize: data.length }),
      sink(),
    );
  });

  it('fails with HashMismatchError naming the file on a flipped byte or a wrong length', async () => {
    const flipped = Buffer.from(data);
    flipped[0]! ^= 1;
    const expected = { name: 'shop/orders.ibd', sha256: sha256(data), storedSize: data.length };
    const error = await pipeline(Readable.from([flipped]), new VerifyingStream(expected), sink()).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(HashMismatchError);
    expect((error as Error).message).toContain('shop/orders.ibd');
    await expect(
      pipeline(Readable.from([data.subarray(1)]), new VerifyingStream(expected), sink()),
    ).rejects.toThrow(/bytes/);
  });
});

describe('planPrune and pruneBackups', () => {
  const now = new Date('2026-11-30T00:00:00Z');
  const complete = (name: string, finishedAt: string): BackupSummary => ({
    dir: 'ks/0',
    name,
    complete: true,
    manifest: physicalManifest({ name, finishedAt }),
  });
  const incomplete = (name: string): BackupSummary => ({
    dir: 'ks/0',
    name,
    complete: false,
    problem: 'no MANIFEST',
    error: new ManifestError('has no MANIFEST', name),
  });

  it('removes complete backups older than the age while more than the count remain', () => {
    const plan = planPrune(
      [
        complete('2026-11-01.000000.a', '2026-11-01T00:00:00Z'),
        complete('2026-11-02.000000.a', '2026-11-02T00:00:00Z'),
        complete('2026-11-03.000000.a', '2026-11-03T00:00:00Z'),
        complete('2026-11-29.000000.a', '2026-11-29T00:00:00Z'),
      ],
      { keepCount: 2, keepDays: 7 },
      now,
    );
    expect(plan.remove.map((r) => r.name)).toEqual(['2026-11-01.000000.a', '2026-11-02.000000.a']);
    expect(plan.keep).toEqual(['2026-11-03.000000.a', '2026-11-29.000000.a']);
  });

  it('never removes the newest complete backup, even when it is old and the count is 0', () => {
    const plan = planPrune(
      [complete('2026-01-01.000000.a', '2026-01-01T00:00:00Z')],
      { keepCount: 0, keepDays: 1 },
      now,
    );
    expect(plan.remove).toEqual([]);
  });

  it('removes incomplete backups older than a day and keeps younger ones (they may be running)', () => {
    const plan = planPrune(
      [incomplete('2026-11-28.000000.a'), incomplete('2026-11-29.230000.a'), incomplete('nightly')],
      { keepCount: 1, keepDays: 1 },
      now,
    );
    expect(plan.remove.map((r) => r.name)).toEqual(['2026-11-28.000000.a']);
    expect(plan.keep).toEqual(['2026-11-29.230000.a', 'nightly']);
  });

  it('deletes what the plan removes, and nothing with --dry-run', async () => {
    await completeBackup('2026-11-01.000000.db1', '2026-11-01T00:00:00Z');
    await completeBackup('2026-11-29.000000.db1', '2026-11-29T00:00:00Z');
    await incompleteBackup('2026-11-10.000000.db1');
    const dry = await pruneBackups(
      storage,
      'ks/0',
      { keepCount: 1, keepDays: 7 },
      { dryRun: true, now, logger: silentLogger },
    );
    expect(dry.remove.map((r) => r.name)).toEqual(['2026-11-01.000000.db1', '2026-11-10.000000.db1']);
    expect(await storage.listBackups('ks/0')).toHaveLength(3);
    await pruneBackups(storage, 'ks/0', { keepCount: 1, keepDays: 7 }, { now, logger: silentLogger });
    expect((await storage.listBackups('ks/0')).map((b) => b.name)).toEqual(['2026-11-29.000000.db1']);
  });
});
