import { Transform, type TransformCallback } from 'node:stream';
import { StepbackError } from '../../../core/errors.ts';

/**
 * Reads the headers of an xbstream (mariabackup's `--stream=xbstream`) as it passes, unchanged,
 * and keeps the contents of the few small files named in `wanted` (the binlog and replica
 * positions the tool writes into the stream). Nothing else is held: payloads are only counted.
 *
 * Chunk layout (MariaDB extra/mariabackup/xbstream.h): magic `XBSTCK01`, flags (1 byte), type (1
 * byte: `P` payload, `E` end of file), path length (uint32 LE), path; a payload chunk then has its
 * length (uint64 LE), offset (uint64 LE), a CRC-32 (uint32 LE) and the payload.
 */

const MAGIC = Buffer.from('XBSTCK01', 'latin1');
const PREFIX = MAGIC.length + 1 + 1 + 4;
const PAYLOAD_HEADER = 8 + 8 + 4;
/** A path longer than this is not a file of a backup: the stream is not what it should be. */
const MAX_PATH = 4096;
/** The wanted files are a few lines each. */
const MAX_WANTED = 64 * 1024;

export class XbstreamWatcher extends Transform {
  readonly #wanted: ReadonlySet<string>;
  readonly #captured = new Map<string, Buffer[]>();
  #header = Buffer.alloc(0);
  /** Payload bytes still to pass before the next chunk header. */
  #payloadLeft = 0;
  #payloadPath: string | undefined;
  #files = 0;

  constructor(wanted: readonly string[]) {
    super();
    this.#wanted = new Set(wanted);
  }

  /** The contents of a wanted file the stream carried, or undefined. */
  file(name: string): string | undefined {
    const chunks = this.#captured.get(name);
    return chunks ? Buffer.concat(chunks).toString('utf8') : undefined;
  }

  /** Files the stream has ended so far. */
  get files(): number {
    return this.#files;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.#read(chunk);
    } catch (error) {
      callback(error as Error);
      return;
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.#header.length > 0 || this.#payloadLeft > 0) {
      callback(new StepbackError('the backup tool stream ended in the middle of a chunk'));
      return;
    }
    callback();
  }

  #read(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.#payloadLeft > 0) {
        const take = Math.min(this.#payloadLeft, chunk.length - at);
        if (this.#payloadPath !== undefined) this.#keep(this.#payloadPath, chunk.subarray(at, at + take));
        this.#payloadLeft -= take;
        at += take;
        continue;
      }
      // Header bytes are collected until one whole header is here (they may span chunks).
      const needed = this.#headerLength();
      const take = Math.min(needed - this.#header.length, chunk.length - at);
      this.#header = Buffer.concat([this.#header, chunk.subarray(at, at + take)]);
      at += take;
      if (this.#header.length === this.#headerLength()) this.#endHeader();
    }
  }

  /** How long the header being read is, as far as its bytes so far tell. */
  #headerLength(): number {
    const header = this.#header;
    if (header.length < PREFIX) return PREFIX;
    if (!header.subarray(0, MAGIC.length).equals(MAGIC)) {
      throw new StepbackError('the backup tool wrote something that is not an xbstream chunk', {
        hint: 'run the same mariabackup command by hand to see what it prints',
      });
    }
    const pathLength = header.readUInt32LE(MAGIC.length + 2);
    if (pathLength > MAX_PATH) throw new StepbackError(`xbstream chunk with a path of ${pathLength} bytes`);
    const type = String.fromCharCode(header[MAGIC.length + 1]!);
    return PREFIX + pathLength + (type === 'E' ? 0 : PAYLOAD_HEADER);
  }

  #endHeader(): void {
    const header = this.#header;
    this.#header = Buffer.alloc(0);
    const type = String.fromCharCode(header[MAGIC.length + 1]!);
    const pathLength = header.readUInt32LE(MAGIC.length + 2);
    const file = header.subarray(PREFIX, PREFIX + pathLength).toString('utf8');
    if (type === 'E') {
      this.#files++;
      return;
    }
    if (type !== 'P') throw new StepbackError(`xbstream chunk of unknown type ${JSON.stringify(type)}`);
    const length = Number(header.readBigUInt64LE(PREFIX + pathLength));
    this.#payloadLeft = length;
    this.#payloadPath = this.#wanted.has(file) ? file : undefined;
  }

  #keep(file: string, bytes: Buffer): void {
    const chunks = this.#captured.get(file) ?? [];
    const size = chunks.reduce((sum, c) => sum + c.length, 0);
    if (size + bytes.length > MAX_WANTED) throw new StepbackError(`${file} in the backup stream is too big`);
    // Copied: the chunk's buffer is handed on downstream.
    chunks.push(Buffer.from(bytes));
    this.#captured.set(file, chunks);
  }
}
