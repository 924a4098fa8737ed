import { type Command, CommanderError } from 'commander';
import type { z } from 'zod';
import type { OperationName } from '../../core/agent-request.ts';
import { readEnvironment, type StepbackEnvironment } from '../../core/environment.ts';
import { ExitCode, exitCodeOf, UsageError } from '../../core/errors.ts';
import { createLogger, formatLogRecord, type LogLevel } from '../../core/log.ts';
import { fieldErrorOf } from '../../core/operations/issues.ts';
import { ConsoleReporter, reportCrash } from '../report/console.ts';
import type { Progress } from '../report/reporter.ts';
import {
  type ActionRunner,
  asFlagError,
  type CommandContext,
  type CommandOutcome,
  type GlobalOptions,
  optionsError,
} from './command.ts';
import { backupCommand } from './commands/backup.ts';
import { registerBackups } from './commands/backups.ts';
import { binlogArchiveCommand, registerBinlogsList } from './commands/binlogs.ts';
import { catchupCommand } from './commands/catchup.ts';
import { diffCommand } from './commands/diff.ts';
import { drillCommand } from './commands/drill.ts';
import { multirestoreCommand } from './commands/multirestore.ts';
import { replicationCommand } from './commands/replication.ts';
import { restoreCommand } from './commands/restore.ts';
import { registerRun } from './commands/run.ts';
import { snapshotCommand } from './commands/snapshot.ts';
import { registerTopology, registerVSchema } from './commands/topology.ts';
import { writesCommand } from './commands/writes.ts';
import { flagOf, type OperationCommand } from './operation-command.ts';
import { StepbackCommand } from './program.ts';

export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Receives every progress update of the command as well. */
  onProgress?: (update: Progress) => void;
}

/** `backups validate` for the validate subcommand of backups. */
function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Builds the program; each action records its exit code in `outcome`. */
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

  /** The context an action runs in, and how its outcome is printed. */
  const contextFor = (self: Command) => {
    const globals = self.optsWithGlobals() as GlobalOptions & Record<string, unknown>;
    const reporter = new ConsoleReporter({
      json: Boolean(globals.json),
      quiet: Boolean(globals.quiet),
      verbose: Boolean(globals.verbose),
      stdout: io.stdout,
      stderr: io.stderr,
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
    const finish = async (work: () => Promise<CommandOutcome>) => {
      try {
        const done = await work();
        if (done.summary !== undefined && !globals.json) {
          await new ConsoleReporter({
            json: false,
            quiet: false,
            verbose: false,
            stdout: io.stdout,
            stderr: io.stderr,
            summarize: () => done.summary ?? '',
          }).succeed(done.result);
        } else {
          await reporter.succeed(done.result);
        }
        outcome.exitCode = done.exitCode ?? 0;
      } catch (error) {
        await reporter.fail(error);
        outcome.exitCode = exitCodeOf(error);
      }
    };
    return { context, finish };
  };

  const action: ActionRunner = (command, schema, handler, settings) => {
    command.exitOverride();
    command.action(async (_options: unknown, self: Command) => {
      const { context, finish } = contextFor(self);
      await finish(async () => {
        const given: Record<string, unknown> = { ...settings?.defaults?.(environment), ...self.opts() };
        for (const key of Object.keys(given)) if (given[key] === undefined) delete given[key];
        const parsed = (schema as z.ZodType).safeParse(given);
        if (!parsed.success) throw optionsError(parsed.error, given, commandPath(self));
        return handler(parsed.data as z.infer<typeof schema>, context);
      });
    });
  };

  /** An operation's command: flags → its request → the same schema and function `stepback run` uses. */
  const addOperation = <K extends OperationName>(spec: OperationCommand<K>) => {
    const command = spec.declare(program).exitOverride();
    command.action(async (_options: unknown, self: Command) => {
      const { context, finish } = contextFor(self);
      const named = (path: readonly string[]) => flagOf(spec, path);
      await finish(async () => {
        try {
          // Loaded when a command runs, not for --help or a usage error: most of the agent's code.
          const { executeOperation, parseOperationRequest } = await import('../operations/index.ts');
          const given = spec.toRequest(self.opts());
          const parsed = parseOperationRequest(spec.operation, given);
          if (!parsed.success) {
            throw fieldErrorOf(parsed.error, given, `see stepback ${commandPath(self)} --help`).named(named);
          }
          const { result, reported, failure } = await executeOperation(spec.operation, parsed.data, {
            logger: context.logger,
            env: context.env,
            signal: context.signal,
            progress: (update) => context.reporter.progress(update),
          });
          return {
            result: reported,
            summary: spec.render(result),
            ...(failure ? { exitCode: failure.exitCode } : {}),
          };
        } catch (error) {
          throw asFlagError(error, named);
        }
      });
    });
  };

  addOperation(backupCommand);
  addOperation(restoreCommand);
  registerBackups(program, action);
  addOperation(snapshotCommand);
  addOperation(multirestoreCommand);
  registerRun(program, action);
  addOperation(diffCommand);
  addOperation(drillCommand);
  addOperation(catchupCommand);
  addOperation(replicationCommand);
  addOperation(writesCommand);
  registerTopology(program, action);
  registerVSchema(program, action);
  addOperation(binlogArchiveCommand);
  registerBinlogsList(program, action);
  return program;
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
