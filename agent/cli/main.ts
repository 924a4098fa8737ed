import { type Command, CommanderError } from 'commander';
import type { z } from 'zod';
import { readEnvironment, type StepbackEnvironment } from '../../core/environment.ts';
import { ExitCode, exitCodeOf, UsageError } from '../../core/errors.ts';
import { createLogger, formatLogRecord, type LogLevel } from '../../core/log.ts';
import { ConsoleReporter, reportCrash } from '../report/console.ts';
import type { Progress } from '../report/reporter.ts';
import { registerRun } from '../run/command.ts';
import { type ActionRunner, type CommandContext, type GlobalOptions, optionsError } from './command.ts';
import { registerBackup } from './commands/backup.ts';
import { registerBackups } from './commands/backups.ts';
import { registerDiff } from './commands/diff.ts';
import { registerMultirestore } from './commands/multirestore.ts';
import { registerRestore } from './commands/restore.ts';
import { registerSnapshot } from './commands/snapshot.ts';
import { registerTopology, registerVSchema } from './commands/topology.ts';
import { StepbackCommand } from './program.ts';

export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Receives every progress update of the command as well (the agent's local callbacks). */
  onProgress?: (update: Progress) => void;
}

/** Builds the program; `run` records the outcome of whichever action commander dispatches. */
function buildProgram(io: CliIo, environment: StepbackEnvironment, outcome: { exitCode: number }): Command {
  const program = new StepbackCommand('stepback')
    .description('Backup, restore and resharding for MySQL and MariaDB, driven by AWS Step Functions')
    .option('--json', 'print the result as one JSON object on the last line of stdout')
    .option('--quiet', 'no progress output')
    .option('--verbose', 'debug logging, and stack traces with errors')
    .showHelpAfterError('(see --help)')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    });

  const action: ActionRunner = (command, schema, handler) => {
    command.exitOverride();
    command.action(async (_options: unknown, self: Command) => {
      const globals = self.optsWithGlobals() as GlobalOptions & Record<string, unknown>;
      const reporter = new ConsoleReporter({
        json: Boolean(globals.json),
        quiet: Boolean(globals.quiet),
        verbose: Boolean(globals.verbose),
        stdout: io.stdout as never,
        stderr: io.stderr as never,
        ...(io.onProgress ? { onProgress: io.onProgress } : {}),
      });
      const level: LogLevel = globals.verbose ? 'debug' : globals.quiet ? 'warn' : 'info';
      const logger = createLogger((record) => reporter.log(formatLogRecord(record)), level);
      const context: CommandContext = {
        logger,
        reporter,
        env: environment,
        signal: io.signal ?? new AbortController().signal,
      };
      try {
        const given = self.opts();
        const parsed = (schema as z.ZodType).safeParse(given);
        if (!parsed.success) throw optionsError(parsed.error, given, commandPath(self));
        const result = await handler(parsed.data as never, context);
        if (result.summary !== undefined && !globals.json) {
          await new ConsoleReporter({
            json: false,
            quiet: false,
            verbose: false,
            stdout: io.stdout as never,
            stderr: io.stderr as never,
            summarize: () => result.summary ?? '',
          }).succeed(result.result);
        } else {
          await reporter.succeed(result.result);
        }
        outcome.exitCode = result.exitCode ?? 0;
      } catch (error) {
        await reporter.fail(error);
        outcome.exitCode = exitCodeOf(error);
      }
    });
  };

  registerBackup(program, action);
  registerRestore(program, action);
  registerBackups(program, action);
  registerSnapshot(program, action);
  registerMultirestore(program, action);
  registerRun(program, action);
  registerDiff(program, action);
  registerTopology(program, action);
  registerVSchema(program, action);
  return program;
}

/** `backups validate` for the validate subcommand of backups. */
function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Runs the CLI on `argv` (without node and script) and returns the exit code. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const outcome = { exitCode: 0 };
  const program = buildProgram(io, readEnvironment(io.env), outcome);
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      if (
        error.code === 'commander.helpDisplayed' ||
        error.code === 'commander.version' ||
        error.code === 'commander.help'
      ) {
        return 0;
      }
      // commander already printed its message, which names the flag.
      return ExitCode.usage;
    }
    if (error instanceof UsageError) {
      io.stderr.write(`error: ${error.message}\n`);
      return ExitCode.usage;
    }
    throw error;
  }
  return outcome.exitCode;
}

/** The process entry: signals abort the running command, which then cleans up and exits. */
export async function main(): Promise<void> {
  const controller = new AbortController();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => controller.abort(new Error(`interrupted by ${signal}`)));
  }
  const verbose = process.argv.includes('--verbose');
  const crash = (error: unknown) => {
    reportCrash(error, process.stderr, verbose);
    process.exit(ExitCode.failure);
  };
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);
  try {
    process.exitCode = await runCli(process.argv.slice(2), {
      stdout: process.stdout,
      stderr: process.stderr,
      env: process.env,
      signal: controller.signal,
    });
  } catch (error) {
    crash(error);
  }
}
