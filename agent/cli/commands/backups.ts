import type { Command } from 'commander';
import { z } from 'zod';
import {
  type BackupSummary,
  inspectBackups,
  type PrunePlan,
  pruneBackups,
  readManifest,
  type ValidationReport,
  validateBackup,
} from '../../../core/backups.ts';
import { gapsAfter, readBinlogArchive } from '../../../core/binlogs/catalog.ts';
import { type BinlogPrunePlan, pruneBinlogs } from '../../../core/binlogs/retention.ts';
import { type DrillState, drillStateOf } from '../../../core/drills.ts';
import { ExitCode, NoBackupError } from '../../../core/errors.ts';
import { BackupDir, BackupName } from '../../../core/paths.ts';
import { checkShardDir, ShardDir } from '../../../core/storage/layout.ts';
import { mapConcurrent } from '../../../core/stream/concurrency.ts';
import { formatBytes, renderTable } from '../../report/format.ts';
import { ByteProgress } from '../../report/progress.ts';
import type { ActionRunner, CommandContext } from '../command.ts';
import { addStorageOptions, DirOption, PositiveInt, StorageOptions } from '../options.ts';
import { registerReport } from './backups-report.ts';
import { listSnapshots } from './snapshot-list.ts';

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
  /** The last drill of a complete backup: passed, failed, never (or unreadable). */
  drill?: DrillState;
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

/** `2026-11-24T10:15:00.123Z` → `2026-11-24 10:15:00` (UTC, as the header says). */
function utcTime(iso: string | undefined): string {
  return iso ? iso.replace('T', ' ').replace(/(\.\d+)?Z$/, '') : '-';
}

/** The backups of a directory as a table, oldest first, with what is wrong with each incomplete one below it. */
export function renderBackupList(entries: BackupListEntry[], dir: string): string {
  if (entries.length === 0) return `no backups in ${dir}`;
  const table = renderTable(
    ['NAME', 'FINISHED (UTC)', 'ENGINE', 'RAW', 'STORED', 'POSITION', 'STATE', 'DRILL'],
    entries.map((e) => [
      e.name,
      utcTime(e.time),
      e.engine ?? '-',
      e.bytes ? formatBytes(e.bytes.raw) : '-',
      e.bytes ? formatBytes(e.bytes.stored) : '-',
      e.position || '-',
      e.complete ? 'complete' : 'INCOMPLETE',
      e.drill ?? '-',
    ]),
  );
  const incomplete = entries.filter((e) => !e.complete);
  const complete = entries.length - incomplete.length;
  const lines = [
    table,
    '',
    `${entries.length} backup(s) in ${dir}: ${complete} complete, ${incomplete.length} incomplete`,
  ];
  if (incomplete.length > 0) {
    lines.push(
      ...incomplete.map((e) => `  ${e.name}: ${e.problem ?? 'no readable MANIFEST'}`),
      'Incomplete backups are never restored; backups prune removes them once they are a day old.',
    );
  }
  return lines.join('\n');
}

const ListOptions = StorageOptions.extend({ dir: BackupDir, snapshots: z.boolean().optional() }).superRefine(
  (options, ctx) => {
    const problem = options.snapshots
      ? options.dir.split('/').length === 2
        ? undefined
        : 'with --snapshots, --dir is the source, KEYSPACE/SOURCE (e.g. shop/0)'
      : checkShardDir(options.dir);
    if (problem) ctx.addIssue({ code: 'custom', path: ['dir'], message: problem });
  },
);

export function registerBackups(program: Command, action: ActionRunner): Command {
  const backups = program
    .command('backups')
    .description(
      'list, validate and prune the backups of a shard, and report which shards are proven by a drill',
    );
  const list = addStorageOptions(
    backups
      .command('list')
      .description('every backup in a directory, oldest first, complete or not')
      .requiredOption('--dir <keyspace/shard>', 'backup directory, e.g. commerce/-80')
      .option('--snapshots', "the source's logical snapshots instead, every key range"),
  );
  action(list, ListOptions, async (options, context) => {
    const storage = await openStorageOf(options, context);
    try {
      if (options.snapshots) return await listSnapshots(storage, options.dir);
      const entries = await mapConcurrent(await inspectBackups(storage, options.dir), 16, async (summary) => {
        const entry = listEntry(summary);
        if (!summary.complete) return entry;
        return { ...entry, drill: (await drillStateOf(storage.openBackup(options.dir, summary.name))).state };
      });
      return { result: entries, summary: renderBackupList(entries, options.dir) };
    } finally {
      await storage.close();
    }
  });
  registerValidate(backups, action);
  registerReport(backups, action);
  registerPrune(backups, action);
  return backups;
}

export function renderValidation(report: ValidationReport): string {
  const what = `backup ${report.dir}/${report.name} (${report.files} files${report.deep ? `, ${formatBytes(report.bytes)} read` : ''})`;
  if (report.problems.length === 0)
    return `${what} is valid${report.deep ? '' : ' (use --deep to check every hash)'}`;
  return [
    `${what} has ${report.problems.length} problems:`,
    ...report.problems.map((p) => `  ${p.file ?? '(backup)'}: ${p.problem}`),
  ].join('\n');
}

