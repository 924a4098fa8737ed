import type { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { TableFiles } from '../../agent/engines/logical/snapshot/table-files.ts';
import { FileBackupStorage } from '../../core/storage/file.ts';
import { createDecompressor } from '../../core/stream/compress.ts';
import { tempDir } from '../support/root.ts';

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('TableFiles', () => {
  it('starts a new file before a batch that would pass the limit, and counts rows and bytes per file', async () => {
    const storage = new FileBackupStorage(await tempDir('table-files'));
    const handle = await storage.startBackup('ks/0', 'b1');
    const files = new TableFiles({
      handle,
      table: 'orders',
      tableIndex: 3,
      compression: 'zstd',
      maxFileBytes: 100,
    });
    const batches = [
      Buffer.from('a'.repeat(60)),
      Buffer.from('b'.repeat(30)),
      Buffer.from('c'.repeat(20)),
      Buffer.from('d'.repeat(150)),
    ];
    for (const [i, batch] of batches.entries()) await files.write(batch, i + 1);
    const written = await files.finish();
    expect(written.map(({ name, part, rows, rawSize }) => ({ name, part, rows, rawSize }))).toEqual([
      { name: '0003.0000.csv.zst', part: 0, rows: 3, rawSize: 90 },
      { name: '0003.0001.csv.zst', part: 1, rows: 3, rawSize: 20 },
      { name: '0003.0002.csv.zst', part: 2, rows: 4, rawSize: 150 },
    ]);
    const contents = await Promise.all(
      written.map(async (file) =>
        readAll((await handle.readFile(file.name)).pipe(createDecompressor('zstd'))),
      ),
    );
    expect(Buffer.concat(contents).equals(Buffer.concat(batches))).toBe(true);
    expect(files.rows).toBe(10);
  });

  it('fails the next write instead of hanging once its upload has stopped', async () => {
    const storage = new FileBackupStorage(await tempDir('table-files'));
    const handle = await storage.startBackup('ks/0', 'b2');
    const controller = new AbortController();
    const files = new TableFiles({
      handle,
      table: 't',
      tableIndex: 0,
      compression: 'none',
      maxFileBytes: 1 << 30,
      signal: controller.signal,
    });
    await files.write(Buffer.alloc(1024, 1), 1);
    controller.abort(new Error('interrupted'));
    await new Promise((resolve) => setImmediate(resolve));
    let failure: unknown;
    for (let i = 0; i < 1000 && failure === undefined; i++) {
      await files.write(Buffer.alloc(64 * 1024, 2), 1).catch((error: unknown) => {
        failure = error;
      });
    }
    expect(failure).toBeInstanceOf(Error);
    await expect(files.finish()).rejects.toThrow();
    expect(await handle.listFiles()).toEqual([]);
  });
});
