import type { Readable, Writable } from 'node:stream';
import { PassThrough, Transform, type TransformCallback, Writable as WritableStream } from 'node:stream';
import { finished } from 'node:stream/promises';
import { HashMismatchError, messageOf, VerificationError } from '../../../core/errors.ts';
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
  /** Parts whose download has started, the one being extracted included. */
  concurrency: number;
  onBytes: (delta: number) => void;
  onPartDone: () => void;
}

/** What a part downloading ahead of the one being extracted may hold in memory (twice this at most). */
const AHEAD_BYTES = 8 * 1024 * 1024;

/**
 * Writes every part, in order, into `output` (not ended) with backpressure: each part streams from
 * storage through its size and SHA-256 check and the decompressor straight into `output`, while the
 * next parts download ahead into bounded buffers (`concurrency` parts open, each holding at most
 * twice AHEAD_BYTES). The check ends with the part, so bytes of a corrupt part may already have
 * reached `output`: the caller extracts into a staging area it removes when this fails. A corrupt
 * part is always refused as such (HashMismatchError naming it, exit 5), even when the decompressor
 * or the extractor fails on its bytes first.
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
  const opened: (Promise<Readable> | undefined)[] = [];
  const open = (index: number) => {
    const part = parts[index];
    if (!part || opened[index]) return;
    const ahead = handle.readFile(part.name, { signal }).then((source) => {
      const buffer = new PassThrough({ highWaterMark: AHEAD_BYTES });
      source.on('error', (error) => buffer.destroy(error));
      buffer.on('close', () => source.destroy());
      source.pipe(buffer);
      return buffer;
    });
    ahead.catch(() => {});
    opened[index] = ahead;
  };
  try {
    for (const [index, part] of parts.entries()) {
      for (let next = index; next < index + Math.max(1, options.concurrency); next++) open(next);
      const source = await opened[index]!;
      opened[index] = undefined;
      await extractPart(part, source, compression, output, options);
      options.onPartDone();
    }
  } catch (error) {
    controller.abort(error);
    await Promise.allSettled(opened.map((ahead) => ahead?.then((stream) => stream.destroy())));
    throw error;
  }
}

/**
 * Verifies and decompresses one part from `source` into `output`. A part that fails its check is
 * named as corrupt; when the decompressor or `output` fails first, the rest of the part is still
 * read through the check, so a corrupt part is reported as such rather than as what its bytes broke.
 */
async function extractPart(
  part: OnlinePart,
  source: Readable,
  compression: Compression,
  output: Writable,
  options: ReadPartsOptions,
): Promise<void> {
  const verifier = new VerifyingStream(part);
  const blocks = new Blocks();
  const decompressor = createDecompressor(compression, { chunkSize: 1024 * 1024 });
  source.on('error', (error) => verifier.destroy(error));
  verifier.on('error', (error) => blocks.destroy(error));
  blocks.on('error', (error) => decompressor.destroy(error));
  source.pipe(verifier).pipe(blocks).pipe(decompressor);
  let raw = 0;
  try {
    for await (const chunk of decompressor as AsyncIterable<Buffer>) {
      raw += chunk.length;
      options.onBytes(chunk.length);
      if (!output.write(chunk)) await waitForDrain(output);
    }
  } catch (error) {
    if (error instanceof HashMismatchError || options.signal.aborted) throw error;
    const corrupt = await checkRest(verifier);
    if (corrupt) throw corrupt;
    if (source.errored || output.errored || output.destroyed) throw error;
    throw new VerificationError(
      `part ${part.name} is corrupt: it does not decompress (${messageOf(error)})`,
      {
        cause: error,
      },
    );
  } finally {
    source.destroy();
  }
  if (raw !== part.rawSize) {
    throw new VerificationError(
      `part ${part.name} decompressed to ${raw} bytes, the manifest says ${part.rawSize}`,
    );
  }
}

/**
 * Gathers the 64 KiB reads of storage into blocks of BLOCK bytes: the decompressor makes one
 * thread-pool round trip per write, and fewer, bigger ones cost less (as when compressing).
 */
class Blocks extends Transform {
  #pending: Buffer[] = [];
  #bytes = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#pending.push(chunk);
    this.#bytes += chunk.length;
    if (this.#bytes >= BLOCK) this.#pushPending();
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (this.#bytes > 0) this.#pushPending();
    callback();
  }

  #pushPending(): void {
    this.push(this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending));
    this.#pending = [];
    this.#bytes = 0;
  }
}

/** Reads what is left of a part through its check (discarding it); the HashMismatchError, if any. */
async function checkRest(verifier: VerifyingStream): Promise<HashMismatchError | undefined> {
  if (verifier.errored) return verifier.errored instanceof HashMismatchError ? verifier.errored : undefined;
  verifier.unpipe();
  verifier.resume();
  try {
    await finished(verifier);
    return undefined;
  } catch (error) {
    return error instanceof HashMismatchError ? error : undefined;
  }
}
