import { Writable } from 'node:stream';
import type { z } from 'zod';
import {
  type AgentOperation,
  type AgentRequest,
  BackupRequest,
  DiffRequest,
  MultirestoreRequest,
  RestoreRequest,
  SnapshotRequest,
} from '../../core/agent-request.ts';
import { ExitCode, messageOf } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import type { CliIo } from '../cli/main.ts';
import type { Progress } from '../report/reporter.ts';
import type { TaskCallbacks } from './callbacks.ts';
import { requestArgv } from './request.ts';

/** Runs a stepback command line in this process and returns its exit code (`runCli`). */
export type CommandExecutor = (argv: string[], io: CliIo) => Promise<number>;

export interface RunRequestOptions {
  callbacks: TaskCallbacks;
  execute: CommandExecutor;
  /** Where the command's progress and log lines go (SSM keeps them as the command output). */
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  logger: Logger;
  signal?: AbortSignal;
  /** Between heartbeats; the first is sent at once. Default 30 s (Step Functions waits HeartbeatSeconds). */
  heartbeatMs?: number;
}

export interface RunOutcome {
  operation: AgentOperation;
  /** The command's exit code. */
  exitCode: number;
  /** Which callback reached the state machine; `none` when sending it failed. */
  reported: 'success' | 'failure' | 'none';
  /** The stable error code sent with a failure. */
  error?: string;
  cause?: string;
}

/** Stable codes for the exit codes of core/errors.ts, for a command that printed no JSON error. */
const codeOfExit: Record<number, string> = {
  [ExitCode.usage]: 'USAGE',
  [ExitCode.noBackup]: 'NO_BACKUP',
  [ExitCode.existingData]: 'EXISTING_DATA',
  [ExitCode.verificationFailed]: 'VERIFICATION_FAILED',
  [ExitCode.instanceBusy]: 'INSTANCE_BUSY',
};

/** Progress reaches the callbacks at most this often per phase (the first and last of a phase always). */
const progressIntervalMs = 500;

/** Forwards progress updates: a new phase and a finished one at once, others at most every interval. */
export function throttleProgress(
  forward: (update: Progress) => void,
  intervalMs = progressIntervalMs,
  now: () => number = Date.now,
): (update: Progress) => void {
  let phase: string | undefined;
  let last = 0;
  return (update) => {
    const time = now();
    const finished =
      (update.bytesTotal !== undefined && update.bytesDone === update.bytesTotal) ||
      (update.itemsTotal !== undefined && update.itemsDone === update.itemsTotal);
    if (update.phase === phase && !finished && time - last < intervalMs) return;
    phase = update.phase;
    last = time;
    forward(update);
  };
}

/** Errors after which the state machine no longer waits for this task: stop working. */
const abandonedTask = new Set(['TaskTimedOut', 'TaskDoesNotExist', 'InvalidToken']);

/** Keeps the last `limit` characters written, passing everything on to `forward`. */
class TailStream extends Writable {
  text = '';
  readonly #limit: number;
  readonly #forward: NodeJS.WritableStream | undefined;

