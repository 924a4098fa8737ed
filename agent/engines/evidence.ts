import type { Logger } from '../../core/log.ts';
import { type BackupEvidence, EVIDENCE_METHOD } from '../../core/manifest.ts';
import { mapConcurrent } from '../../core/stream/concurrency.ts';
import { readTableDefinitions } from '../diff/schema.ts';
import { checksumTables } from '../diff/table-checksum.ts';
import { userDatabasesWithTables } from '../instance/databases.ts';
import type { MysqlDaemon } from '../mysqld/daemon.ts';
import type { Progress } from '../report/reporter.ts';

export interface EvidenceOptions {
  logger: Logger;
  progress?: ((update: Progress) => void) | undefined;
  signal?: AbortSignal | undefined;
  /** Tables checksummed at once, each on its own connection (default 1). */
  concurrency?: number | undefined;
  /** A table that cannot be read is passed here and left out (a drill), instead of failing. */
  onUnreadable?: ((database: string, table: string, error: unknown) => void) | undefined;
}

/**
 * The rows and checksum of every table of every user database of a running instance: what a
 * physical backup records while its data is at the backup's position, and what a drill recomputes
 * on the restored copy.
 */
export async function instanceEvidence(
  daemon: MysqlDaemon,
  options: EvidenceOptions,
): Promise<BackupEvidence> {
  const started = performance.now();
  // Each table is one server thread's work: with writes stopped, two cores finish in half the time.
  const listed = await daemon.withConnection(async (connection) => {
    const all: { database: string; table: string }[] = [];
    for (const database of await userDatabasesWithTables(connection)) {
      for (const table of (await readTableDefinitions(connection, database)).keys())
        all.push({ database, table });
    }
    return all;
  });
  let done = 0;
  const checked = await mapConcurrent(
    listed,
    options.concurrency ?? 1,
    ({ database, table }, _index, signal) =>
      daemon.withConnection(async (connection) => {
        const found = await checksumTables(connection, database, {
          tables: [table],
          signal,
          onUnreadable:
            options.onUnreadable && ((name, error) => options.onUnreadable!(database, name, error)),
        });
        options.progress?.({ phase: 'checksumming tables', itemsDone: ++done, itemsTotal: listed.length });
        return found;
      }),
    { ...(options.signal ? { signal: options.signal } : {}), logger: options.logger },
  );
  const tables = checked.flat();
  const seconds = Math.round(performance.now() - started) / 1000;
  options.logger.info(`checksummed ${tables.length} tables in ${seconds}s`);
  return { method: EVIDENCE_METHOD, seconds, tables };
}
