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

/** Turns a zod failure on command options into a usage error naming the flag and the rule. */
export function optionsError(error: z.ZodError): UsageError {
  const issue = error.issues[0];
  const flag = issue?.path.length ? flagName(issue.path[0]!) : 'options';
  return new UsageError(`${flag}: ${issue?.message ?? 'invalid'}`, { hint: 'see stepback <command> --help' });
}
