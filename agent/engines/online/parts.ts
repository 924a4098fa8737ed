import type { Readable, Writable } from 'node:stream';
import { Writable as WritableStream } from 'node:stream';
import { HashMismatchError, messageOf, VerificationError } from '../../../core/errors.ts';
import type { Compression, OnlinePart } from '../../../core/manifest.ts';
import type { BackupHandle } from '../../../core/storage/types.ts';
import { compressionSuffix, createCompressor, createDecompressor } from '../../../core/stream/compress.ts';
import { waitForDrain } from '../../../core/stream/drain.ts';
import { VerifyingStream } from '../../../core/stream/verify.ts';

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

  constructor(handle: BackupHandle, options: PartWriterOptions) {
    super({ highWaterMark: 1024 * 1024 });
    this.#handle = handle;
    this.#options = options;
  }

  get parts(): OnlinePart[] {
    return [...this.#parts].sort((a, b) => a.part - b.part);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#write(chunk).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#closeCurrent()
      .then(() => Promise.all(this.#finishing))
      .then(() => callback(), callback);
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

/**
 * Writes every part, in order, verified (size and SHA-256 of the stored bytes) and decompressed,
 * into `output` with backpressure; `output` is not ended. A part that fails its hash or does not
 * decompress is a VerificationError naming it (exit 5).
 */
export async function readParts(
  handle: BackupHandle,
  parts: readonly OnlinePart[],
  compression: Compression,
  output: Writable,
  options: { signal: AbortSignal; onBytes: (delta: number) => void; onPartDone: () => void },
): Promise<void> {
  for (const part of parts) {
    options.signal.throwIfAborted();
    const source = await handle.readFile(part.name, { signal: options.signal });
    const verified = source.pipe(new VerifyingStream(part));
    source.on('error', (error) => verified.destroy(error));
    const decompressor = createDecompressor(compression, { chunkSize: 1024 * 1024 });
    verified.on('error', (error) => decompressor.destroy(error));
    verified.pipe(decompressor);
    let raw = 0;
    try {
      for await (const chunk of decompressor as AsyncIterable<Buffer>) {
        raw += chunk.length;
        options.onBytes(chunk.length);
        if (!output.write(chunk)) await waitForDrain(output);
      }
    } catch (error) {
      if (error instanceof HashMismatchError || options.signal.aborted) throw error;
      if (verified.errored) throw verified.errored;
      if (output.errored || output.destroyed) throw error;
      throw new VerificationError(
        `part ${part.name} is corrupt: it does not decompress (${messageOf(error)})`,
        {
          cause: error,
        },
      );
    }
    if (raw !== part.rawSize) {
      throw new VerificationError(
        `part ${part.name} decompressed to ${raw} bytes, the manifest says ${part.rawSize}`,
      );
    }
    options.onPartDone();
  }
}
