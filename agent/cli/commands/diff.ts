import type { Command } from 'commander';
import { z } from 'zod';
import type { StepbackEnvironment } from '../../../core/environment.ts';
import { ExitCode, UsageError } from '../../../core/errors.ts';
import { KeyRange } from '../../../core/keyrange.ts';
import { renderDiff } from '../../diff/report.ts';
import { hasDifferences } from '../../diff/types.ts';
import { type ConnectionTarget, parseMysqlUri } from '../../mysql/connection.ts';
import type { ActionRunner } from '../command.ts';
import { PositiveInt } from '../options.ts';

const DiffOptions = z
  .object({
    left: z.string().min(1),
    right: z.string().min(1),
    leftPasswordEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name')
      .optional(),
    rightPasswordEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name')
      .optional(),
    tables: z.string().optional(),
    subset: z.boolean().default(false),
    leftKeyRange: z.string().optional(),
    keyColumn: z.string().min(1).optional(),
    keyType: z.enum(['uint64', 'bytes']).default('uint64'),
    concurrency: PositiveInt.default(2),
    chunkRows: z.coerce.number().int().min(1000).max(100_000_000).default(100_000),
    checksums: z.boolean().default(true),
  })
  .refine((o) => (o.leftKeyRange === undefined) === (o.keyColumn === undefined), {
    path: ['keyColumn'],
    message: '--left-key-range and --key-column go together',
  });

/** A side's connection: the URI names host or socket, user and database; the password comes from an environment variable. */
function sideTarget(
  flag: string,
  uri: string,
  passwordEnv: string | undefined,
  env: StepbackEnvironment,
): ConnectionTarget & { database: string } {
  let password: string | undefined;
  if (passwordEnv !== undefined) {
    password = env.variable(passwordEnv);
    if (password === undefined) throw new UsageError(`${flag}-password-env: ${passwordEnv} is not set`);
  }
  const target = parseMysqlUri(uri, password);
  if (!target.database) {
    throw new UsageError(`${flag}: ${uri} names no database`, {
      hint: 'add it as the path: mysql://user@host:3306/commerce',
    });
  }
  return { ...target, database: target.database };
}

export function registerDiff(program: Command, action: ActionRunner): Command {
  const command = program
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
    .option('--left-key-range <range>', 'compare only left rows whose keyspace id is in this range, e.g. -80')
    .option('--key-column <name>', 'the keyspace id column (with --left-key-range)')
    .option('--key-type <type>', 'keyspace id type: uint64 (BIGINT UNSIGNED) or bytes (VARBINARY)', 'uint64')
    .option('--concurrency <n>', 'chunks compared at once, each on its own pair of connections', '2')
    .option('--chunk-rows <n>', 'rows per checksummed chunk', '100000')
    .option('--no-checksums', 'stream every row instead of comparing chunk checksums first');
  action(command, DiffOptions, async (options, context) => {
    const { diffDatabases } = await import('../../diff/engine.ts');
    const outcome = await diffDatabases({
      left: sideTarget('--left', options.left, options.leftPasswordEnv, context.env),
      right: sideTarget('--right', options.right, options.rightPasswordEnv, context.env),
      tables: options.tables
        ?.split(',')
        .map((t) => t.trim())
        .filter(Boolean),
      subset: options.subset,
      leftKeyRange:
        options.leftKeyRange === undefined
          ? undefined
          : {
              range: KeyRange.parse(options.leftKeyRange),
              column: options.keyColumn!,
              type: options.keyType,
            },
      concurrency: options.concurrency,
      chunkRows: options.chunkRows,
      checksums: options.checksums,
      logger: context.logger,
      onProgress: (progress) => context.reporter.progress(progress),
      signal: context.signal,
    });
    return {
      result: outcome.result,
      summary: renderDiff(outcome),
      ...(hasDifferences(outcome.result, outcome.subset) ? { exitCode: ExitCode.verificationFailed } : {}),
    };
  });
  return command;
}
