import type { Command } from 'commander';
import { z } from 'zod';
import { Identifier } from '../../../core/manifest.ts';
import type { MultirestoreResult } from '../../engines/logical/multirestore/multirestore.ts';
import { parseSources } from '../../engines/logical/multirestore/sources.ts';
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

const MultirestoreOptions = StorageOptions.extend(InstanceOptions.shape).extend({
  sources: z.string().min(1),
  database: Identifier,
  fetchConcurrency: PositiveInt.default(4),
  insertConcurrency: PositiveInt.default(4),
  tableConcurrency: PositiveInt.default(2),
  writeBinlogs: z.boolean().default(false),
  checkpoints: z.boolean().default(false),
  dontStartReplication: z.boolean().default(false),
  force: z.boolean().default(false),
});

export function renderMultirestore(result: MultirestoreResult): string {
  const table = renderTable(
    ['SOURCE', 'KEY RANGE', 'POSITION', 'ROWS'],
    result.sources.map((s) => [`${s.dir}@${s.name}`, s.keyRange, s.position || '-', formatCount(s.rows)]),
  );
  const files = `${result.files.loaded} files loaded${result.files.alreadyLoaded > 0 ? `, ${result.files.alreadyLoaded} already loaded` : ''}`;
  return `${table}\n${result.resumed ? 'resumed: ' : ''}${result.database}: ${result.tables} tables, ${result.views} views; ${files}; ${formatCount(result.rows)} rows (${formatBytes(result.bytes)} stored) in ${result.seconds.toFixed(1)}s${result.checkpoints ? '; checkpoints written' : ''}`;
}

export function registerMultirestore(program: Command, action: ActionRunner): Command {
  const command = addStorageOptions(
    addInstanceOptions(
      program
        .command('multirestore')
        .description(
          'load logical snapshots of one or more sources into one database (resharding, merges, vertical splits)',
        )
        .requiredOption(
          '--sources <dir[@name],…>',
          'snapshots to load: a directory (its newest complete snapshot) or dir@name',
        )
        .requiredOption('--database <name>', 'the destination database')
        .option('--fetch-concurrency <n>', 'files fetched (read, verified, decompressed) at once', '4')
        .option('--insert-concurrency <n>', 'LOAD DATA statements at once', '4')
        .option('--table-concurrency <n>', 'LOAD DATA statements into one table at once', '2')
        .option(
          '--write-binlogs',
          'write the load to the binary log (default: not, so replicas do not replay it)',
        )
        .option('--checkpoints', 'write one checkpoint row per source to _stepback.checkpoint')
        .option('--dont-start-replication', "flag the checkpoint rows 'dont-start'")
        .option(
          '--force',
          'replace the tables and views the snapshots hold when the database already has tables',
        ),
    ),
  );
  action(command, MultirestoreOptions, async (options, context) => {
    const sources = parseSources(options.sources);
    const daemon = await openDaemon(options, context.logger);
    const storage = await storageFrom(options, context.env, context.logger);
    try {
      const { multirestore } = await import('../../engines/logical/multirestore/multirestore.ts');
      const result = await multirestore({
        daemon,
        storage,
        sources,
        database: options.database,
        fetchConcurrency: options.fetchConcurrency,
        insertConcurrency: options.insertConcurrency,
        tableConcurrency: options.tableConcurrency,
        writeBinlogs: options.writeBinlogs,
        checkpoints: options.checkpoints,
        dontStartReplication: options.dontStartReplication,
        force: options.force,
        logger: context.logger,
        signal: context.signal,
        onProgress: (progress) => context.reporter.progress(progress),
      });
      return { result, summary: renderMultirestore(result) };
    } finally {
      await storage.close();
    }
  });
  return command;
}
