import type { MultirestoreResult } from '../../operations/multirestore.ts';
import { formatBytes, formatCount, renderTable } from '../../report/format.ts';
import {
  instanceFields,
  listFlag,
  numberFlag,
  type OperationCommand,
  storageFields,
} from '../operation-command.ts';
import { addInstanceOptions, addStorageOptions } from '../options.ts';

export function renderMultirestore(result: MultirestoreResult): string {
  const table = renderTable(
    ['SOURCE', 'KEY RANGE', 'POSITION', 'ROWS'],
    result.sources.map((s) => [`${s.dir}@${s.name}`, s.keyRange, s.position || '-', formatCount(s.rows)]),
  );
  const files = `${result.files.loaded} files loaded${result.files.alreadyLoaded > 0 ? `, ${result.files.alreadyLoaded} already loaded` : ''}`;
  const p = result.storedPrograms;
  const programs = `${p.triggers} triggers, ${p.procedures} procedures, ${p.functions} functions, ${p.events} events${p.skipped > 0 ? ` (${p.skipped} left out)` : ''}`;
  const indexes =
    result.indexesAfterLoad.length > 0
      ? `\nsecondary indexes built after the load: ${result.indexesAfterLoad.join(', ')}`
      : '';
  const definers = result.definersReplaced.map(
    (r) => `\n${r.object} is defined by the loading user (its DEFINER ${r.definer} does not exist here)`,
  );
  return `${table}\n${result.resumed ? 'resumed: ' : ''}${result.database}: ${result.tables} tables, ${result.views} views, ${programs}; ${files}; ${formatCount(result.rows)} rows (${formatBytes(result.bytes)} stored) in ${result.seconds.toFixed(1)}s${result.checkpoints ? '; checkpoints written' : ''}${indexes}${definers.join('')}`;
}

export const multirestoreCommand: OperationCommand<'multirestore'> = {
  operation: 'multirestore',
  declare: (program) =>
    addStorageOptions(
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
          )
          .option(
            '--replace-stored-programs',
            'replace triggers, procedures, functions and events of the names the snapshots hold',
          )
          .option(
            '--skip-stored-programs',
            'load the tables and views without the triggers, procedures, functions and events the snapshots hold',
          )
          .option(
            '--definer-fallback',
            'define views and stored programs whose DEFINER does not exist here as the loading user',
          ),
      ),
    ),
  toRequest: (flags) => ({
    ...storageFields(flags),
    ...instanceFields(flags),
    sources: listFlag(flags.sources),
    database: flags.database,
    fetchConcurrency: numberFlag(flags.fetchConcurrency),
    insertConcurrency: numberFlag(flags.insertConcurrency),
    tableConcurrency: numberFlag(flags.tableConcurrency),
    writeBinlogs: flags.writeBinlogs,
    checkpoints: flags.checkpoints,
    dontStartReplication: flags.dontStartReplication,
    force: flags.force,
    replaceStoredPrograms: flags.replaceStoredPrograms,
    skipStoredPrograms: flags.skipStoredPrograms,
    definerFallback: flags.definerFallback,
  }),
  render: renderMultirestore,
};
