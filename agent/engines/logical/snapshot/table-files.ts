import type { Transform } from 'node:stream';
import type { Compression, TableDataFile } from '../../../../core/manifest.ts';
import type { BackupHandle, StoredFile } from '../../../../core/storage/types.ts';
import { compressionSuffix, createCompressor } from '../../../../core/stream/compress.ts';
import { waitForDrain } from '../../../../core/stream/drain.ts';
import { dataFileName } from '../format.ts';

/**
 * zstd level 1: on row text it ran 3–4× faster than level 3 here for a size within a few percent
 * (smaller on sysbench rows), and compression is most of a snapshot's CPU.
 */
const compressionLevel: Record<Compression, number> = { zstd: 1, gzip: 1, none: 0 };

export interface TableFilesOptions {
  handle: BackupHandle;
  table: string;
  tableIndex: number;
  compression: Compression;
  /** A new file starts before a batch that would take the current one past this many raw bytes. */
  maxFileBytes: number;
  signal?: AbortSignal | undefined;
}

interface OpenFile {
  part: number;
  compressor: Transform;
  stored: Promise<StoredFile>;
  rawBytes: number;
  rows: number;
}

/**
 * The data files of one table in one backup: whole-row batches in, files of at most `maxFileBytes`
 * raw bytes out, each compressed and hashed on its way to storage. Backpressure of the upload reaches
 * the writer; nothing is buffered here.
 */
export class TableFiles {
  readonly #options: TableFilesOptions;
  readonly #files: TableDataFile[] = [];
  #current: OpenFile | undefined;
  #part = 0;
  #rows = 0;

  constructor(options: TableFilesOptions) {
    if (!(options.maxFileBytes > 0))
      throw new RangeError(`maxFileBytes must be positive, got ${options.maxFileBytes}`);
    this.#options = options;
  }

  /** Rows written so far. */
  get rows(): number {
    return this.#rows;
  }

  async write(data: Buffer, rows: number): Promise<void> {
    let current = this.#current;
    if (current && current.rawBytes > 0 && current.rawBytes + data.length > this.#options.maxFileBytes) {
      await this.#close();
      current = undefined;
    }
    current ??= this.#open();
    current.rawBytes += data.length;
    current.rows += rows;
    this.#rows += rows;
    const { compressor } = current;
    // A failed upload destroys the compressor: report it instead of waiting for a drain that never comes.
    if (compressor.destroyed)
      throw compressor.errored ?? new Error(`the upload of part ${current.part} stopped`);
    if (!compressor.write(data)) await waitForDrain(compressor);
  }

  /** Closes the last file and returns every file written, in part order. */
  async finish(): Promise<TableDataFile[]> {
    await this.#close();
    return this.#files;
  }

  /** Stops the file being written (its partial upload is discarded by storage). */
  async abort(error: Error): Promise<void> {
    const current = this.#current;
    this.#current = undefined;
    if (!current) return;
    current.compressor.destroy(error);
    await current.stored.catch(() => {});
  }

  #open(): OpenFile {
    const { handle, tableIndex, compression, signal } = this.#options;
    const part = this.#part++;
    const compressor = createCompressor(compression, compressionLevel[compression]);
    const name = dataFileName(tableIndex, part, compressionSuffix[compression]);
    const stored = handle.writeFile(name, () => compressor, {
      replayable: false,
      sizeHint: this.#options.maxFileBytes,
      ...(signal ? { signal } : {}),
    });
    // A failed upload must also fail the writer waiting for the compressor to drain.
    stored.catch((error: unknown) => compressor.destroy(error as Error));
    this.#current = { part, compressor, stored, rawBytes: 0, rows: 0 };
    return this.#current;
  }

  async #close(): Promise<void> {
    const current = this.#current;
    if (!current) return;
    this.#current = undefined;
    current.compressor.end();
    const stored = await current.stored;
    this.#files.push({
      name: stored.name,
      table: this.#options.table,
      part: current.part,
      rows: current.rows,
      rawSize: current.rawBytes,
      storedSize: stored.size,
      sha256: stored.sha256,
    });
  }
}
