import type { Command } from 'commander';
import { z } from 'zod';
import { TASK_TOKEN_PATTERN } from '../../core/agent-request.ts';
import { errorCodeOf, messageOf } from '../../core/errors.ts';
import type { ActionRunner } from '../cli/command.ts';
import { runCli } from '../cli/main.ts';
import type { TaskCallbacks } from './callbacks.ts';
import { decodeRequest } from './request.ts';
import { runRequest } from './run.ts';

const RunOptions = z.object({
  requestB64: z.string().min(1),
  taskToken: z.string().regex(new RegExp(TASK_TOKEN_PATTERN), 'must be a Step Functions task token'),
  callbackFd: z.coerce.number().int().min(3).max(1024).optional(),
  heartbeatSeconds: z.coerce.number().int().min(1).max(60).default(30),
});

/** `stepback run`: the entry the SSM document invokes on a DB host. */
export function registerRun(program: Command, action: ActionRunner): Command {
  const run = program
    .command('run')
    .description('carry out a state machine request and report it with the task token (SSM entry)')
    .option('--request-b64 <base64>', 'the request: the operation and its fields, JSON in base64')
    .option('--task-token <token>', 'the Step Functions task token to report to')
    .option(
      '--callback-fd <fd>',
      'report as JSON lines on this inherited file descriptor instead of Step Functions',
    )
    .option('--heartbeat-seconds <n>', 'seconds between heartbeats (default 30)');
  run.hook('preAction', (command) => {
    // SSM's ENV_VAR parameters and the local runner's callback channel (TEMP agent contract).
    const given = command.opts();
    if (given.requestB64 === undefined && process.env.SSM_request)
      command.setOptionValue('requestB64', process.env.SSM_request);
    if (given.taskToken === undefined && process.env.SSM_taskToken)
      command.setOptionValue('taskToken', process.env.SSM_taskToken);
    if (given.callbackFd === undefined && process.env.STEPBACK_CALLBACK_FD)
      command.setOptionValue('callbackFd', process.env.STEPBACK_CALLBACK_FD);
  });
  action(run, RunOptions, async (options, context) => {
    const { FdTaskCallbacks, SfnTaskCallbacks } = await import('./callbacks.ts');
    const callbacks: TaskCallbacks =
      options.callbackFd !== undefined
        ? new FdTaskCallbacks(options.callbackFd)
        : new SfnTaskCallbacks(options.taskToken);
    let request: ReturnType<typeof decodeRequest>;
    try {
      request = decodeRequest(options.requestB64);
    } catch (error) {
      // The state machine waits on this token: tell it now rather than at the heartbeat timeout.
      await callbacks.fail(errorCodeOf(error), messageOf(error)).catch((sendError: unknown) => {
        context.logger.error('could not report the bad request', { error: messageOf(sendError) });
      });
      throw error;
    }
    const outcome = await runRequest(request, {
      callbacks,
      execute: runCli,
      stderr: process.stderr,
      env: process.env,
      logger: context.logger,
      signal: context.signal,
      heartbeatMs: options.heartbeatSeconds * 1000,
    });
    const summary =
      outcome.reported === 'success'
        ? `${outcome.operation} succeeded; reported`
        : `${outcome.operation} failed (${outcome.error ?? 'unknown'}); ${outcome.reported === 'none' ? 'NOT reported' : 'reported'}`;
    return { result: outcome, exitCode: outcome.exitCode, summary };
  });
  return run;
}
