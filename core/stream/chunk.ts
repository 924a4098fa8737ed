import { Writable } from 'node:stream';
import { waitForDrain } from './drain.ts';

/** One output file of a ChunkWriter: where its bytes go and what it yields once closed. */
export interface ChunkSink<T> {
  stream: Writable;
  /** Settles after `stream` has been ended and everything behind it (compress, hash, upload) is done. */
  done: Promise<T>;
}

export interface ChunkWriterOptions<T> {
  /** A new chunk starts before a write that would take the current one past this many bytes. */
  maxBytes: number;
  /** Opens chunk number `index` (0, 1, …) when its first bytes arrive. */
  open: (index: number) => ChunkSink<T>;
}

/**
 * A writable that spreads its input over several files of at most `maxBytes` each. Every write must
 * hold whole records (the writer never splits one), so each chunk can be loaded on its own; a single
 * write larger than `maxBytes` becomes a chunk of its own. Nothing is buffered here: backpressure of
 * the current sink reaches the writer.
 */
export class ChunkWriter<T> extends Writable {
  readonly #maxBytes: number;
  readonly #open: (index: number) => ChunkSink<T>;
  readonly #results: T[] = [];
  #current: ChunkSink<T> | undefined;
  #currentBytes = 0;
  #index = 0;

  constructor(options: ChunkWriterOptions<T>) {
    super();
    if (!(options.maxBytes > 0)) throw new RangeError(`maxBytes must be positive, got ${options.maxBytes}`);
    this.#maxBytes = options.maxBytes;
    this.#open = options.open;
  }

  /** What each chunk's sink yielded, in chunk order; complete after 'finish'. */
  get results(): readonly T[] {
    return this.#results;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#write(chunk).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#close().then(() => callback(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#current?.stream.destroy(error ?? undefined);
    this.#current?.done.catch(() => {});
    callback(error);
  }

  async #write(chunk: Buffer): Promise<void> {
    if (this.#current && this.#currentBytes > 0 && this.#currentBytes + chunk.length > this.#maxBytes) {
      await this.#close();
    }
    if (!this.#current) {
      this.#current = this.#open(this.#index++);
      this.#current.done.catch(() => {});
      this.#currentBytes = 0;
    }
    this.#currentBytes += chunk.length;
    const { stream } = this.#current;
    if (!stream.write(chunk)) await waitForDrain(stream);
  }

  async #close(): Promise<void> {
    const current = this.#current;
    if (!current) return;
    this.#current = undefined;
    current.stream.end();
    this.#results.push(await current.done);
  }
}
