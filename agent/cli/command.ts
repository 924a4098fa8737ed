import type { Command } from 'commander';
import type { z } from 'zod';
import type { StepbackEnvironment } from '../../core/environment.ts';
import { FieldError, flagName, type UsageError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import { fieldErrorOf } from '../../core/operations/issues.ts';
import type { ConsoleReporter } from '../report/console.ts';

/** What every command handler gets besides its options. */
export interface CommandContext {
  logger: Logger;
  reporter: ConsoleReporter;
  env: StepbackEnvironment;
  /** Aborted on SIGINT/SIGTERM: stop, clean up, put the instance back. */
  signal: AbortSignal;
}

/** A handler's outcome: the result to print, and an exit code when a result still means failure (diff found rows). */
export interface CommandOutcome {
  result: object;
  exitCode?: number;
  /** Renders the result for people (JSON mode ignores it). */
  summary?: string;
}

export interface GlobalOptions {
  json: boolean;
  quiet: boolean;
  verbose: boolean;
}

export interface ActionSettings {
  /** Values for options not given on the command line (from the environment). */
  defaults?: (env: StepbackEnvironment) => Record<string, string | undefined>;
}

/** Runs a command's action: options through `schema` (flag errors name the flag), then `handler`. */
export type ActionRunner = <S extends z.ZodType>(
  command: Command,
  schema: S,
  handler: (options: z.infer<S>, context: CommandContext) => Promise<CommandOutcome>,
  settings?: ActionSettings,
) => void;

/**
 * Turns a zod failure on command options into a usage error naming the flag, the rule and the
 * value given (`--keep-days: must be a number, got "x"`).
 */
export function optionsError(
  error: z.ZodError,
  given: Record<string, unknown> = {},
  command = '<command>',
): UsageError {
  return fieldErrorOf(error, given, `see stepback ${command} --help`).named((path) =>
    path[0] === undefined ? 'options' : flagName(path[0]),
  );
}

/** A field error as the command line names it. */
export function asFlagError(error: unknown, flagOf: (path: readonly string[]) => string): unknown {
  return error instanceof FieldError ? error.named(flagOf) : error;
}
