import { StepbackError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import { connect } from '../mysql/connection.ts';
import type { ReplicationSource } from '../mysql/flavor.ts';
import type { MysqlDaemon } from '../mysqld/daemon.ts';

/** How often the wait checks that replication still runs (MASTER_GTID_WAIT alone would sit out a broken thread). */
const checkEverySeconds = 5;

/**
 * Points the instance at `source` (GTID auto-positioned from its restored position), starts
 * replication and waits until it has applied everything the source's binary logs held when the
 * wait began. Fails early, with the replication error, when a replication thread stops.
 */
export async function replicateFrom(
  daemon: MysqlDaemon,
  source: ReplicationSource,
  options: { timeoutSeconds: number; logger: Logger; signal?: AbortSignal },
): Promise<{ caughtUpTo: string }> {
  const { flavor } = daemon;
  const where = `${source.host}:${source.port}`;
  const primary = await connect({
    host: source.host,
    port: source.port,
    user: source.user,
    password: source.password,
  });
  let target: string;
  try {
    target = await flavor.binlogPosition(primary);
  } finally {
    await primary.end().catch(() => primary.destroy());
  }
  return daemon.withConnection(async (connection) => {
    await flavor.configureReplication(connection, source);
    await flavor.startReplication(connection);
    options.logger.info(`replicating from ${where}; waiting to catch up`, { position: target || '(empty)' });
    const deadline = Date.now() + options.timeoutSeconds * 1000;
    for (;;) {
      const remaining = Math.ceil((deadline - Date.now()) / 1000);
      if (remaining <= 0) {
        throw new StepbackError(
          `replication from ${where} did not reach ${target} within ${options.timeoutSeconds}s`,
          {
            hint: `replication keeps running; check ${flavor.name === 'mysql' ? 'SHOW REPLICA STATUS' : 'SHOW SLAVE STATUS'} on the restored instance`,
          },
        );
      }
      if (await flavor.waitForPosition(connection, target, Math.min(checkEverySeconds, remaining))) {
        return { caughtUpTo: target };
      }
      options.signal?.throwIfAborted();
      const status = await flavor.replicationStatus(connection);
      if (!status.ioRunning || !status.sqlRunning) {
        throw new StepbackError(
          `replication from ${where} stopped: ${status.lastError ?? 'no error reported'}`,
          { hint: 'fix the cause, then start replication on the restored instance by hand' },
        );
      }
      if (status.lastError) options.logger.warn(`replication from ${where}: ${status.lastError}`);
    }
  });
}
