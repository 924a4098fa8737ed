import type { BackupResult } from '../../operations/backup.ts';
import { formatBytes, formatSeconds } from '../../report/format.ts';
import { instanceFields, numberFlag, type OperationCommand, storageFields } from '../operation-command.ts';
import { addInstanceOptions, addStorageOptions } from '../options.ts';

export function renderBackupSummary(result: BackupResult): string {
  const share = result.bytes.raw > 0 ? Math.round((result.bytes.stored / result.bytes.raw) * 100) : 0;
  return [
    `backup ${result.name} complete in ${result.dir} (${result.storage})`,
    `position  ${result.position || '(empty)'} (${result.role})`,
    `${result.engine === 'online' ? 'parts    ' : 'files    '} ${result.files}: ${formatBytes(result.bytes.raw)} raw, ${formatBytes(result.bytes.stored)} stored (${share}%)`,
    `time      ${formatSeconds(result.seconds)} in all, ${formatSeconds(result.copySeconds)} copying at ${result.mbPerSecond} MB/s`,
    result.evidence
      ? `evidence  ${result.evidence.tables} tables checksummed in ${formatSeconds(result.evidence.seconds)} (writes stopped)`
      : 'evidence  none (--no-evidence): drills of this backup can check only that it starts',
  ].join('\n');
}

export const backupCommand: OperationCommand<'backup'> = {
  operation: 'backup',
  declare: (program) =>
    addInstanceOptions(
      addStorageOptions(
        program
          .command('backup')
          .description(
            'back up an instance: physical stops writes, takes its GTID position, shuts it down and streams its files to storage, then puts it back as found; online streams mariabackup (MySQL: a clone) while it keeps serving',
          )
          .requiredOption('--dir <keyspace/shard>', 'backup directory, e.g. commerce/-80'),
      ),
    )
      .option(
        '--engine <engine>',
        "how the copy is made: physical (cold copy of the data files) or online (mariabackup, or MySQL's clone plugin, while the server keeps serving)",
        'physical',
      )
      .option('--concurrency <n>', 'files copied at once (online: parts finishing their upload at once)', '4')
      .option(
        '--part-size <size>',
        'online: store the stream in parts of at most this many raw bytes',
        '1GiB',
      )
      .option('--compression <codec>', 'zstd, gzip or none', 'zstd')
      .option('--name <name>', 'backup name (default: YYYY-MM-DD.HHMMSS.<host>, UTC)')
      .option(
        '--slow-shutdown',
        'innodb_fast_shutdown=0 before copying: slower, for restores onto another major version',
      )
      .option(
        '--allow-primary',
        'back up a primary that has replicas attached (its writes stop until the copy ends)',
      )
      .option(
        '--no-evidence',
        "do not record each table's rows and checksum (what a drill compares with); saves a read of every row with writes stopped",
      ),
  toRequest: (flags) => ({
    ...storageFields(flags),
    ...instanceFields(flags),
    dir: flags.dir,
    engine: flags.engine,
    concurrency: numberFlag(flags.concurrency),
    partSize: flags.partSize,
    keepReplicaApplying: flags.keepReplicaApplying,
    compression: flags.compression,
    name: flags.name,
    slowShutdown: flags.slowShutdown,
    allowPrimary: flags.allowPrimary,
    evidence: flags.evidence,
  }),
  render: renderBackupSummary,
};
