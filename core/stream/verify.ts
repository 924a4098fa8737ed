import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { HashMismatchError } from '../errors.ts';

/**
 * A pass-through that fails at the end of the stream when the bytes that passed do not have the
 * expected size and SHA-256. Place it directly after the storage read, before decompression, so a
 * corrupt file is named as corrupt rather than as a decompression error.
 */
export class VerifyingStream extends Transform {
  readonly #file: string;
  readonly #sha256: string;
  readonly #size: number;
  readonly #hash: Hash = createHash('sha256');
  #bytes = 0;

  constructor(expected: { name: string; sha256: string; storedSize: number }) {
    super();
    this.#file = expected.name;
    this.#sha256 = expected.sha256;
    this.#size = expected.storedSize;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#hash.update(chunk);
    this.#bytes += chunk.length;
    if (this.#bytes > this.#size) {
      callback(new HashMismatchError(this.#file, `${this.#size} bytes`, `more than ${this.#size} bytes`));
      return;
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.#bytes !== this.#size) {
      callback(new HashMismatchError(this.#file, `${this.#size} bytes`, `${this.#bytes} bytes`));
      return;
    }
    const actual = this.#hash.digest('hex');
    callback(
      actual === this.#sha256
        ? null
        : new HashMismatchError(this.#file, `sha256 ${this.#sha256}`, `sha256 ${actual}`),
    );
  }
}
