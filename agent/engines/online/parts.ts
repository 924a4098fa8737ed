import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { Writable as WritableStream } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { messageOf, VerificationError } from '../../../core/errors.ts';
import type { Compression, OnlinePart } from '../../../core/manifest.ts';
import type { BackupHandle } from '../../../core/storage/types.ts';
import { compressionSuffix, createCompressor, createDecompressor } from '../../../core/stream/compress.ts';
import { waitForDrain } from '../../../core/stream/drain.ts';
import { VerifyingStream } from '../../../core/stream/verify.ts';

const BLOCK = 1024 * 1024;

/** `stream.0003.zst`: part numbers sort in stream order. */
export function partName(part: number, compression: Compression): string {
  return `stream.${String(part).padStart(4, '0')}${compressionSuffix[compression]}`;
}

interface OpenPart {
  index: number;
  raw: number;
  compressor: Writable & Readable;
  stored: Promise<OnlinePart>;
}

export interface PartWriterOptions {
  compression: Compression;
  level: number;
  /** Raw bytes per part. */
  partSize: number;
  /** Parts whose upload may still be finishing while the next one fills. */
  concurrency: number;
  signal: AbortSignal;
  onBytes: (delta: number) => void;
}

/**
 * A sink that cuts the stream written to it into parts of `partSize` raw bytes, compresses each on
 * its own and streams it into storage (which hashes what it stores). Memory stays bounded: a part
 * is never held, only passed on with backpressure. `parts` is complete once the sink has finished.
 */
export class PartWriter extends WritableStream {
  readonly #handle: BackupHandle;
  readonly #options: PartWriterOptions;
  readonly #finishing = new Set<Promise<OnlinePart>>();
  readonly #parts: OnlinePart[] = [];
  #current: OpenPart | undefined;
  #next = 0;
  #pending: Buffer[] = [];
  #pendingBytes = 0;

  constructor(handle: BackupHandle, options: PartWriterOptions) {
    super({ highWaterMark: 1024 * 1024 });
    this.#handle = handle;
    this.#options = options;
  }

