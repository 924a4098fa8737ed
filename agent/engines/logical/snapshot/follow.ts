import fs from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

/** How long to wait when the reader has caught up with the server before looking again. */
const IDLE_MS = 5;

/**
 * Reads a file while the server is still writing it (SELECT … INTO OUTFILE), so the rows are split,
 * compressed and stored while the table is being read instead of after. Yields what has been written
 * so far, waits when it catches up, and ends at end of file once `finished` has resolved; rethrows
 * when `finished` rejects. Each chunk is a buffer of its own (consumers may keep slices of it).
 */
export async function* followGrowingFile(
  file: string,
  finished: Promise<unknown>,
  options: { chunkBytes: number; signal: AbortSignal },
): AsyncGenerator<Buffer> {
  let settled = false;
  let failure: { error: unknown } | undefined;
  finished.then(
    () => {
      settled = true;
    },
    (error: unknown) => {
      settled = true;
      failure = { error };
    },
  );
  let handle: fs.FileHandle | undefined;
  while (!handle) {
    options.signal.throwIfAborted();
    const done = settled;
    try {
      handle = await fs.open(file, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      if (failure) throw failure.error;
      if (done) throw new Error(`the server finished without writing ${file}`);
      await sleep(IDLE_MS);
    }
  }
  try {
    let position = 0;
    let buffer = Buffer.allocUnsafe(options.chunkBytes);
    for (;;) {
      options.signal.throwIfAborted();
      // Whether the writer had finished is read before the read: a short read after that is the end.
      const done = settled;
      if (failure) throw failure.error;
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
      if (bytesRead > 0) {
        position += bytesRead;
        if (bytesRead < buffer.length / 2) {
          // A short read (caught up with the server): copy it, keep the big buffer for the next one.
          yield Buffer.from(buffer.subarray(0, bytesRead));
        } else {
          yield buffer.subarray(0, bytesRead);
          buffer = Buffer.allocUnsafe(options.chunkBytes);
        }
        continue;
      }
      if (done) return;
      await sleep(IDLE_MS);
    }
  } finally {
    await handle.close();
  }
}
