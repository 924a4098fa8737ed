import type { Command } from 'commander';
import { z } from 'zod';
import { Compression } from '../../../core/manifest.ts';
import { BackupName } from '../../../core/paths.ts';
import type { BackupResult } from '../../operations/backup.ts';
import { formatBytes, formatSeconds } from '../../report/format.ts';
import type { ActionRunner } from '../command.ts';
import {
  addInstanceOptions,
  addStorageOptions,
  DirOption,
  InstanceOptions,
  openDaemon,
  PositiveInt,
  StorageOptions,
  storageFrom,
} from '../options.ts';

export function renderBackupSummary(result: BackupResult): string {
  const share = result.bytes.raw > 0 ? Math.round((result.bytes.stored / result.bytes.raw) * 100) : 0;
  return [
    `backup ${result.name} complete in ${result.dir} (${result.storage})`,
    `position  ${result.position || '(empty)'} (${result.role})`,
    `files     ${result.files}: ${formatBytes(result.bytes.raw)} raw, ${formatBytes(result.bytes.stored)} stored (${share}%)`,
    `time      ${formatSeconds(result.seconds)} in all, ${formatSeconds(result.copySeconds)} copying at ${result.mbPerSecond} MB/s`,
  ].join('\n');
}

export const BackupOptions = StorageOptions.extend(DirOption.shape)
  .extend(InstanceOptions.shape)
  .extend({
    engine: z.enum(['physical']).default('physical'),
    concurrency: PositiveInt.default(4),
    compression: Compression.default('zstd'),
    name: BackupName.optional(),
    slowShutdown: z.boolean().optional(),
  });

export function registerBackup(program: Command, action: ActionRunner): Command {
  const command = addInstanceOptions(
    addStorageOptions(
      program
        .command('backup')
        .description(
          'back up an instance: stop writes, take its GTID position, shut it down, stream its files to storage, put it back as found',
        )
        .requiredOption('--dir <keyspace/shard>', 'backup directory, e.g. commerce/-80'),
    ),
  )
    .option('--engine <engine>', 'how the copy is made: physical (cold copy of the data files)', 'physical')
    .option('--concurrency <n>', 'files copied at once', '4')
    .option('--compression <codec>', 'zstd, gzip or none', 'zstd')
    .option('--name <name>', 'backup name (default: YYYY-MM-DD.HHMMSS.<host>, UTC)')
    .option(
      '--slow-shutdown',
      'innodb_fast_shutdown=0 before copying: slower, for restores onto another major version',
    );
  action(command, BackupOptions, async (options, context) => {
    const storage = await storageFrom(options, context.env, context.logger);
    try {
      const daemon = await openDaemon(options, context.logger);
      const { runBackup } = await import('../../operations/backup.ts');
      const result = await runBackup(
        daemon,
        storage,
        {
          dir: options.dir,
          name: options.name,
          engine: options.engine,
          compression: options.compression,
          concurrency: options.concurrency,
          slowShutdown: Boolean(options.slowShutdown),
        },
        {
          logger: context.logger,
          progress: (update) => context.reporter.progress(update),
          signal: context.signal,
        },
      );
      return { result, summary: renderBackupSummary(result) };
    } finally {
      await storage.close();
    }
  });
  return command;
}
