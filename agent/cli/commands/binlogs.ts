import type { Command } from 'commander';
import { type ArchiveGap, type BinlogArchive, readBinlogArchive } from '../../../core/binlogs/catalog.ts';
import { ExitCode } from '../../../core/errors.ts';
import { ShardDir } from '../../../core/storage/layout.ts';
import type { BinlogArchiveResult } from '../../operations/binlog-archive.ts';
import { openRequestStorage } from '../../operations/open.ts';
import { formatBytes, formatSeconds, renderTable } from '../../report/format.ts';
import type { ActionRunner } from '../command.ts';
import { type Flags, instanceFields, type OperationCommand, storageFields } from '../operation-command.ts';
import { addInstanceOptions, addStorageOptions, StorageOptions } from '../options.ts';

/** The `binlogs` command group, made by whichever of its subcommands is declared first. */
function binlogsGroup(program: Command): Command {
  return (
    program.commands.find((command) => command.name() === 'binlogs') ??
    program.command('binlogs').description("archive a shard's binary logs and list the archive")
  );
}

export function renderArchiveSummary(result: BinlogArchiveResult): string {
  return [
    ...result.uploaded.map(
      (file) =>
        `archived ${file.file} as ${file.entry}: ${file.transactions} transactions, ${formatBytes(file.size)} (${formatBytes(file.storedSize)} stored)`,
    ),
    `${result.uploaded.length} file(s) archived to ${result.storage} binlogs/${result.dir}, ${result.alreadyArchived} already there; ${result.rotated ? 'rotated, ' : ''}now writing ${result.current} (${formatSeconds(result.seconds)})`,
  ].join('\n');
}

export const binlogArchiveCommand: OperationCommand<'binlogArchive'> = {
  operation: 'binlogArchive',
  declare: (program) =>
    addInstanceOptions(
      addStorageOptions(
        binlogsGroup(program)
          .command('archive')
          .description(
            'upload every closed binary log of an instance not yet archived (rotating the current one when older than --max-age); never deletes anything on the server',
          )
          .requiredOption('--dir <keyspace/shard>', 'the shard the instance belongs to, e.g. commerce/-80'),
      ),
    )
      .option(
        '--max-age <duration>',
        'rotate the current binary log first when it is older than this (0: always)',
        '5m',
      )
      .option('--compression <codec>', 'zstd, gzip or none', 'zstd'),
  toRequest: (flags: Flags) => ({
    ...storageFields(flags),
    ...instanceFields(flags),
    dir: flags.dir,
    maxAge: flags.maxAge,
    compression: flags.compression,
  }),
  render: renderArchiveSummary,
};

/** One entry of `binlogs list --json`. */
export interface BinlogListEntry {
  entry: string;
  complete: boolean;
  file?: string;
  fromTime?: string;
  toTime?: string;
  gtidsAfter?: string;
  transactions?: number;
  size?: number;
  storedSize?: number;
  problem?: string;
}

export function listedBinlogs(archive: BinlogArchive) {
  return {
    dir: archive.dir,
    entries: archive.entries.map(
      (entry): BinlogListEntry =>
        entry.complete
          ? {
              entry: entry.entry,
              complete: true,
              file: entry.manifest.file,
              fromTime: entry.manifest.firstEventTime,
              toTime: entry.manifest.lastEventTime,
              gtidsAfter: entry.manifest.gtidsAfter,
              transactions: entry.manifest.transactions,
              size: entry.manifest.size,
              storedSize: entry.manifest.storedSize,
            }
          : { entry: entry.entry, complete: false, problem: entry.problem },
    ),
    ranges: archive.ranges,
    gaps: archive.gaps,
  };
}

const utc = (iso: string | undefined) => (iso ? iso.replace('T', ' ').replace(/(\.\d+)?Z$/, '') : '-');

export function renderGap(gap: ArchiveGap): string {
  return `GAP after ${gap.after}, before ${gap.before}: ${gap.problem}`;
}

export function renderBinlogList(listed: ReturnType<typeof listedBinlogs>): string {
  if (listed.entries.length === 0) return `no archived binary logs in ${listed.dir}`;
  const table = renderTable(
    ['ENTRY', 'FROM (UTC)', 'TO (UTC)', 'TRANSACTIONS', 'SIZE', 'STORED', 'GTIDS AFTER', 'STATE'],
    listed.entries.map((e) => [
      e.entry,
      utc(e.fromTime),
      utc(e.toTime),
      e.transactions === undefined ? '-' : String(e.transactions),
      e.size === undefined ? '-' : formatBytes(e.size),
      e.storedSize === undefined ? '-' : formatBytes(e.storedSize),
      e.gtidsAfter || '-',
      e.complete ? 'complete' : 'INCOMPLETE',
    ]),
  );
  return [
    table,
    '',
    ...listed.ranges.map(
      (range) =>
        `covered: ${utc(range.fromTime)} to ${utc(range.toTime)} UTC (${range.files} files, GTIDs ${range.gtidsFrom || '(empty)'} to ${range.gtidsTo || '(empty)'})`,
    ),
    ...listed.gaps.map(renderGap),
    ...listed.entries
      .filter((e) => !e.complete)
      .map((e) => `incomplete ${e.entry}: ${e.problem} (the next archive run uploads it again)`),
  ].join('\n');
}

const ListOptions = StorageOptions.extend({ dir: ShardDir });

export function registerBinlogsList(program: Command, action: ActionRunner): void {
  const command = addStorageOptions(
    binlogsGroup(program)
      .command('list')
      .description("a shard's archived binary logs, the time and GTID ranges they cover, and any gap")
      .requiredOption('--dir <keyspace/shard>', 'the shard, e.g. commerce/-80'),
  );
  action(command, ListOptions, async (options, context) => {
    const storage = await openRequestStorage(options, context.env, context.logger);
    try {
      const listed = listedBinlogs(await readBinlogArchive(storage, options.dir));
      return {
        result: listed,
        summary: renderBinlogList(listed),
        ...(listed.gaps.length > 0 ? { exitCode: ExitCode.verificationFailed } : {}),
      };
    } finally {
      await storage.close();
    }
  });
}
