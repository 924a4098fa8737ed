import { type ParsedRequest, requestFieldName } from '../../core/agent-request.ts';
import type { StepbackEnvironment } from '../../core/environment.ts';
import { ExitCode, errorCodeOf, FieldError, messageOf, StepbackError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import { executeOperation } from '../operations/index.ts';
import type { OperationContext } from '../operations/operation.ts';
import type { Progress } from '../report/reporter.ts';
import { throttleProgress } from '../report/throttle.ts';
import { type TaskCallbacks, taskOutputProblem } from './callbacks.ts';

export interface RunRequestOptions {
  callbacks: TaskCallbacks;
  env: StepbackEnvironment;
  logger: Logger;
  signal?: AbortSignal;
  /** Between heartbeats; the first is sent before anything changes. Default 30 s. */
  heartbeatMs?: number;
  /** Pauses between tries of the first heartbeat. Default 1 s, 2 s, 4 s. */
  firstHeartbeatRetryMs?: readonly number[];
  /** Also receives every progress update (the command output's progress lines). */
  onProgress?: (update: Progress) => void;
  /** Carries the operation out (default: the operation's own code; tests pass a stand-in). */
  execute?: (
    parsed: ParsedRequest,
    context: OperationContext,
  ) => Promise<{ reported: object; failure?: StepbackError }>;
}

export interface RunOutcome {
  operation: ParsedRequest['operation'];
  /** The exit code the operation's outcome maps to. */
  exitCode: number;
  /** Which callback reached the state machine; `none` when sending it failed or the task was gone. */
  reported: 'success' | 'failure' | 'none';
  /** The stable error code sent with a failure. */
  error?: string;
  cause?: string;
}

/** Errors after which the state machine no longer waits for this task: stop working. */
const abandonedTask = new Set(['TaskTimedOut', 'TaskDoesNotExist', 'InvalidToken']);

function isAbandoned(error: unknown): boolean {
  return error instanceof Error && abandonedTask.has(error.name);
}

/** What a state machine reads of a failure: the message, then what to do, options named as request fields. */
export function failureCause(error: unknown): string {
  const named = error instanceof FieldError ? error.named(requestFieldName) : error;
  const message = messageOf(named);
  const hint = named instanceof StepbackError ? named.hintFor('fields') : undefined;
  return hint ? `${message} (what to do: ${hint})` : message;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The first heartbeat must be accepted before anything changes: a command delivered after its task
 * ended (timed out, cancelled) must do nothing. Passing failures are tried again a few times.
 */
async function firstHeartbeat(
  callbacks: TaskCallbacks,
  retryMs: readonly number[],
  logger: Logger,
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await callbacks.heartbeat();
      return;
    } catch (error) {
      if (isAbandoned(error) || attempt >= retryMs.length) throw error;
      logger.warn('the first heartbeat failed; trying again', { error: messageOf(error) });
      await sleep(retryMs[attempt]!);
    }
  }
}

/**
 * Carries out one request from a state machine: a heartbeat the state machine accepted first, the
 * operation run directly on the typed request with heartbeats while it works, and exactly one
 * success or failure callback with the result value or the error.
 */
export async function runRequest(parsed: ParsedRequest, options: RunRequestOptions): Promise<RunOutcome> {
  const { callbacks, logger } = options;
  const base = { operation: parsed.operation };
  try {
    await firstHeartbeat(callbacks, options.firstHeartbeatRetryMs ?? [1000, 2000, 4000], logger);
  } catch (error) {
    logger.error(
      `the state machine did not accept the first heartbeat (${messageOf(error)}); nothing was done`,
    );
    return {
      ...base,
      exitCode: ExitCode.failure,
      reported: 'none',
      error: 'TASK_NOT_ACCEPTED',
      cause: messageOf(error),
    };
  }

  const controller = new AbortController();
  const onAbort = () => controller.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  let beating: Promise<void> = Promise.resolve();
  const beat = () => {
    beating = callbacks.heartbeat().catch((error: unknown) => {
      if (isAbandoned(error)) {
        logger.error(
          `the state machine stopped waiting for this task (${(error as Error).name}); stopping the operation`,
        );
        controller.abort(new Error(`the task was abandoned by the state machine (${(error as Error).name})`));
      } else {
        logger.warn('a heartbeat failed; the next one is tried on time', { error: messageOf(error) });
      }
    });
  };
  const timer = setInterval(beat, options.heartbeatMs ?? 30_000);

  const toStateMachine = callbacks.progress
    ? throttleProgress(callbacks.progress.bind(callbacks))
    : undefined;
  logger.info(`running stepback ${parsed.operation}`, { operation: parsed.operation });
  let outcome: { reported: object; failure?: StepbackError } | { error: unknown };
  try {
    const execute =
      options.execute ??
      ((request, context) => executeOperation(request.operation, request.request, context));
    outcome = await execute(parsed, {
      logger,
      env: options.env,
      signal: controller.signal,
      progress: (update) => {
        options.onProgress?.(update);
        toStateMachine?.(update);
      },
    });
  } catch (error) {
    outcome = { error };
  } finally {
    clearInterval(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
  await beating;

  let error: string;
  let cause: string;
  let exitCode: number;
  if ('error' in outcome) {
    error = errorCodeOf(outcome.error);
    cause = failureCause(outcome.error);
    exitCode = outcome.error instanceof StepbackError ? outcome.error.exitCode : ExitCode.failure;
  } else if (outcome.failure) {
    // A result that means failure (rows differ) travels as the cause, for the Catch to read.
    error = outcome.failure.code;
    cause = `${outcome.failure.message}: ${JSON.stringify(outcome.reported)}`;
    exitCode = outcome.failure.exitCode;
  } else {
    const problem = taskOutputProblem(outcome.reported);
    if (!problem) {
      try {
        await callbacks.succeed(outcome.reported);
        return { ...base, exitCode: 0, reported: 'success' };
      } catch (sendError) {
        logger.error('could not report the outcome to the state machine', { error: messageOf(sendError) });
        cause = `the operation succeeded but its result was not accepted: ${messageOf(sendError)}`;
      }
    } else {
      cause = `the operation succeeded but ${problem}`;
    }
    error = 'RESULT_NOT_DELIVERED';
    exitCode = ExitCode.failure;
  }
  try {
    await callbacks.fail(error, cause);
    return { ...base, exitCode, reported: 'failure', error, cause };
  } catch (sendError) {
    logger.error('could not report the failure to the state machine', { error: messageOf(sendError) });
    return {
      ...base,
      exitCode: exitCode === 0 ? ExitCode.failure : exitCode,
      reported: 'none',
      error,
      cause,
    };
  }
}
