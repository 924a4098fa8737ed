import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FileBackupStorage } from '../../core/storage/file.ts';
import { syncFiles } from '../../core/stream/sync.ts';
import { physicalManifest } from '../support/manifests.ts';
import { tempDir } from '../support/root.ts';

/** Counts fsyncs (FileHandle.sync) made while `work` runs. */
async function countSyncs(work: () => Promise<void>): Promise<number> {
  const probe = await fs.open(process.execPath, 'r');
  const prototype = Object.getPrototypeOf(probe) as { sync: () => Promise<void> };
  await probe.close();
  const spy = vi.spyOn(prototype, 'sync');
  try {
    await work();
    return spy.mock.calls.length;
  } finally {
    spy.mockRestore();
  }
}

afterEach(() => vi.restoreAllMocks());

describe('syncFiles', () => {
  it('fsyncs every file and each directory holding them once', async () => {
    const root = await tempDir('sync');
    const files = ['a/1', 'a/2', 'b/3'].map((name) => path.join(root, name));
    for (const file of files) {
      await fs.mkdir(path.dirname(file), { recursive: true });
      await fs.writeFile(file, file);
    }
    expect(await countSyncs(() => syncFiles(files, { concurrency: 2 }))).toBe(3 + 2);
  });

  it('fails for a file that is not there', async () => {
    const root = await tempDir('sync-missing');
    await expect(syncFiles([path.join(root, 'gone')])).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('file storage durability', () => {
  it('makes every stored file durable before it writes the MANIFEST, and not before', async () => {
    const storage = new FileBackupStorage(await tempDir('sync-storage'));
    const handle = await storage.startBackup('ks/0', '2026-11-24.000000.host');
    const written = await countSyncs(async () => {
      for (const name of ['0000.a', '0001.b', '0002.c'])
        await handle.writeFile(name, () => Readable.from([Buffer.from(name)]));
    });
    expect(written).toBe(0);
    const manifest = physicalManifest({ name: '2026-11-24.000000.host', dir: 'ks/0' });
    // Three files and their directory, then the MANIFEST and its directory.
    expect(await countSyncs(() => handle.endBackup(manifest))).toBe(3 + 1 + 2);
  });
});

describe('file storage durability of an archived binlog', () => {
  it('makes the binlog durable before its BINLOG-MANIFEST is written, then the manifest itself', async () => {
    const storage = new FileBackupStorage(await tempDir('sync-binlog'));
    const handle = await storage.startBackup('binlogs/ks/0', '2026-12-01.140312.mysql-bin.000042');
    // What reaches the disk and what is renamed into place, in order.
    const timeline: string[] = [];
    const open = fs.open.bind(fs);
    vi.spyOn(fs, 'open').mockImplementation((async (file: string, flags?: unknown, mode?: unknown) => {
      if (flags === 'r') timeline.push(`sync ${path.basename(String(file))}`);
      return open(file, flags as string, mode as number);
    }) as typeof fs.open);
    const rename = fs.rename.bind(fs);
    vi.spyOn(fs, 'rename').mockImplementation(async (from, to) => {
      timeline.push(`rename ${path.basename(String(to))}`);
      return rename(from, to);
    });

    await handle.writeFile('binlog.zst', () => Readable.from([Buffer.from('binlog bytes')]));
    expect(timeline).toEqual(['rename binlog.zst']);
    await handle.writeFile('BINLOG-MANIFEST', () => Readable.from([Buffer.from('{}')]), { completes: true });
    const entry = '2026-12-01.140312.mysql-bin.000042';
    expect(timeline).toEqual([
      'rename binlog.zst',
      'sync binlog.zst',
      `sync ${entry}`,
      'rename BINLOG-MANIFEST',
      'sync BINLOG-MANIFEST',
      `sync ${entry}`,
    ]);
  });
});
