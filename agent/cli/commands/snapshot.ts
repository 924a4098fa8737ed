import type { Command } from 'commander';
import { z } from 'zod';
import { UsageError } from '../../../core/errors.ts';
import { evenKeyRanges, parseKeyRanges } from '../../../core/keyrange.ts';
import { Compression, Identifier } from '../../../core/manifest.ts';
import { BackupDir } from '../../../core/paths.ts';
import type { SnapshotResult } from '../../engines/logical/snapshot/snapshot.ts';
import { formatBytes, formatCount, renderTable } from '../../report/format.ts';
import type { ActionRunner } from '../command.ts';
import {
  addInstanceOptions,
  addStorageOptions,
  InstanceOptions,
  openDaemon,
  PositiveInt,
  StorageOptions,
  storageFrom,
} from '../options.ts';

const units: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
};

/** `64MiB`, `512KiB`, `1G`, `1000000`: a size in bytes. */
export const ByteSize = z.string().transform((text, ctx) => {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = units[match?.[2]?.toLowerCase() ?? 'x'];
  const bytes = match && unit ? Math.floor(Number(match[1]) * unit) : Number.NaN;
  if (!(bytes >= 1024 && bytes <= 2 ** 40)) {
    ctx.addIssue({
      code: 'custom',
      message: `must be a size from 1KiB to 1TiB like 64MiB, got ${JSON.stringify(text)}`,
    });
    return z.NEVER;
  }
  return bytes;
});

/** `a,b,c` → names, each a valid identifier. */
const NameList = z
  .string()
  .transform((text) =>
    text
      .split(',')
      .map((name) => name.trim())
      .filter(Boolean),
  )
  .pipe(z.array(Identifier).min(1, 'names no table'));

const SnapshotOptions = StorageOptions.extend(InstanceOptions.shape).extend({
  dir: BackupDir,
  database: Identifier,
  keyColumn: Identifier.optional(),
  keyType: z.enum(['uint64', 'bytes']).optional(),
  keyRanges: z.string().optional(),
  shards: z.coerce.number().int().min(1).max(65_536).optional(),
  tables: NameList.optional(),
  excludeTables: NameList.optional(),
  maxFileSize: ByteSize.default(64 * 1024 * 1024),
  concurrency: PositiveInt.default(4),
  compression: Compression.default('zstd'),
});

export function renderSnapshot(result: SnapshotResult): string {
  const table = renderTable(
    ['KEY RANGE', 'DIR', 'NAME', 'ROWS', 'STORED'],
    result.snapshots.map((s) => [s.keyRange, s.dir, s.name, formatCount(s.rows), formatBytes(s.bytes)]),
  );
  return `${table}\nsnapshot of ${result.database} (${result.tables} tables, ${result.views} views) at ${result.role} position ${result.position || '(empty)'} in ${result.seconds.toFixed(1)}s`;
}

export function registerSnapshot(program: Command, action: ActionRunner): Command {
  const command = addStorageOptions(
    addInstanceOptions(
      program
        .command('snapshot')
        .description(
          'logical snapshot of a database: split by key range (resharding) or a set of tables (vertical split)',
        )
        .requiredOption(
          '--dir <keyspace/source>',
          'the source, e.g. shop/0; each range is the snapshot <dir>/<range>, stored under snapshots/',
        )
        .requiredOption('--database <name>', 'the database to snapshot')
        .option('--key-column <name>', 'keyspace id column to split by')
        .option('--key-type <type>', 'keyspace id type: uint64 or bytes')
        .option('--key-ranges <ranges>', 'key ranges, e.g. -40,40-80,80- (default: the full range)')
        .option('--shards <n>', 'split into n even key ranges instead of --key-ranges')
        .option('--tables <names>', 'only these tables and views, comma-separated (one full range only)')
        .option('--exclude-tables <names>', 'leave these tables and views out, comma-separated')
        .option('--max-file-size <size>', 'raw size of each data file before a new one starts', '64MiB')
        .option('--concurrency <n>', 'tables dumped at once', '4')
        .option('--compression <codec>', 'zstd, gzip or none', 'zstd'),
    ),
  );
  action(command, SnapshotOptions, async (options, context) => {
    if (options.keyRanges !== undefined && options.shards !== undefined) {
      throw new UsageError('give --key-ranges or --shards, not both');
    }
    const keyRanges =
      options.shards !== undefined
        ? evenKeyRanges(options.shards)
        : options.keyRanges !== undefined
          ? parseKeyRanges(options.keyRanges)
          : undefined;
    const daemon = await openDaemon(options, context.logger);
    const storage = await storageFrom(options, context.env, context.logger);
    try {
      const { createSnapshot } = await import('../../engines/logical/snapshot/snapshot.ts');
      const result = await createSnapshot({
        daemon,
        storage,
        dir: options.dir,
        database: options.database,
        keyColumn: options.keyColumn,
        keyType: options.keyType,
        keyRanges,
        tables: options.tables,
        excludeTables: options.excludeTables,
        maxFileBytes: options.maxFileSize,
        concurrency: options.concurrency,
        compression: options.compression,
        logger: context.logger,
        signal: context.signal,
        onProgress: (progress) => context.reporter.progress(progress),
      });
      return { result, summary: renderSnapshot(result) };
    } finally {
      await storage.close();
    }
  });
  return command;
}
