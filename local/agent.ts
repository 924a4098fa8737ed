import { createInterface } from 'node:readline';
import type { Progress } from '../agent/report/reporter.ts';
import { parseCallbackLine } from '../agent/run/callbacks.ts';
import type { Logger } from '../core/log.ts';
import type { LocalRunCommand, SendCommandInput } from './run-command.ts';
import { taskError } from './task-error.ts';

/**
 * The tasks waiting for a callback, by task token: what SendTaskSuccess, SendTaskFailure and the
 * heartbeat timeout close in Step Functions. A closed task ignores later callbacks (in AWS they
 * get TaskDoesNotExist).
 */
export class LocalTasks {
  readonly #open = new Map<string, { resolve: (output: unknown) => void; reject: (error: Error) => void }>();

  /** Opens the task of `token`; the promise settles when a callback closes it. */
  wait(token: string): Promise<unknown> {
    if (this.#open.has(token)) throw new Error(`task token ${token} is already waiting`);
    return new Promise((resolve, reject) => this.#open.set(token, { resolve, reject }));
  }

  /** False when the task was no longer waiting. */
  succeed(token: string, output: unknown): boolean {
    const task = this.#open.get(token);
    if (!task) return false;
    this.#open.delete(token);
    task.resolve(output);
    return true;
  }

  fail(token: string, error: string, cause: string): boolean {
    const task = this.#open.get(token);
    if (!task) return false;
    this.#open.delete(token);
    task.reject(taskError(error, cause));
    return true;
  }
}

export interface AgentTaskOptions {
  runCommand: LocalRunCommand;
  tasks: LocalTasks;
  logger: Logger;
  /** A silent agent fails the task after this long (HeartbeatSeconds). */
  heartbeatSeconds?: number;
  signal?: AbortSignal;
  /** The agent's progress updates as it sends them. */
  onProgress?: (update: Progress) => void;
}

/**
 * An `ssm:sendCommand.waitForTaskToken` task on this machine: sends the command through the local
 * Run Command, opens the task under the command's taskToken and waits for the agent's callbacks
 * (JSON lines on its callback fd), the heartbeat timeout, or the failure path of a command that
 * ended without reporting. Settles once the command has ended too, so no script outlives its task.
 */
export async function runAgentTask(input: SendCommandInput, options: AgentTaskOptions): Promise<unknown> {
  const token = input.Parameters?.taskToken?.[0];
  if (!token) throw taskError('States.TaskFailed', 'sendCommand without a taskToken parameter');
  const host = input.InstanceIds?.[0] ?? '(none)';
  const { tasks } = options;
  const outcome = tasks.wait(token);
  let command: Awaited<ReturnType<LocalRunCommand['send']>>;
  try {
    command = await options.runCommand.send(input);
  } catch (error) {
    tasks.fail(token, (error as Error).name, (error as Error).message);
    return outcome;
  }

  let silentFor: NodeJS.Timeout | undefined;
  const watch = () => {
    if (!options.heartbeatSeconds) return;
    clearTimeout(silentFor);
    silentFor = setTimeout(() => {
      if (
        tasks.fail(
          token,
          'States.HeartbeatTimeout',
          `the agent on ${host} sent no heartbeat in ${options.heartbeatSeconds}s`,
        )
      ) {
        command.cancel();
      }
    }, options.heartbeatSeconds * 1000);
  };
  watch();
  const onAbort = () => {
    tasks.fail(token, 'States.Runtime', `the execution was stopped while the agent on ${host} worked`);
    command.cancel();
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (command.callbacks) {
    createInterface({ input: command.callbacks }).on('line', (line) => {
      const message = parseCallbackLine(line);
      if (!message) return;
      if (message.callback === 'heartbeat') watch();
      else if (message.callback === 'progress') options.onProgress?.(message.progress);
      else if (message.callback === 'success') tasks.succeed(token, message.output);
      else tasks.fail(token, message.error, message.cause);
    });
  }
  try {
    const result = await outcome;
    await command.done;
    return result;
  } catch (error) {
    await command.done;
    throw error;
  } finally {
    clearTimeout(silentFor);
    options.signal?.removeEventListener('abort', onAbort);
    options.logger.debug(`agent command ${command.commandId} on ${host} ended`);
  }
}
