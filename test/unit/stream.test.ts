import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { Compression } from '../../core/manifest.ts';
import { ChunkWriter } from '../../core/stream/chunk.ts';
import { createCompressor, createDecompressor } from '../../core/stream/compress.ts';
import { mapConcurrent, Semaphore } from '../../core/stream/concurrency.ts';
import { HashingStream } from '../../core/stream/hash.ts';

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('compression', () => {
  it.each<Compression>(['zstd', 'gzip', 'none'])(
    '%s round-trips binary data byte for byte',
    async (compression) => {
      const data = Buffer.concat([randomBytes(300_000), Buffer.alloc(300_000, 7)]);
      const compressed = await collect(Readable.from([data]).pipe(createCompressor(compression)));
      if (compression !== 'none') expect(compressed.length).toBeLessThan(data.length);
      const restored = await collect(Readable.from([compressed]).pipe(createDecompressor(compression)));
      expect(restored.equals(data)).toBe(true);
    },
  );

  it('fails on corrupt zstd input instead of returning garbage', async () => {
    const compressed = await collect(
      Readable.from([Buffer.alloc(100_000, 1)]).pipe(createCompressor('zstd')),
    );
    compressed[Math.floor(compressed.length / 2)]! ^= 0xff;
    await expect(collect(Readable.from([compressed]).pipe(createDecompressor('zstd')))).rejects.toThrow();
  });
});

describe('HashingStream', () => {
  it('hashes and counts exactly the bytes that pass through', async () => {
    const data = randomBytes(1_000_000);
    const hasher = new HashingStream();
    await pipeline(
      Readable.from([data.subarray(0, 10), data.subarray(10)]),
      hasher,
      new PassThrough().resume(),
    );
    expect(hasher.bytes).toBe(data.length);
    expect(hasher.digest()).toBe(createHash('sha256').update(data).digest('hex'));
  });
});

describe('ChunkWriter', () => {
  function memoryChunks(maxBytes: number) {
    const chunks: Buffer[][] = [];
    const writer = new ChunkWriter<number>({
      maxBytes,
      open: (index) => {
        const parts: Buffer[] = [];
        chunks[index] = parts;
        const stream = new PassThrough();
        stream.on('data', (part: Buffer) => parts.push(part));
        const done = new Promise<number>((resolve) => stream.on('end', () => resolve(index)));
        return { stream, done };
      },
    });
    return { writer, chunks };
  }

  it('starts a new file before a write would pass the maximum, never splitting a write', async () => {
    const { writer, chunks } = memoryChunks(10);
    const records = ['aaaa\n', 'bbbb\n', 'cccc\n', 'dddddddddddddd\n', 'e\n'].map((s) => Buffer.from(s));
    await pipeline(Readable.from(records), writer);
    const files = chunks.map((parts) => Buffer.concat(parts).toString());
    expect(files).toEqual(['aaaa\nbbbb\n', 'cccc\n', 'dddddddddddddd\n', 'e\n']);
    expect(writer.results).toEqual([0, 1, 2, 3]);
  });

  it('makes no file from no input', async () => {
    const { writer, chunks } = memoryChunks(10);
    await pipeline(Readable.from([]), writer);
    expect(chunks).toEqual([]);
    expect(writer.results).toEqual([]);
  });

  it('passes a failing sink to the writer instead of hanging', async () => {
    const writer = new ChunkWriter<void>({
      maxBytes: 1 << 20,
      open: () => {
        const stream = new Writable({
          highWaterMark: 1,
          write(_chunk, _encoding, callback) {
            callback(new Error('disk full'));
          },
        });
        return { stream, done: new Promise((_, reject) => stream.on('error', reject)) };
      },
    });
    await expect(pipeline(Readable.from([Buffer.alloc(10), Buffer.alloc(10)]), writer)).rejects.toThrow(
      'disk full',
    );
  });
});

describe('mapConcurrent', () => {
  it('never runs more than the limit at once and keeps result order', async () => {
    let running = 0;
    let peak = 0;
    const results = await mapConcurrent([5, 1, 4, 2, 3, 1, 2], 3, async (ms) => {
      running++;
      peak = Math.max(peak, running);
      await sleep(ms * 3);
      running--;
      return ms * 10;
    });
    expect(peak).toBe(3);
    expect(results).toEqual([50, 10, 40, 20, 30, 10, 20]);
  });

  it('on the first failure cancels running work, starts nothing new and throws that failure', async () => {
    const started: number[] = [];
    const cancelled: number[] = [];
    const failure = new Error('file 1 is corrupt');
    const run = mapConcurrent([0, 1, 2, 3, 4, 5], 2, async (item, _index, signal) => {
      started.push(item);
      if (item === 1) {
        await sleep(5);
        throw failure;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        signal.addEventListener('abort', () => {
          clearTimeout(timer);
          cancelled.push(item);
          resolve();
        });
      });
    });
    await expect(run).rejects.toBe(failure);
    expect(started).toEqual([0, 1]);
    expect(cancelled).toEqual([0]);
  });
});

describe('Semaphore', () => {
  it('grants permits in order and gives them back', async () => {
    const semaphore = new Semaphore(1);
    const order: string[] = [];
    await Promise.all(
      ['a', 'b', 'c'].map((name) =>
        semaphore.use(async () => {
          order.push(`${name}+`);
          await sleep(2);
          order.push(`${name}-`);
        }),
      ),
    );
    expect(order).toEqual(['a+', 'a-', 'b+', 'b-', 'c+', 'c-']);
  });

  it('stops waiting when its signal aborts', async () => {
    const semaphore = new Semaphore(1);
    const release = await semaphore.acquire();
    const controller = new AbortController();
    const waiting = semaphore.acquire(controller.signal);
    controller.abort(new Error('cancelled'));
    await expect(waiting).rejects.toThrow('cancelled');
    release();
    const again = await semaphore.acquire();
    again();
  });
});
