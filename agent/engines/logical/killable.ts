import type { Connection } from '../../mysql/connection.ts';

/**
 * Runs a long statement (an OUTFILE, a LOAD DATA) on `connection` so that an abort stops it on the
 * server: a second connection sends KILL QUERY, instead of leaving the server to finish work nobody
 * waits for. Rethrows the abort reason when the statement failed because of the abort.
 */
export async function killableQuery<T>(
  connection: Connection,
  connect: () => Promise<Connection>,
  signal: AbortSignal,
  run: () => Promise<T>,
): Promise<T> {
  signal.throwIfAborted();
  const onAbort = () => {
    connect()
      .then(async (killer) => {
        try {
          await killer.query(`KILL QUERY ${Number(connection.threadId)}`);
        } finally {
          await killer.end().catch(() => killer.destroy());
        }
      })
      .catch(() => connection.destroy());
  };
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    return await run();
  } catch (error) {
    signal.throwIfAborted();
    throw error;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
