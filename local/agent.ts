import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Progress } from '../agent/report/reporter.ts';
import { parseCallbackLine } from '../agent/run/callbacks.ts';
import type { Logger } from '../core/log.ts';

const stepbackBin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'stepback.js');

/** The parameters of an `ssm:sendCommand` task as the state machine builds them. */
export interface SendCommandParameters {
  DocumentName?: string;
  InstanceIds?: string[];
  Parameters?: { request?: string[]; taskToken?: string[] };
}

/** An error Step Functions would see: `name` is the Error a Catch matches, `message` the Cause. */
export function taskError(name: string, cause: string): Error {
  const error = new Error(cause);
  error.name = name;
  return error;
}

export interface LocalAgentOptions {
  /** Environment of the agent process (storage endpoints, credentials, passwords). */
  env: NodeJS.ProcessEnv;
  logger: Logger;
  /** A silent agent is stopped after this long, as HeartbeatSeconds would in AWS. */
  heartbeatSeconds?: number;
  signal?: AbortSignal;
  /** The agent's progress updates as it sends them. */
  onProgress?: (update: Progress) => void;
  /**
   * The program and arguments that stand for `stepback` (default: this project's bin/stepback.js
   * on this Node); `run --request-b64 … --task-token … --callback-fd 3` is appended.
   */
  agentCommand?: [string, ...string[]];
}

/**
 * What SSM Run Command does in AWS, on this machine: starts `stepback run` with the same request
 * and token, and resolves with the callback it sends (here JSON lines on fd 3).
 */
export async function runAgentLocally(
  parameters: SendCommandParameters,
  options: LocalAgentOptions,
): Promise<unknown> {
  const request = parameters.Parameters?.request?.[0];
  const token = parameters.Parameters?.taskToken?.[0];
  if (!request || !token) throw taskError('States.TaskFailed', 'sendCommand without request or taskToken');
  const host = parameters.InstanceIds?.[0] ?? '(none)';
  const [program, ...programArgs] = options.agentCommand ?? [process.execPath, stepbackBin];
  const child = spawn(
    program,
    [...programArgs, 'run', '--request-b64', request, '--task-token', token, '--callback-fd', '3'],
    { env: options.env, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] },
  );
  let stderrTail = '';
  child.stderr?.on('data', (data: Buffer) => {
    stderrTail = (stderrTail + data.toString()).slice(-4096);
  });
  child.stdout?.resume();
  const onAbort = () => child.kill('SIGTERM');
  options.signal?.addEventListener('abort', onAbort, { once: true });

  let outcome: { ok: true; output: unknown } | { ok: false; error: string; cause: string } | undefined;
  let silentFor: NodeJS.Timeout | undefined;
  let timedOut = false;
  const watch = () => {
    if (!options.heartbeatSeconds) return;
    clearTimeout(silentFor);
    silentFor = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
    }, options.heartbeatSeconds * 1000);
  };
  watch();
  const lines = createInterface({ input: child.stdio[3] as Readable });
  lines.on('line', (line) => {
    const message = parseCallbackLine(line);
    if (!message) return;
    if (message.callback === 'heartbeat') watch();
    else if (message.callback === 'progress') options.onProgress?.(message.progress);
    else if (message.callback === 'success') outcome ??= { ok: true, output: message.output };
    else outcome ??= { ok: false, error: message.error, cause: message.cause };
  });
  const exit = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  }).finally(() => {
    clearTimeout(silentFor);
    options.signal?.removeEventListener('abort', onAbort);
  });
  options.logger.debug(`agent on ${host} exited with ${exit}`);
  if (timedOut)
    throw taskError(
      'States.HeartbeatTimeout',
      `the agent on ${host} sent no heartbeat in ${options.heartbeatSeconds}s`,
    );
  if (!outcome) {
    throw taskError(
      'States.TaskFailed',
      `the agent on ${host} exited with ${exit} without reporting:\n${stderrTail.trim()}`,
    );
  }
  if (!outcome.ok) throw taskError(outcome.error, outcome.cause);
  return outcome.output;
}
