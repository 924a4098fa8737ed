import type { Command } from 'commander';
import { type BackupSummary, inspectBackups } from '../../../core/backups.ts';
import { formatBytes, renderTable } from '../../report/format.ts';
import type { ActionRunner } from '../command.ts';
import { addStorageOptions, DirOption, StorageOptions, storageFrom } from '../options.ts';

/** One row of `backups list --json`. */
export interface BackupListEntry {
  dir: string;
  name: string;
  complete: boolean;
  engine?: string;
  time?: string;
  bytes?: { raw: number; stored: number };
  position?: string;
  problem?: string;
}

export function listEntry(summary: BackupSummary): BackupListEntry {
  if (!summary.complete)
    return { dir: summary.dir, name: summary.name, complete: false, problem: summary.problem };
  const { manifest } = summary;
  return {
    dir: summary.dir,
    name: summary.name,
    complete: true,
    engine: manifest.engine,
    time: manifest.finishedAt,
    bytes: manifest.bytes,
    position: manifest.position,
  };
}

export function renderBackupList(entries: BackupListEntry[], dir: string): string {
  if (entries.length === 0) return `no backups in ${dir}`;
  return renderTable(
    ['NAME', 'TIME', 'ENGINE', 'STORED', 'POSITION', 'STATE'],
    entries.map((e) => [
      e.name,
      e.time ?? '-',
      e.engine ?? '-',
      e.bytes ? formatBytes(e.bytes.stored) : '-',
      e.position || '-',
      e.complete ? 'complete' : `incomplete: ${e.problem ?? ''}`,
    ]),
  );
}

export function registerBackups(program: Command, action: ActionRunner): Command {
  const backups = program.command('backups').description('list, validate and prune the backups of a shard');
  const list = addStorageOptions(
    backups
      .command('list')
      .description('every backup in a directory, oldest first, complete or not')
      .requiredOption('--dir <keyspace/shard>', 'backup directory, e.g. commerce/-80'),
  );
  action(list, StorageOptions.extend(DirOption.shape), async (options, context) => {
    const storage = storageFrom(options, context.env, context.logger);
    try {
      const entries = (await inspectBackups(storage, options.dir)).map(listEntry);
      return { result: entries, summary: renderBackupList(entries, options.dir) };
    } finally {
      await storage.close();
    }
  });
  return backups;
}
