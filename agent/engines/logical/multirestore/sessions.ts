import { Semaphore } from '../../../../core/stream/concurrency.ts';
import type { Connection } from '../../../mysql/connection.ts';

export interface LoadSessionSettings {
  /** Keep the load out of the binary log (the default): replicas of the destination do not replay it. */
  writeBinlogs: boolean;
}

/**
 * The session every multirestore statement runs in: binlog off unless asked, foreign key checks off
 * (tables load in any order), strict mode (a value that does not fit fails instead of being
 * truncated), explicit zeros kept in AUTO_INCREMENT columns, TIMESTAMPs read in UTC as they were
 * written. Notes are off, so any warning a load reports is a real one (and fails it).
 */
export async function prepareSession(connection: Connection, settings: LoadSessionSettings): Promise<void> {
  if (!settings.writeBinlogs) await connection.query('SET SESSION sql_log_bin = 0');
  await connection.query(
    "SET SESSION foreign_key_checks = 0, SESSION sql_mode = 'STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION', SESSION time_zone = '+00:00', SESSION sql_notes = 0",
  );
}

/** At most `size` prepared connections, handed out one at a time and reused. */
export class SessionPool {
  readonly #open: () => Promise<Connection>;
  readonly #permits: Semaphore;
  readonly #idle: Connection[] = [];
  readonly #all = new Set<Connection>();

  constructor(size: number, open: () => Promise<Connection>) {
    this.#permits = new Semaphore(size);
    this.#open = open;
  }

  /** Runs `work` on a pooled connection; a connection whose work failed is closed, not reused. */
  async use<T>(work: (connection: Connection) => Promise<T>, signal?: AbortSignal): Promise<T> {
    return this.#permits.use(async () => {
      const connection = this.#idle.pop() ?? (await this.#connect());
      let healthy = false;
      try {
        const result = await work(connection);
        healthy = true;
        return result;
      } finally {
        if (healthy) this.#idle.push(connection);
        else {
          this.#all.delete(connection);
          await connection.end().catch(() => connection.destroy());
        }
      }
    }, signal);
  }

  async close(): Promise<void> {
    const connections = [...this.#all];
    this.#all.clear();
    this.#idle.length = 0;
    await Promise.all(connections.map((c) => c.end().catch(() => c.destroy())));
  }

  async #connect(): Promise<Connection> {
    const connection = await this.#open();
    this.#all.add(connection);
    return connection;
  }
}
