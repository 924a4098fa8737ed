import { StepbackError } from '../../core/errors.ts';
import type { ReplicationRequest } from '../../core/operations/replication.ts';
import { changeInstance } from '../instance/lifecycle.ts';
import type { MysqlDaemon } from '../mysqld/daemon.ts';
import { openInstance } from './open.ts';
import type { OperationContext, RequestOf } from './operation.ts';

export interface ReplicationResult {
  action: 'stop' | 'start';
  /** Every transaction the instance holds once replication stopped (or when it started). */
  position: string;
  /** Replication ran before this command. */
  wasRunning: boolean;
}

/**
 * Stops or starts a replica's replication, and records the new state as the one to keep, so the
 * instance is rightly left different: what a reshard's consistent point needs while copies catch up.
 */
export async function replicationInstance(
  daemon: MysqlDaemon,
  request: ReplicationRequest,
  context: OperationContext,
): Promise<ReplicationResult> {
  const { logger } = context;
  return changeInstance(
    daemon,
    { operation: 'replication', logger, needsRunning: 'replication is controlled on the running server' },
    async ({ original, lease }) => {
      if (!original.replication.configured) {
        throw new StepbackError(
          `${daemon.config.defaultsFile} is not a replica: it has no replication to ${request.action}`,
          {
            hint: 'name a replica of the source shard (the one the snapshot was taken on)',
          },
        );
      }
      return daemon.withConnection(async (connection) => {
        if (request.action === 'stop') {
          await daemon.flavor.stopReplication(connection);
          logger.info('replication stopped');
        } else {
          await daemon.flavor.startReplication(connection);
          logger.info('replication started');
        }
        await lease.record({
          original: { ...original, replication: { configured: true, running: request.action === 'start' } },
        });
        return {
          action: request.action,
          position: await daemon.flavor.executedPosition(connection),
          wasRunning: original.replication.running,
        };
      });
    },
  );
}

/** `stepback replication`, and the Reshard machine's pause and resume of the source replica. */
export async function runReplication(
  request: RequestOf<'replication'>,
  context: OperationContext,
): Promise<ReplicationResult> {
  return replicationInstance(await openInstance(request, context.logger), request, context);
}
