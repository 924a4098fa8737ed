import type { Command } from 'commander';
import { z } from 'zod';
import { TASK_TOKEN_PATTERN } from '../../../core/agent-request.ts';
import { errorCodeOf, messageOf } from '../../../core/errors.ts';
import type { TaskCallbacks } from '../../run/callbacks.ts';
import type { ActionRunner } from '../command.ts';

/**
 * Where `stepback run` finds what the SSM document passes: flags, or the variables the SSM agent
 * sets for parameters with environment-variable interpolation (so the token is in no command line).
 */
const RunOptions = z.object({
  requestB64: z.string().min(1, 'is required (or the variable SSM_request)'),
  taskToken: z.string().regex(new RegExp(TASK_TOKEN_PATTERN), 'must be a Step Functions task token'),
  callbackFd: z.coerce.number().int().min(3).max(1024).optional(),
  heartbeatSeconds: z.coerce.number().int().min(1).max(60).default(30),
});

/** `stepback run`: the entry the SSM document invokes on a DB host. */
export function registerRun(program: Command, action: ActionRunner): Command {
  const run = program
    .command('run')
    .description('carry out a state machine request and report it with the task token (SSM entry)')
    .option(
      '--request-b64 <base64>',
      'the request: the operation and its fields, JSON in base64 (default: $SSM_request)',
    )
    .option('--task-token <token>', 'the Step Functions task token to report to (default: $SSM_taskToken)')
    .option(
      '--callback-fd <fd>',
      'report as JSON lines on this inherited file descriptor instead of Step Functions (default: $STEPBACK_CALLBACK_FD)',
    )
    .option('--heartbeat-seconds <n>', 'seconds between heartbeats (default 30)');
  action(
    run,
    RunOptions,
    async (options, context) => {
      const [{ FdTaskCallbacks, SfnTaskCallbacks }, { decodeRequest }, { failureCause, runRequest }] =
        await Promise.all([
          import('../../run/callbacks.ts'),
          import('../../run/request.ts'),
          import('../../run/run.ts'),
        ]);
      const callbacks: TaskCallbacks =
        options.callbackFd !== undefined
          ? new FdTaskCallbacks(options.callbackFd)
          : new SfnTaskCallbacks(options.taskToken);
      let request: ReturnType<typeof decodeRequest>;
      try {
        request = decodeRequest(options.requestB64);
      } catch (error) {
        // The state machine waits on this token: tell it now rather than at the heartbeat timeout.
        await callbacks.fail(errorCodeOf(error), failureCause(error)).catch((sendError: unknown) => {
          context.logger.error('could not report the bad request', { error: messageOf(sendError) });
        });
        throw error;
      }
      const outcome = await runRequest(request, {
        callbacks,
        env: context.env,
        logger: context.logger,
        signal: context.signal,
        heartbeatMs: options.heartbeatSeconds * 1000,
        onProgress: (update) => context.reporter.progress(update),
      });
      const summary =
        outcome.reported === 'success'
          ? `${outcome.operation} succeeded; reported`
          : `${outcome.operation} failed (${outcome.error ?? 'unknown'}); ${outcome.reported === 'none' ? 'NOT reported' : 'reported'}`;
      return { result: outcome, exitCode: outcome.exitCode, summary };
    },
    {
      defaults: (env) => ({
        requestB64: env.variable('SSM_request'),
        taskToken: env.variable('SSM_taskToken'),
        callbackFd: env.variable('STEPBACK_CALLBACK_FD'),
      }),
    },
  );
  return run;
}