  constructor(limit: number, forward?: NodeJS.WritableStream) {
    super();
    this.#limit = limit;
    this.#forward = forward;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.text = (this.text + chunk.toString('utf8')).slice(-this.#limit);
    if (this.#forward && !this.#forward.write(chunk)) this.#forward.once('drain', () => done());
    else done();
  }
}

function lastJsonLine(text: string): unknown {
  const line = text.trimEnd().split('\n').pop() ?? '';
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}

/**
 * A hint names command-line flags; whoever started the task sets request fields instead:
 * `pass --delete-before-restore` becomes `pass deleteBeforeRestore: true`.
 */
export function hintForRequest(hint: string, request: AgentRequest): string {
  const shape = requestSchemas[request.operation].shape as Record<string, z.ZodType>;
  return hint.replace(/--([a-z][a-z0-9-]*)/g, (flag, name: string) => {
    const field = name.replace(/-([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
    const schema = shape[field];
    if (!schema || field === 'operation') return flag;
    const isSwitch = schema.safeParse(true).success && !schema.safeParse('x').success;
    return isSwitch ? `${field}: true` : field;
  });
}

const requestSchemas = {
  backup: BackupRequest,
  restore: RestoreRequest,
  snapshot: SnapshotRequest,
  multirestore: MultirestoreRequest,
  diff: DiffRequest,
} as const;

/** What to report for a finished command: its JSON result, or the error code and message. */
export function outcomeOf(
  exitCode: number,
  stdout: string,
  stderr: string,
  request?: AgentRequest,
): { success: true; output: object } | { success: false; error: string; cause: string } {
  const result = lastJsonLine(stdout);
  const isObject = typeof result === 'object' && result !== null;
  if (exitCode === 0 && isObject) return { success: true, output: result };
  if (exitCode === 0) {
    return { success: false, error: 'INTERNAL', cause: 'the command succeeded but printed no JSON result' };
  }
  const printed = isObject
    ? (result as { error?: { code?: unknown; message?: unknown; hint?: unknown } }).error
    : undefined;
  if (printed && typeof printed.code === 'string') {
    const message = String(printed.message ?? '');
    const hint = typeof printed.hint === 'string' && request ? hintForRequest(printed.hint, request) : '';
    return {
      success: false,
      error: printed.code,
      cause: hint ? `${message} (what to do: ${hint})` : message,
    };
  }
  const error = codeOfExit[exitCode] ?? 'INTERNAL';
  // A result printed with a failing exit code (diff found differing rows) is the cause itself.
  if (isObject) return { success: false, error, cause: JSON.stringify(result) };
  const lines = stderr.trim().split('\n').filter(Boolean).slice(-5).join('\n');
  return { success: false, error, cause: lines || `the command exited with ${exitCode}` };
}

/**
 * Carries out one request: runs its command in-process with `--json`, beats the heartbeat while it
 * works, and ends with exactly one success or failure callback.
 */
export async function runRequest(request: AgentRequest, options: RunRequestOptions): Promise<RunOutcome> {
  const { callbacks, logger } = options;
  const controller = new AbortController();
  const onAbort = () => controller.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onAbort, { once: true });

  let beating: Promise<void> = Promise.resolve();
  const beat = () => {
    beating = callbacks.heartbeat().catch((error: unknown) => {
      const name = error instanceof Error ? error.name : '';
      if (abandonedTask.has(name)) {
        logger.error(`the state machine stopped waiting for this task (${name}); stopping the operation`);
        controller.abort(new Error(`the task was abandoned by the state machine (${name})`));
      } else {
        logger.warn('a heartbeat failed; the next one is tried on time', { error: messageOf(error) });
      }
    });
  };
  beat();
  const timer = setInterval(beat, options.heartbeatMs ?? 30_000);

  const stdout = new TailStream(512 * 1024);
  const stderr = new TailStream(8 * 1024, options.stderr);
  const argv = [...requestArgv(request), '--json'];
  logger.info(`running stepback ${argv[0]}`, { operation: request.operation });
  let exitCode: number;
  try {
    const progress = callbacks.progress?.bind(callbacks);
    exitCode = await options.execute(argv, {
      stdout,
      stderr,
      env: options.env,
      signal: controller.signal,
      ...(progress ? { onProgress: throttleProgress(progress) } : {}),
    });
  } catch (error) {
    // runCli reports command failures itself; this is a failure of the CLI machinery.
    exitCode = ExitCode.failure;
    stdout.text = `${JSON.stringify({ error: { code: 'INTERNAL', message: messageOf(error) } })}\n`;
  } finally {
    clearInterval(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
  await beating;

  const outcome = outcomeOf(exitCode, stdout.text, stderr.text, request);
  const base = { operation: request.operation, exitCode };
  try {
    if (outcome.success) {
      await callbacks.succeed(outcome.output);
      return { ...base, reported: 'success' };
    }
    await callbacks.fail(outcome.error, outcome.cause);
    return { ...base, reported: 'failure', error: outcome.error, cause: outcome.cause };
  } catch (error) {
    logger.error('could not report the outcome to the state machine', { error: messageOf(error) });
    if (outcome.success) {
      // A result the state machine refused (too large): it must still learn that the task ended.
      const cause = `the operation succeeded but its result was not accepted: ${messageOf(error)}`;
      const sent = await callbacks.fail('RESULT_NOT_DELIVERED', cause).then(
        () => true,
        () => false,
      );
      if (sent)
        return {
          ...base,
          exitCode: ExitCode.failure,
          reported: 'failure',
          error: 'RESULT_NOT_DELIVERED',
          cause,
        };
    }
    return {
      ...base,
      exitCode: exitCode === 0 ? ExitCode.failure : exitCode,
      reported: 'none',
      ...(outcome.success ? {} : { error: outcome.error, cause: outcome.cause }),
    };
  }
}
