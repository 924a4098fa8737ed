import fs from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, CommanderError } from 'commander';
import { ExitCode } from '../core/errors.ts';
import { createLogger, formatLogRecord } from '../core/log.ts';
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
};

export interface LocalIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

/** `stepback-local backup|restore|reshard --input file.json [--storage URL] [--json]` */
export async function runLocalCli(argv: string[], io: LocalIo): Promise<number> {
  let exitCode = 0;
  const program = new Command('stepback-local')
    .description(
      'Run the stepback state machines on this machine: Lambdas in-process, the agent as a child process',
    )
    .exitOverride()
    .configureOutput({ writeOut: (t) => io.stdout.write(t), writeErr: (t) => io.stderr.write(t) });
  for (const machine of ['backup', 'restore', 'reshard'] as MachineName[]) {
    program
      .command(machine)
      .description(`run the ${machine[0]!.toUpperCase()}${machine.slice(1)} state machine`)
      .requiredOption('--input <file>', 'the execution input (JSON), as pasted into the console; - for stdin')
      .option(
        '--storage <url>',
        'backup storage: file:///abs/dir or s3://bucket/prefix',
        'file://./stepback-backups',
      )
      .option('--json', 'print the outcome as one JSON line')
      .option('--verbose', 'debug logging')
      .action(async (options: { input: string; storage: string; json?: boolean; verbose?: boolean }) => {
        const logger = createLogger(
          (record) => io.stderr.write(`${formatLogRecord(record)}\n`),
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
        const storageUrl = options.storage.startsWith('file://./')
          ? pathToFileURL(path.resolve(io.cwd, options.storage.slice('file://'.length))).href
          : options.storage;
        const machines = new LocalStateMachines();
        const outcome = await machines.run(machine, input, { storageUrl, env: io.env, logger });
        if (options.json) io.stdout.write(`${JSON.stringify(outcome)}\n`);
        if (outcome.status === 'SUCCEEDED') {
          if (!options.json) io.stdout.write(`${JSON.stringify(outcome.output, null, 2)}\n`);
          return;
        }
        io.stderr.write(`error: ${machine} failed: ${outcome.error}: ${outcome.cause}\n`);
        exitCode = exitCodeOfError[outcome.error] ?? ExitCode.failure;
      });
  }
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
  process.exitCode = await runLocalCli(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
  });
}
