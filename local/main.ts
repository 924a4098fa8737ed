import fs from 'node:fs/promises';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { reportCrash } from '../agent/report/console.ts';
import { ConfigError } from '../cdk/config.ts';
import { ExitCode, UsageError } from '../core/errors.ts';
import { createLogger, formatLogRecord } from '../core/log.ts';
import { absoluteUrl, checkDemoFlags, type DemoFlags, type DemoFlagsGiven } from './demo/flags.ts';
import { ExecutionDisplay } from './display.ts';
import { LocalStateMachines } from './runner.ts';
import type { MachineName } from './template.ts';

/** Exit codes for the stable error codes an execution fails with (as the agent CLI uses them). */
const exitCodeOfError: Record<string, number> = {
  USAGE: ExitCode.usage,
  NO_BACKUP: ExitCode.noBackup,
  EXISTING_DATA: ExitCode.existingData,
  VERIFICATION_FAILED: ExitCode.verificationFailed,
  HASH_MISMATCH: ExitCode.verificationFailed,
  INVALID_MANIFEST: ExitCode.verificationFailed,
  INSTANCE_BUSY: ExitCode.instanceBusy,
  SERVING_HOST: ExitCode.usage,
};

export interface LocalIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Aborted on SIGINT/SIGTERM: the running execution stops its agents. */
  signal?: AbortSignal;
}

interface LocalMachineOptions {
  input: string;
  storage: string;
  topology?: string;
  json?: boolean;
  verbose?: boolean;
  agentCommand?: string;
}

/**
 * `stepback-local backup|restore|reshard|drill --input file.json [--storage URL] [--topology URL] [--json]`
 * and `stepback-local demo [--keep]`.
 */
export async function runLocalCli(argv: string[], io: LocalIo): Promise<number> {
  let exitCode = 0;
  const program = new Command('stepback-local')
    .description(
      'Run the stepback state machines on this machine: Lambdas in-process, the agent through the SSM document as the SSM agent runs it',
    )
    .exitOverride()
    .configureOutput({ writeOut: (t) => io.stdout.write(t), writeErr: (t) => io.stderr.write(t) });
  for (const machine of ['backup', 'restore', 'reshard', 'drill'] as MachineName[]) {
    program
      .command(machine)
      .description(`run the ${machine[0]!.toUpperCase()}${machine.slice(1)} state machine`)
      .requiredOption('--input <file>', 'the execution input (JSON), as pasted into the console; - for stdin')
      .option(
        '--storage <url>',
        'backup storage: file:///abs/dir or s3://bucket/prefix',
        'file://./stepback-backups',
      )
      .option(
        '--topology <url>',
        'topology store for keyspaces and vschema rebuilds: file:///abs/dir or ssm:/prefix',
      )
      .option(
        '--agent-command <path>',
        'the stepback executable the agent document runs (cdk.json agent.command; default: this project’s bin/stepback.js)',
      )
      .option('--json', 'print the outcome as one JSON line')
      .option('--verbose', 'debug logging')
      .action(async (options: LocalMachineOptions) => {
        const display = new ExecutionDisplay(io.stderr);
        const logger = createLogger(
          (record) => display.line(formatLogRecord(record)),
          options.verbose ? 'debug' : 'info',
        );
        let text: string;
        try {
          text =
            options.input === '-'
              ? await readStdin()
              : await fs.readFile(path.resolve(io.cwd, options.input), 'utf8');
        } catch (error) {
          io.stderr.write(`error: cannot read --input ${options.input}: ${(error as Error).message}\n`);
          exitCode = ExitCode.usage;
          return;
        }
        let input: unknown;
        try {
          input = JSON.parse(text);
        } catch (error) {
          io.stderr.write(`error: ${options.input} is not JSON: ${(error as Error).message}\n`);
          exitCode = ExitCode.usage;
          return;
        }
        let machines: LocalStateMachines;
        try {
          machines = new LocalStateMachines(
            options.agentCommand ? { agentCommand: path.resolve(io.cwd, options.agentCommand) } : {},
          );
        } catch (error) {
          if (!(error instanceof ConfigError)) throw error;
          io.stderr.write(`error: --agent-command: ${error.message}\n`);
          exitCode = ExitCode.usage;
          return;
        }
        const outcome = await machines.run(machine, input, {
          storageUrl: absoluteUrl(options.storage, io.cwd),
          ...(options.topology ? { topologyUrl: absoluteUrl(options.topology, io.cwd) } : {}),
          env: io.env,
          logger,
          ...(io.signal ? { signal: io.signal } : {}),
          ...(options.json ? {} : { onEvent: (event) => display.event(event) }),
        });
        display.done();
        if (options.json) io.stdout.write(`${JSON.stringify(outcome)}\n`);
        if (outcome.status === 'SUCCEEDED') {
          if (!options.json) io.stdout.write(`${JSON.stringify(outcome.output, null, 2)}\n`);
          return;
        }
        io.stderr.write(`error: ${machine} failed: ${outcome.error}: ${outcome.cause}\n`);
        exitCode = exitCodeOfError[outcome.error] ?? ExitCode.failure;
      });
  }
  program
    .command('demo')
    .description(
      'start private MariaDB instances with sample data in a temp directory and run the Backup, Restore and Reshard state machines on them, with a summary of what was verified',
    )
    .option('--keep', 'leave the instances running and the files in place, and print how to connect')
    .option('--rows <n>', 'rows of sample data in all', '200000')
    .option('--storage <url>', 'backup storage (default: a directory in the demo temp directory)')
    // `npm run demo --rows 5000` leaves `5000` as an argument: checkDemoFlags explains why.
    .allowExcessArguments()
    .action(async (options: DemoFlagsGiven, command: Command) => {
      let flags: DemoFlags;
      try {
        flags = await checkDemoFlags(options, io.env, io.cwd, command.args);
      } catch (error) {
        if (!(error instanceof UsageError)) throw error;
        io.stderr.write(`error: ${error.message}\n${error.hint ? `  what to do: ${error.hint}\n` : ''}`);
        exitCode = ExitCode.usage;
        return;
      }
      const { runDemo } = await import('./demo/demo.ts');
      exitCode = await runDemo({
        rows: flags.rows,
        keep: flags.keep,
        ...(flags.storageUrl ? { storageUrl: flags.storageUrl } : {}),
        stdout: io.stdout,
        stderr: io.stderr,
        env: io.env,
        ...(io.signal ? { signal: io.signal } : {}),
      });
    });
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.code === 'commander.helpDisplayed' || error.code === 'commander.help' ? 0 : ExitCode.usage;
    }
    throw error;
  }
  return exitCode;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function main(): Promise<void> {
  const controller = new AbortController();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      // A second signal does not wait for the clean-up.
      if (controller.signal.aborted) process.exit(130);
      process.stderr.write(`\n${signal}: stopping, then cleaning up (again to quit at once)\n`);
      controller.abort(new Error(`interrupted by ${signal}`));
    });
  }
  const verbose = process.argv.includes('--verbose');
  const crash = (error: unknown) => {
    reportCrash(error, process.stderr, verbose);
    process.exit(ExitCode.failure);
  };
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);
  try {
    process.exitCode = await runLocalCli(process.argv.slice(2), {
      stdout: process.stdout,
      stderr: process.stderr,
      env: process.env,
      cwd: process.cwd(),
      signal: controller.signal,
    });
  } catch (error) {
    crash(error);
  }
}