  get parts(): OnlinePart[] {
    return [...this.#parts].sort((a, b) => a.part - b.part);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    // A pipe hands over 64 KiB at a time: compressing 1 MiB blocks costs far fewer thread-pool
    // round trips per byte (measured: a third less time for the copy).
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    if (this.#pendingBytes < BLOCK) {
      callback();
      return;
    }
    this.#writePending().then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#writePending()
      .then(() => this.#closeCurrent())
      .then(() => Promise.all(this.#finishing))
      .then(() => callback(), callback);
  }

  async #writePending(): Promise<void> {
    if (this.#pendingBytes === 0) return;
    const block = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending);
    this.#pending = [];
    this.#pendingBytes = 0;
    await this.#write(block);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#current?.compressor.destroy(error ?? undefined);
    callback(error);
  }

  async #write(chunk: Buffer): Promise<void> {
    let at = 0;
    while (at < chunk.length) {
      const part = this.#current ?? (await this.#open());
      const take = Math.min(this.#options.partSize - part.raw, chunk.length - at);
      part.raw += take;
      this.#options.onBytes(take);
      const more = part.compressor.write(chunk.subarray(at, at + take));
      at += take;
      // A failed upload rejects `stored`; waiting on it too keeps a dead part from hanging the stream.
      if (!more) await Promise.race([waitForDrain(part.compressor), part.stored]);
      if (part.raw === this.#options.partSize) await this.#closeCurrent();
    }
  }

  async #open(): Promise<OpenPart> {
    // Bounded: a part still uploading holds at most the storage's own buffers.
    while (this.#finishing.size >= this.#options.concurrency) await Promise.race(this.#finishing);
    const index = this.#next++;
    const name = partName(index, this.#options.compression);
    const compressor = createCompressor(this.#options.compression, this.#options.level, {
      chunkSize: 1024 * 1024,
    });
    const part: OpenPart = {
      index,
      raw: 0,
      compressor,
      stored: this.#handle
        .writeFile(name, () => compressor, {
          sizeHint: this.#options.partSize,
          replayable: false,
          signal: this.#options.signal,
        })
        .then((stored) => ({
          name,
          part: index,
          rawSize: part.raw,
          storedSize: stored.size,
          sha256: stored.sha256,
        })),
    };
    // Handled where it is awaited; this keeps an early failure from being reported as unhandled.
    part.stored.catch(() => {});
    this.#current = part;
    return part;
  }

  async #closeCurrent(): Promise<void> {
    const part = this.#current;
    if (!part) return;
    this.#current = undefined;
    part.compressor.end();
    const finishing = part.stored.then((stored) => {
      this.#parts.push(stored);
      return stored;
    });
    this.#finishing.add(finishing);
    finishing.then(
      () => this.#finishing.delete(finishing),
      () => {},
    );
    // Not awaited here: the next part fills while this one finishes; a failure surfaces at the
    // next part or at the end.
  }
}

export interface ReadPartsOptions {
  signal: AbortSignal;
  /** Where verified parts wait for their turn (removed part by part). */
  spoolDir: string;
  /** Parts downloading at once, ahead of the one being extracted. */
  concurrency: number;
  onBytes: (delta: number) => void;
  onPartDone: () => void;
}

/**
 * Writes every part, in order, into `output` (not ended) with backpressure. Each part is first
 * downloaded into `spoolDir` and verified (size and SHA-256 of the stored bytes), `concurrency`
 * ahead, so a corrupt part is refused as such (HashMismatchError naming it, exit 5) before any of
 * its bytes reach the extractor; then it is decompressed from there and deleted.
 */
export async function readParts(
  handle: BackupHandle,
  parts: readonly OnlinePart[],
  compression: Compression,
  output: Writable,
  options: ReadPartsOptions,
): Promise<void> {
  const controller = new AbortController();
  const signal = AbortSignal.any([options.signal, controller.signal]);
  const spooled = (part: OnlinePart) => path.join(options.spoolDir, part.name);
  const downloads: Promise<void>[] = [];
  const download = async (part: OnlinePart) => {
    const source = await handle.readFile(part.name, { signal });
    await pipeline(source, new VerifyingStream(part), createWriteStream(spooled(part), { mode: 0o600 }), {
      signal,
    });
  };
  const startDownload = (index: number) => {
    const part = parts[index];
    if (!part) return;
    const started = download(part);
    started.catch(() => {});
    downloads[index] = started;
  };
  await fs.mkdir(options.spoolDir, { recursive: true, mode: 0o700 });
  try {
    for (let index = 0; index < Math.min(options.concurrency, parts.length); index++) startDownload(index);
    for (const [index, part] of parts.entries()) {
      await downloads[index];
      await extractPart(part, spooled(part), compression, output, options);
      await fs.rm(spooled(part), { force: true });
      startDownload(index + options.concurrency);
      options.onPartDone();
    }
  } catch (error) {
    controller.abort(error);
    await Promise.allSettled(downloads);
    throw error;
  }
}

/** Decompresses one verified part into `output`; a part that does not decompress is named as corrupt. */
async function extractPart(
  part: OnlinePart,
  file: string,
  compression: Compression,
  output: Writable,
  options: ReadPartsOptions,
): Promise<void> {
  const decompressor = createDecompressor(compression, { chunkSize: 1024 * 1024 });
  const input = createReadStream(file, { highWaterMark: 1024 * 1024 });
  input.on('error', (error) => decompressor.destroy(error));
  input.pipe(decompressor);
  let raw = 0;
  try {
    for await (const chunk of decompressor as AsyncIterable<Buffer>) {
      raw += chunk.length;
      options.onBytes(chunk.length);
      if (!output.write(chunk)) await waitForDrain(output);
    }
  } catch (error) {
    if (options.signal.aborted || output.errored || output.destroyed || input.errored) throw error;
    throw new VerificationError(
      `part ${part.name} is corrupt: it does not decompress (${messageOf(error)})`,
      {
        cause: error,
      },
    );
  } finally {
    input.destroy();
  }
  if (raw !== part.rawSize) {
    throw new VerificationError(
      `part ${part.name} decompressed to ${raw} bytes, the manifest says ${part.rawSize}`,
    );
  }
}
