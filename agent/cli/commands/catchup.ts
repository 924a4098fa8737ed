import type { CatchupResult } from '../../operations/catchup.ts';
import { formatCount } from '../../report/format.ts';
import { numberFlag, type OperationCommand } from '../operation-command.ts';
import { addInstanceOptions } from '../options.ts';

export function renderCatchup(result: CatchupResult): string {
  const stop =
    result.stoppedAt === 'position'
      ? 'reached the position asked for'
      : `within ${result.lagSeconds.toFixed(1)}s of the source`;
  return [
    `${result.database} caught up from ${result.source} (source ${result.sourceIndex}): ${stop}`,
    `position: ${result.startPosition || '-'} → ${result.position || '-'}`,
    `${formatCount(result.rowsApplied)} rows applied from ${formatCount(result.transactions)} source transactions in ${result.seconds.toFixed(1)}s; lag ${Number.isFinite(result.lagSeconds) ? `${result.lagSeconds.toFixed(1)}s` : 'unknown'}`,
  ].join('\n');
}

export const catchupCommand: OperationCommand<'catchup'> = {
  operation: 'catchup',
  declare: (program) =>
    addInstanceOptions(
      program
        .command('catchup')
        .description(
          "apply the source shard's binary log to a destination loaded by multirestore --checkpoints: only the destination's rows, from its checkpoint",
        )
        .requiredOption('--database <name>', 'the destination database (loaded with checkpoints)')
        .requiredOption(
          '--source <uri>',
          'a server of the source shard and the source database: mysql://user@host:port/db or mysql://user@localhost/db?socket=/path',
        )
        .option('--source-password-env <var>', 'environment variable holding the source password')
        .option(
          '--source-index <n>',
          "which checkpoint (the source's place in multirestore --sources); default: the only one",
        )
        .option(
          '--key-range <range>',
          "keep only rows whose keyspace id is in this range, e.g. -80 (default: every row of the destination's tables)",
        )
        .option('--key-column <name>', 'the keyspace id column (with --key-range)')
        .option(
          '--key-type <type>',
          'keyspace id type: uint64 (BIGINT UNSIGNED) or bytes (VARBINARY)',
          'uint64',
        )
        .option('--until <gtid-set>', 'stop once this position is applied')
        .option('--max-lag-seconds <n>', 'without --until: stop once at most this far behind the source', '5')
        .option(
          '--timeout-seconds <n>',
          'fail when the stopping point is not reached within this many seconds',
        )
        .option('--write-binlogs', "write the applied rows to the destination's binary log (default: not)")
        .option('--server-id <n>', 'the replica server id used on the source (default: a random one)'),
    ),
  toRequest: (flags) => ({
    defaultsFile: flags.defaultsFile,
    mysqld: flags.mysqld,
    systemdService: flags.systemdService,
    database: flags.database,
    source: flags.source,
    sourcePasswordEnv: flags.sourcePasswordEnv,
    sourceIndex: numberFlag(flags.sourceIndex),
    keyRange: flags.keyRange,
    keyColumn: flags.keyColumn,
    keyType: flags.keyType,
    until: flags.until,
    maxLagSeconds: numberFlag(flags.maxLagSeconds),
    timeoutSeconds: numberFlag(flags.timeoutSeconds),
    writeBinlogs: flags.writeBinlogs,
    serverId: numberFlag(flags.serverId),
  }),
  render: renderCatchup,
};
