import { renderDiff } from '../../diff/report.ts';
import { listFlag, numberFlag, type OperationCommand } from '../operation-command.ts';

export const diffCommand: OperationCommand<'diff'> = {
  operation: 'diff',
  declare: (program) =>
    program
      .command('diff')
      .description(
        'compare the rows of two databases: prove a copy, a restore or a split is right (exit 5 when they differ)',
      )
      .requiredOption(
        '--left <uri>',
        'the source: mysql://user@host:port/db or mysql://user@localhost/db?socket=/path',
      )
      .requiredOption('--right <uri>', 'the copy, in the same form')
      .option('--left-password-env <var>', 'environment variable holding the left password')
      .option('--right-password-env <var>', 'environment variable holding the right password')
      .option('--tables <list>', 'comma-separated tables (default: every base table on the left)')
      .option('--subset', 'the right must be a subset of the left: rows only on the left are allowed')
      .option(
        '--left-key-range <range>',
        'compare only left rows whose keyspace id is in this range, e.g. -80',
      )
      .option('--key-column <name>', 'the keyspace id column (with --left-key-range)')
      .option(
        '--key-type <type>',
        'keyspace id type: uint64 (BIGINT UNSIGNED) or bytes (VARBINARY)',
        'uint64',
      )
      .option('--concurrency <n>', 'chunks compared at once, each on its own pair of connections', '2')
      .option('--chunk-rows <n>', 'rows per checksummed chunk', '100000')
      .option('--no-checksums', 'stream every row instead of comparing chunk checksums first'),
  toRequest: (flags) => ({
    left: flags.left,
    right: flags.right,
    leftPasswordEnv: flags.leftPasswordEnv,
    rightPasswordEnv: flags.rightPasswordEnv,
    tables: listFlag(flags.tables),
    subset: flags.subset,
    leftKeyRange: flags.leftKeyRange,
    keyColumn: flags.keyColumn,
    keyType: flags.keyType,
    concurrency: numberFlag(flags.concurrency),
    chunkRows: numberFlag(flags.chunkRows),
    checksums: flags.checksums,
  }),
  render: (report) => renderDiff({ result: report, notes: report.notes, subset: report.subset }),
};