const ValidateOptions = StorageOptions.extend(DirOption.shape).extend({
  backup: BackupName,
  deep: z.boolean().optional(),
  concurrency: PositiveInt.default(4),
});

function registerValidate(backups: Command, action: ActionRunner): void {
  const command = addStorageOptions(
    backups
      .command('validate')
      .description(
        'check a backup: its manifest, and every file present with its size (--deep: and its hash)',
      )
      .requiredOption('--dir <keyspace/shard>', 'backup directory, e.g. commerce/-80')
      .requiredOption('--backup <name>', 'the backup to check')
      .option('--deep', 'read every file and compare its SHA-256 with the manifest')
      .option('--concurrency <n>', 'files read at once with --deep', '4'),
  );
  action(command, ValidateOptions, async (options, context) => {
    const storage = await openStorageOf(options, context);
    try {
      const handle = storage.openBackup(options.dir, options.backup);
      if ((await handle.listFiles()).length === 0) {
        throw new NoBackupError(
          options.dir,
          `backup ${options.dir}/${options.backup} does not exist in ${storage.url}`,
          {
            hint: `list the backups with: stepback backups list --storage ${storage.url} --dir ${options.dir}`,
          },
        );
      }
      const manifest = await readManifest(handle, context.signal);
      const progress = new ByteProgress(
        'reading files',
        { bytes: manifest.bytes.stored, items: manifest.files.length },
        (update) => context.reporter.progress(update),
      );
      const report = await validateBackup(handle, manifest, {
        deep: Boolean(options.deep),
        concurrency: options.concurrency,
        signal: context.signal,
        onBytes: (bytes) => {
          progress.addBytes(bytes);
          progress.itemDone();
        },
      });
      // A gap in the shard's binlog archive after this backup breaks every restore to a point past it.
      if (checkShardDir(options.dir) === undefined) {
        const archive = await readBinlogArchive(storage, options.dir);
        for (const gap of gapsAfter(archive, manifest.flavor, manifest.position)) {
          report.problems.push({
            file: `${archive.dir}/${gap.before}`,
            problem: `binlog archive gap after ${gap.after}: ${gap.problem}`,
          });
        }
      }
      const valid = report.problems.length === 0;
      return {
        result: { ...report, valid },
        summary: renderValidation(report),
        ...(valid ? {} : { exitCode: ExitCode.verificationFailed }),
      };
    } finally {
      await storage.close();
    }
  });
}

export function renderPrunePlan(
  plan: PrunePlan & { dryRun: boolean },
  dir: string,
  binlogs?: BinlogPrunePlan,
): string {
  const verb = plan.dryRun ? 'would remove' : 'removed';
  return [
    ...plan.remove.map((entry) => `${verb} ${dir}/${entry.name}: ${entry.reason}`),
    `${plan.remove.length} ${plan.dryRun ? 'to remove' : 'removed'}, ${plan.keep.length} kept`,
    ...(binlogs && binlogs.remove.length + binlogs.keep > 0
      ? [
          ...binlogs.remove.map(
            (entry) => `${verb} archived binlog binlogs/${dir}/${entry.entry}: ${entry.reason}`,
          ),
          `archived binlogs: ${binlogs.remove.length} ${plan.dryRun ? 'to remove' : 'removed'}, ${binlogs.keep} kept`,
        ]
      : []),
  ].join('\n');
}

const PruneOptions = StorageOptions.extend({ dir: ShardDir }).extend({
  keepCount: z.coerce.number().int().min(0).max(100_000),
  keepDays: z.coerce.number().min(0).max(100_000),
  dryRun: z.boolean().optional(),
});

function registerPrune(backups: Command, action: ActionRunner): void {
  const command = addStorageOptions(
    backups
      .command('prune')
      .description(
        'delete complete backups older than --keep-days while more than --keep-count remain (never the newest complete one), and incomplete ones older than a day; then the archived binary logs no point after the oldest kept backup needs',
      )
      .requiredOption('--dir <keyspace/shard>', 'backup directory, e.g. commerce/-80')
      .requiredOption('--keep-count <n>', 'complete backups always kept, newest first')
      .requiredOption('--keep-days <days>', 'complete backups younger than this are kept')
      .option('--dry-run', 'only say what would be removed'),
  );
  action(command, PruneOptions, async (options, context) => {
    const storage = await openStorageOf(options, context);
    try {
      const plan = await pruneBackups(
        storage,
        options.dir,
        { keepCount: options.keepCount, keepDays: options.keepDays },
        { dryRun: Boolean(options.dryRun), logger: context.logger },
      );
      const binlogs = await pruneBinlogs(storage, options.dir, plan.keep, {
        dryRun: Boolean(options.dryRun),
        logger: context.logger,
      });
      return {
        result: { dir: options.dir, ...plan, binlogs: { remove: binlogs.remove, keep: binlogs.keep } },
        summary: renderPrunePlan(plan, options.dir, binlogs),
      };
    } finally {
      await storage.close();
    }
  });
}

/** Storage opened only when a command runs: the SDKs behind it are not loaded for --help. */
async function openStorageOf(options: StorageOptions, context: CommandContext) {
  const { openRequestStorage } = await import('../../operations/open.ts');
  return openRequestStorage(options, context.env, context.logger);
}
