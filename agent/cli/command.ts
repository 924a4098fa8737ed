import type { Command } from 'commander';
import type { z } from 'zod';
import type { StepbackEnvironment } from '../../core/environment.ts';
import { UsageError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
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

/** Runs a command's action: options through `schema` (flag errors name the flag), then `handler`. */
export type ActionRunner = <S extends z.ZodType>(
  command: Command,
  schema: S,
  handler: (options: z.infer<S>, context: CommandContext) => Promise<CommandOutcome>,
) => void;

export function flagName(key: PropertyKey): string {
  return `--${String(key).replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/**
 * Turns a zod failure on command options into a usage error naming the flag, the rule and the
 * value given (`--keep-days: must be a number, got "x"`).
 */
export function optionsError(
  error: z.ZodError,
  given: Record<string, unknown> = {},
  command = '<command>',
): UsageError {
  const issue = error.issues[0];
  const key = issue?.path[0];
  const flag = key !== undefined ? flagName(key) : 'options';
  const value = key !== undefined ? given[String(key)] : undefined;
  const shown = typeof value === 'string' ? `, got ${JSON.stringify(value)}` : '';
  return new UsageError(`${flag}: ${issue ? ruleOf(issue, value) : 'invalid'}${shown}`, {
    hint: `see stepback ${command} --help`,
  });
}

/** zod's wording of the common rules, in the words of a command line. */
function ruleOf(issue: z.core.$ZodIssue, value: unknown): string {
  switch (issue.code) {
    case 'invalid_type':
      return value === undefined ? 'is required' : `must be a ${issue.expected}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map(String).join(', ')}`;
    case 'too_small':
      return `must be ${issue.inclusive === false ? 'more than' : 'at least'} ${String(issue.minimum)}`;
    case 'too_big':
      return `must be ${issue.inclusive === false ? 'less than' : 'at most'} ${String(issue.maximum)}`;
    default:
      return issue.message;
  }
}
