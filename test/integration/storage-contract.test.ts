import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectBackups, readManifest } from '../../core/backups.ts';
import { MissingFileError, StorageError } from '../../core/errors.ts';
import { FileBackupStorage } from '../../core/storage/file.ts';
import type { S3BackupStorage } from '../../core/storage/s3.ts';
import type { BackupStorage } from '../../core/storage/types.ts';
import { mapConcurrent } from '../../core/stream/concurrency.ts';
import { physicalManifest } from '../support/manifests.ts';
import { tempDir } from '../support/root.ts';
import { startS3, type TestS3 } from '../support/s3.ts';

const MiB = 1024 * 1024;

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** Streams `data` in 64 KiB pieces, the way a compressor hands them over. */
function pieces(data: Buffer): Readable {
  return Readable.from(
    (function* () {
      for (let offset = 0; offset < data.length; offset += 64 * 1024)
        yield data.subarray(offset, offset + 64 * 1024);
    })(),
  );
}

let s3: TestS3;

beforeAll(async () => {
  s3 = await startS3();
});

afterAll(async () => {
  await s3?.stop();
});

interface Implementation {
  name: string;
  /** A fresh, empty storage; multipart parts of 5 MiB where that applies. */
  create(): Promise<BackupStorage>;
  /** Writes bytes behind the storage's back, as a crash or a tamperer would. */
  putRaw(storage: BackupStorage, key: string, body: string): Promise<void>;
}

const implementations: Implementation[] = [
  {
    name: 'file',
    create: async () => new FileBackupStorage(await tempDir('storage')),
    putRaw: async (storage, key, body) =>
      fs.writeFile(path.join((storage as FileBackupStorage).root, key), body),
  },
  {
    name: 's3',
    create: async () => s3.storage(`contract-${randomBytes(4).toString('hex')}`, { minPartSize: 5 * MiB }),
    putRaw: async (storage, key, body) => {
      const s3Storage = storage as S3BackupStorage;
      await s3Storage.client.send(
        new PutObjectCommand({ Bucket: s3.bucket, Key: s3Storage.key(key), Body: body }),
      );
    },
  },
];

