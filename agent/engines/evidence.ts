import type { Logger } from '../../core/log.ts';
import { type BackupEvidence, EVIDENCE_METHOD } from '../../core/manifest.ts';
import { checksumTables } from '../diff/table-checksum.ts';
import { userDatabasesWithTables } from '../instance/databases.ts';
import type { MysqlDaemon } from '../mysqld/daemon.ts';
import type { Progress } from '../report/reporter.ts';

export interface EvidenceOptions {
  logger: Logger;
  progress?: ((update: Progress) => void) | undefined;
  signal?: AbortSignal | undefined;
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
  const tables = await daemon.withConnection(async (connection) => {
    const found = [];
    for (const database of await userDatabasesWithTables(connection)) {
      found.push(
        ...(await checksumTables(connection, database, {
          signal: options.signal,
          onUnreadable:
            options.onUnreadable && ((table, error) => options.onUnreadable!(database, table, error)),
          onTable: (done, total) =>
            options.progress?.({ phase: `checksumming ${database}`, itemsDone: done, itemsTotal: total }),
        })),
      );
    }
    return found;
  });
  const seconds = Math.round(performance.now() - started) / 1000;
  options.logger.info(`checksummed ${tables.length} tables in ${seconds}s`);
  return { method: EVIDENCE_METHOD, seconds, tables };
}
