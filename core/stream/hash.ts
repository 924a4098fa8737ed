import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * A pass-through that hashes and counts the bytes flowing through it. Placed after the
 * compressor, it hashes exactly what is stored.
 */
export class HashingStream extends Transform {
  #hash: Hash = createHash('sha256');
  #bytes = 0;
  #digest: string | undefined;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#hash.update(chunk);
    this.#bytes += chunk.length;
    callback(null, chunk);
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** The hex SHA-256 of everything that passed; call once the stream has finished. */
  digest(): string {
    this.#digest ??= this.#hash.digest('hex');
    return this.#digest;
  }
}

/** Counts bytes without hashing (raw sizes before compression). */
export class CountingStream extends Transform {
  #bytes = 0;
  readonly #onBytes: ((delta: number) => void) | undefined;

  constructor(onBytes?: (delta: number) => void) {
    super();
    this.#onBytes = onBytes;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#bytes += chunk.length;
    this.#onBytes?.(chunk.length);
    callback(null, chunk);
  }

  get bytes(): number {
    return this.#bytes;
  }
}