describe.each(implementations)('$name backup storage', (implementation) => {
  let storage: BackupStorage;

  beforeAll(async () => {
    storage = await implementation.create();
  });

  afterAll(async () => {
    await storage?.close();
  });

  it('lists backups in time order, whatever order they were made in', async () => {
    const names = ['2026-11-24.120000.db1', '2026-01-02.030405.db1', '2026-11-24.090000.db2'];
    for (const name of names) {
      // A backup shows in listings once it holds a file (S3 has no empty directories).
      const handle = await storage.startBackup('order/0', name);
      await handle.writeFile('0000', () => Readable.from([Buffer.from(name)]));
    }
    expect((await storage.listBackups('order/0')).map((b) => b.name)).toEqual([...names].sort());
    expect(await storage.listBackups('order/none')).toEqual([]);
  });

  it('lists the directories under a directory, key ranges included (they are no backup names)', async () => {
    for (const range of ['80-', '-80', '-']) {
      const handle = await storage.startBackup(`snapshots/ks/0/${range}`, '2026-11-24.120000.db1');
      await handle.writeFile('0000', () => Readable.from([Buffer.from(range)]));
    }
    expect(await storage.listDirectories('snapshots/ks/0')).toEqual(['-', '-80', '80-']);
    expect(await storage.listDirectories('snapshots/ks')).toEqual(['0']);
    expect(await storage.listDirectories('snapshots/none')).toEqual([]);
  });

  it('lists a backup without a MANIFEST as incomplete, and one with a valid MANIFEST as complete', async () => {
    const complete = await storage.startBackup('state/0', '2026-11-24.100000.db1');
    const stored = await complete.writeFile('0000.zst', () => Readable.from([Buffer.from('data')]));
    await complete.endBackup(physicalManifest({ name: complete.name, dir: 'state/0' }));
    const partial = await storage.startBackup('state/0', '2026-11-24.110000.db1');
    await partial.writeFile('0000.zst', () => Readable.from([Buffer.from('half')]));

    const summaries = await inspectBackups(storage, 'state/0');
    expect(summaries.map((s) => [s.name, s.complete])).toEqual([
      ['2026-11-24.100000.db1', true],
      ['2026-11-24.110000.db1', false],
    ]);
    const incomplete = summaries[1]!;
    expect(incomplete.complete === false && incomplete.problem).toMatch(/no MANIFEST/);
    expect(stored).toEqual({ name: '0000.zst', size: 4, sha256: sha256(Buffer.from('data')) });
  });

  it('adds DRILL.json beside a complete backup through a reading handle, leaving the MANIFEST as it was', async () => {
    const handle = await storage.startBackup('drilled/0', '2026-11-24.100000.db1');
    await handle.endBackup(physicalManifest({ name: handle.name, dir: 'drilled/0' }));
    const manifestBefore = await readManifest(handle);
    const reading = storage.openBackup('drilled/0', handle.name);
    await reading.writeRecord('DRILL.json', '{"first":true}');
    await reading.writeRecord('DRILL.json', '{"second":true}');
    const read = async (name: string) => {
      const chunks: Buffer[] = [];
      for await (const chunk of await reading.readFile(name)) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString();
    };
    expect(await read('DRILL.json')).toBe('{"second":true}');
    expect(await readManifest(reading)).toEqual(manifestBefore);
    await expect(reading.writeRecord('MANIFEST' as 'DRILL.json', '{}')).rejects.toThrow(
      /not a backup record/,
    );
    const incomplete = await storage.startBackup('drilled/0', '2026-11-24.110000.db1');
    await incomplete.writeFile('0000', () => Readable.from([Buffer.from('half')]));
    await expect(incomplete.writeRecord('DRILL.json', '{}')).rejects.toThrow(/MANIFEST does not exist/);
    await storage.removeBackup('drilled/0', incomplete.name);
    // Listed with the backup's files, and removed with the backup.
    expect((await reading.listFiles()).map((f) => f.name)).toContain('DRILL.json');
    await storage.removeBackup('drilled/0', handle.name);
    expect(await storage.listBackups('drilled/0')).toEqual([]);
  });

  it('lists the keyspaces at the root', async () => {
    const handle = await storage.startBackup('rootks/0', '2026-11-24.100000.db1');
    await handle.writeFile('0000', () => Readable.from([Buffer.from('x')]));
    expect(await storage.listDirectories('')).toContain('rootks');
  });

  it('lists a backup whose MANIFEST does not parse as incomplete, saying why', async () => {
    const handle = await storage.startBackup('broken/0', '2026-11-24.100000.db1');
    await handle.endBackup(physicalManifest({ name: handle.name }));
    await expect(readManifest(handle)).resolves.toMatchObject({ engine: 'physical' });
    await implementation.putRaw(
      storage,
      `broken/0/${handle.name}/MANIFEST`,
      JSON.stringify(physicalManifest()).slice(0, 50),
    );
    const [summary] = await inspectBackups(storage, 'broken/0');
    expect(summary?.complete === false && summary.problem).toMatch(/not JSON/);
  });

  it('abort removes everything the backup wrote', async () => {
    const handle = await storage.startBackup('abort/0', '2026-11-24.100000.db1');
    await handle.writeFile('0000.zst', () => Readable.from([randomBytes(1000)]));
    await handle.writeFile('0001.zst', () => Readable.from([randomBytes(1000)]));
    await handle.abortBackup();
    expect(await storage.listBackups('abort/0')).toEqual([]);
    expect(await storage.openBackup('abort/0', handle.name).listFiles()).toEqual([]);
  });

  it('remove deletes a backup and leaves its neighbours', async () => {
    for (const name of ['2026-11-24.100000.db1', '2026-11-24.110000.db1']) {
      const handle = await storage.startBackup('remove/0', name);
      await handle.writeFile('0000.zst', () => Readable.from([randomBytes(100)]));
      await handle.endBackup(physicalManifest({ name }));
    }
    await storage.removeBackup('remove/0', '2026-11-24.100000.db1');
    expect((await storage.listBackups('remove/0')).map((b) => b.name)).toEqual(['2026-11-24.110000.db1']);
  });

  it('reads back a file of several multipart parts byte for byte, with its stored size and hash', async () => {
    const data = randomBytes(16 * MiB + 12345);
    const handle = await storage.startBackup('large/0', '2026-11-24.100000.db1');
    const stored = await handle.writeFile('big.bin', () => pieces(data));
    expect(stored.size).toBe(data.length);
    expect(stored.sha256).toBe(sha256(data));
    const back = await readAll(await storage.openBackup('large/0', handle.name).readFile('big.bin'));
    expect(back.equals(data)).toBe(true);
    expect(await handle.listFiles()).toEqual([{ name: 'big.bin', size: data.length }]);
  });

  it('writes many files concurrently without mixing them up', async () => {
    const handle = await storage.startBackup('concurrent/0', '2026-11-24.100000.db1');
    const files = Array.from({ length: 12 }, (_, i) => ({
      name: `f${i}`,
      data: randomBytes(200_000 + i * 1000),
    }));
    const stored = await mapConcurrent(files, 6, (file) =>
      handle.writeFile(file.name, () => pieces(file.data)),
    );
    expect(stored.map((s) => s.sha256)).toEqual(files.map((f) => sha256(f.data)));
    const back = await mapConcurrent(files, 6, async (file) => readAll(await handle.readFile(file.name)));
    back.forEach((data, i) => {
      expect(data.equals(files[i]!.data)).toBe(true);
    });
  });

  it('writes an empty file', async () => {
    const handle = await storage.startBackup('empty/0', '2026-11-24.100000.db1');
    expect(await handle.writeFile('empty', () => Readable.from([]))).toMatchObject({ size: 0 });
    expect((await readAll(await handle.readFile('empty'))).length).toBe(0);
  });

  it('rejects reading a missing file with MissingFileError naming it', async () => {
    const handle = await storage.startBackup('missing/0', '2026-11-24.100000.db1');
    const error = await handle.readFile('nope.zst').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MissingFileError);
    expect((error as MissingFileError).message).toContain('nope.zst');
  });

  it('refuses to start a backup that exists, to write the MANIFEST early, and unsafe names', async () => {
    const handle = await storage.startBackup('refuse/0', '2026-11-24.100000.db1');
    await handle.writeFile('x', () => Readable.from([Buffer.from('x')]));
    await expect(storage.startBackup('refuse/0', handle.name)).rejects.toThrow(/already exists/);
    await expect(handle.writeFile('MANIFEST', () => Readable.from([]))).rejects.toThrow(StorageError);
    await expect(handle.writeFile('../escape', () => Readable.from([]))).rejects.toThrow();
    expect(() => storage.openBackup('../../etc', 'x')).toThrow();
  });

  it('keeps no partial file under its final name when the source fails', async () => {
    const handle = await storage.startBackup('failing/0', '2026-11-24.100000.db1');
    const failing = () =>
      Readable.from(
        (function* () {
          yield randomBytes(1000);
          throw new Error('source read failed');
        })(),
      );
    await expect(handle.writeFile('broken', failing, { replayable: false })).rejects.toThrow(
      'source read failed',
    );
    expect(await handle.listFiles()).toEqual([]);
  });

  it('lists more than 1,000 backups in a directory', { timeout: 240_000 }, async () => {
    const names = Array.from({ length: 1005 }, (_, i) => `2026-11-24.${String(i).padStart(6, '0')}.db1`);
    await mapConcurrent(names, 16, async (name) => {
      const handle = await storage.startBackup('many/0', name);
      await handle.writeFile('x', () => Readable.from([Buffer.from(name)]));
    });
    const listed = await storage.listBackups('many/0');
    expect(listed.length).toBe(1005);
    expect(listed.map((b) => b.name)).toEqual(names);
  });
});
