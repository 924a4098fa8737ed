import type { WritesResult } from '../../operations/writes.ts';
import { instanceFields, numberFlag, type OperationCommand } from '../operation-command.ts';
import { addInstanceOptions } from '../options.ts';

export function renderWrites(result: WritesResult): string {
  if (result.action === 'start') return `writes allowed again; position ${result.position || '-'}`;
  const open = result.openTransactions ? `; ${result.openTransactions} transaction(s) were still open` : '';
  return `writes frozen at ${result.frozenAt}; final position ${result.position || '-'}${open}`;
}

export const writesCommand: OperationCommand<'writes'> = {
  operation: 'writes',
  declare: (program) =>
    addInstanceOptions(
      program
        .command('writes')
        .description(
          "freeze a primary's writes for a cutover and print the final position, or let writes in again",
        )
        .requiredOption('--action <stop|start>', 'stop (freeze) or start writes')
        .option(
          '--transaction-wait-seconds <n>',
          'how long stop waits for transactions that already wrote to commit, before read_only',
          '10',
        ),
    ),
  toRequest: (flags) => ({
    ...instanceFields(flags),
    action: flags.action,
    transactionWaitSeconds: numberFlag(flags.transactionWaitSeconds),
  }),
  render: renderWrites,
};
