import type { ReplicationResult } from '../../operations/replication.ts';
import { instanceFields, type OperationCommand } from '../operation-command.ts';
import { addInstanceOptions } from '../options.ts';

export function renderReplication(result: ReplicationResult): string {
  const what = result.action === 'stop' ? 'stopped' : 'started';
  return `replication ${what}${result.wasRunning === (result.action === 'start') ? ' (it already was)' : ''}; position ${result.position || '-'}`;
}

export const replicationCommand: OperationCommand<'replication'> = {
  operation: 'replication',
  declare: (program) =>
    addInstanceOptions(
      program
        .command('replication')
        .description(
          "stop a replica's replication and print the position it stopped at (a consistent point), or start it again",
        )
        .requiredOption('--action <stop|start>', 'stop or start replication'),
    ),
  toRequest: (flags) => ({ ...instanceFields(flags), action: flags.action }),
  render: renderReplication,
};
