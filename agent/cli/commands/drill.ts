import type { DrillResult } from '../../operations/drill.ts';
import { formatSeconds } from '../../report/format.ts';
import { instanceFields, numberFlag, type OperationCommand, storageFields } from '../operation-command.ts';
import { addInstanceOptions, addStorageOptions } from '../options.ts';

export function renderDrill(result: DrillResult): string {
  const lines = [
    `drill of ${result.dir}/${result.backup} ${result.outcome.toUpperCase()} in ${formatSeconds(result.seconds)} on ${result.drillHost}`,
    result.evidence
      ? `tables    ${result.tablesChecked} compared with the backup's checksums`
      : 'tables    none compared: the backup recorded no checksums (backed up with --no-evidence)',
    `checked   CHECK TABLE on ${result.tablesCheckedByServer.length}: ${result.tablesCheckedByServer.slice(0, 10).join(', ') || '-'}`,
    ...result.differences.map(
      (d) =>
        `  DIFFERS ${d.table ? `${d.database}.${d.table}` : ''}${d.file ? ` (file ${d.file})` : ''}: ${d.problem}`,
    ),
    ...result.problems.map((problem) => `  PROBLEM ${problem}`),
    `record    ${result.record} (${result.storage})`,
  ];
  return lines.join('\n');
}

export const drillCommand: OperationCommand<'drill'> = {
  operation: 'drill',
  declare: (program) =>
    addInstanceOptions(
      addStorageOptions(
        program
          .command('drill')
          .description(
            "restore a backup onto a drill instance, check it (start, CHECK TABLE, every table's checksum), put the drill instance back, and write DRILL.json beside the backup (exit 5 when it fails)",
          )
          .requiredOption('--dir <keyspace/shard>', 'backup directory, e.g. commerce/-80')
          .requiredOption('--backup <name>', 'the backup to drill'),
      ),
    )
      .option('--concurrency <n>', 'files downloaded at once', '4')
      .option('--check-tables <n>', 'tables CHECK TABLE runs on, chosen at random', '20')
      .option(
        '--topo <url>',
        'topology store (file:///abs/dir or ssm:/prefix): refuse a host it lists as serving',
      )
      .option('--host-id <id>', 'this host as the topology names it (default: the host name)'),
  toRequest: (flags) => ({
    ...storageFields(flags),
    ...instanceFields(flags),
    dir: flags.dir,
    backup: flags.backup,
    concurrency: numberFlag(flags.concurrency),
    checkTables: numberFlag(flags.checkTables),
    topo: flags.topo,
    hostId: flags.hostId,
  }),
  render: renderDrill,
};
