import type { SnapshotResult } from '../../operations/snapshot.ts';
import { formatBytes, formatCount, renderTable } from '../../report/format.ts';
import {
  instanceFields,
  listFlag,
  numberFlag,
  type OperationCommand,
  storageFields,
} from '../operation-command.ts';
import { addInstanceOptions, addStorageOptions } from '../options.ts';

export function renderSnapshot(result: SnapshotResult): string {
  const table = renderTable(
    ['KEY RANGE', 'DIR', 'NAME', 'ROWS', 'STORED'],
    result.snapshots.map((s) => [s.keyRange, s.dir, s.name, formatCount(s.rows), formatBytes(s.bytes)]),
  );
  return `${table}\nsnapshot of ${result.database} (${result.tables} tables, ${result.views} views) at ${result.role} position ${result.position || '(empty)'} in ${result.seconds.toFixed(1)}s\n${result.consistency.method}: ${result.consistency.why}; ${result.consistency.held} held ${result.consistency.heldSeconds.toFixed(3)}s${result.replicationKeptStopped ? '; replication left stopped' : ''}`;
}

export const snapshotCommand: OperationCommand<'snapshot'> = {
  operation: 'snapshot',
  declare: (program) =>
    addStorageOptions(
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
          .option(
            '--partial-ranges',
            'key ranges that leave part of the keyspace out are meant (its rows are copied nowhere)',
          )
          .option('--tables <names>', 'only these tables and views, comma-separated (one full range only)')
          .option('--exclude-tables <names>', 'leave these tables and views out, comma-separated')
          .option('--max-file-size <size>', 'raw size of each data file before a new one starts', '64MiB')
          .option('--concurrency <n>', 'tables dumped at once', '4')
          .option('--compression <codec>', 'zstd, gzip or none', 'zstd')
          .option(
            '--keep-replication-stopped',
            'a replica: leave replication stopped after the snapshot instead of starting it again',
          )
          .option(
            '--stop-for-dump',
            'keep the instance quiesced (replication stopped, or read-only) for the whole dump instead of reading through consistent-snapshot transactions',
          )
          .option(
            '--no-evidence',
            "do not record each table's rows and checksum per key range (saves a read of every row at the snapshot's position)",
          ),
      ),
    ),
  toRequest: (flags) => ({
    ...storageFields(flags),
    ...instanceFields(flags),
    dir: flags.dir,
    database: flags.database,
    keyColumn: flags.keyColumn,
    keyType: flags.keyType,
    keyRanges: listFlag(flags.keyRanges),
    shards: numberFlag(flags.shards),
    partialRanges: flags.partialRanges,
    tables: listFlag(flags.tables),
    excludeTables: listFlag(flags.excludeTables),
    maxFileSize: flags.maxFileSize,
    concurrency: numberFlag(flags.concurrency),
    compression: flags.compression,
    keepReplicationStopped: flags.keepReplicationStopped,
    stopForDump: flags.stopForDump,
    evidence: flags.evidence,
  }),
  render: renderSnapshot,
};
