import { z } from 'zod';
import { messageOf } from '../core/errors.ts';
import { COMMAND_INVOCATION_STATUS_CHANGE, FAILED_COMMAND_STATUSES } from './command-statuses.ts';
import { awsRunCommandService, type RunCommandService } from './run-command.ts';
import { defineFunction, type FunctionContext, lambdaHandler } from './runtime.ts';

/**
 * The failure path of agent tasks: a command that ends badly outside the agent (the instance never
 * took it, the binary or Node is missing, agent.env is broken, it timed out or was cancelled) sends
 * no callback, and the state machine would wait for the heartbeat timeout. EventBridge sends the
 * command's status change here; the task token is the command's own `taskToken` parameter (with
 * ENV_VAR interpolation it is still one of the command's Parameters), and the task fails with
 * AGENT_COMMAND_FAILED, the status and the end of the command's output.
 */

export const AGENT_COMMAND_FAILED = 'AGENT_COMMAND_FAILED';

/** Step Functions' limit on a SendTaskFailure cause. */
const MAX_CAUSE = 32_768;
/** How much of the command's output the cause carries. */
const OUTPUT_TAIL = 4000;

/** "EC2 Command Invocation Status-change Notification" from aws.ssm. */
export const CommandStatusEvent = z.object({
  source: z.literal('aws.ssm'),
  'detail-type': z.literal(COMMAND_INVOCATION_STATUS_CHANGE),
  detail: z.object({
    'command-id': z.string().min(1),
    'instance-id': z.string().min(1),
    'document-name': z.string().optional(),
    status: z.string().min(1),
  }),
});
export type CommandStatusEvent = z.infer<typeof CommandStatusEvent>;

function tail(text: string, max: number): string {
  const trimmed = text.trimEnd();
  return trimmed.length <= max ? trimmed : `…${trimmed.slice(-max)}`;
}

/** The cause an operator reads: which command, how it ended, and what it printed last. */
export function commandFailureCause(
  event: CommandStatusEvent,
  output: { stdout: string; stderr: string; details: string } | undefined,
): string {
  const { detail } = event;
  const status =
    output?.details && output.details !== detail.status
      ? `${detail.status} (${output.details})`
      : detail.status;
  const lines = [
    `the SSM command ${detail['command-id']} on ${detail['instance-id']} ended ${status} without the agent reporting`,
  ];
  if (!output) lines.push('(its output could not be read)');
  else {
    if (output.stderr.trim()) lines.push(`stderr:\n${tail(output.stderr, OUTPUT_TAIL)}`);
    if (output.stdout.trim()) lines.push(`stdout:\n${tail(output.stdout, OUTPUT_TAIL)}`);
    if (!output.stderr.trim() && !output.stdout.trim()) lines.push('(it wrote no output)');
  }
  return lines.join('\n').slice(0, MAX_CAUSE);
}

export async function reportFailedCommand(
  event: CommandStatusEvent,
  service: RunCommandService,
  context: Pick<FunctionContext, 'logger'>,
) {
  const { detail } = event;
  const commandId = detail['command-id'];
  if (!(FAILED_COMMAND_STATUSES as readonly string[]).includes(detail.status)) {
    return { commandId, reported: false, reason: `status ${detail.status} is not a failure` };
  }
  const token = (await service.commandParameters(commandId))?.taskToken?.[0];
  if (!token) return { commandId, reported: false, reason: 'the command has no taskToken parameter' };
  let output: Awaited<ReturnType<RunCommandService['invocationOutput']>> | undefined;
  try {
    output = await service.invocationOutput(commandId, detail['instance-id']);
  } catch (error) {
    // An undeliverable command may have no invocation output: report the status alone.
    context.logger.warn('could not read the command output', { commandId, error: messageOf(error) });
  }
  const cause = commandFailureCause(event, output);
  const reported = await service.sendTaskFailure(token, AGENT_COMMAND_FAILED, cause);
  return {
    commandId,
    reported,
    reason: reported ? cause.split('\n')[0]! : 'the task was no longer waiting (the agent reported first)',
  };
}

export const commandFailed = defineFunction({
  name: 'command-failed',
  event: CommandStatusEvent,
  run: (event, context) =>
    reportFailedCommand(event, context.runCommand ?? awsRunCommandService(context.settings.region), context),
});

export const handler = lambdaHandler(commandFailed);
