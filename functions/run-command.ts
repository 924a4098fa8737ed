import { SendTaskFailureCommand, SFNClient } from '@aws-sdk/client-sfn';
import { GetCommandInvocationCommand, ListCommandsCommand, SSMClient } from '@aws-sdk/client-ssm';

/**
 * What the failure path needs of SSM Run Command and Step Functions: a command's parameters, an
 * invocation's output, and SendTaskFailure. The AWS SDK in Lambda; the local runner's own commands
 * and tasks on this machine.
 */
export interface RunCommandService {
  /** The parameters the command was sent with (`{ taskToken: ['…'] }`); undefined when it is unknown. */
  commandParameters(commandId: string): Promise<Record<string, string[]> | undefined>;
  /** What the command wrote on the instance (SSM keeps the first 24,000 characters of each). */
  invocationOutput(
    commandId: string,
    instanceId: string,
  ): Promise<{ stdout: string; stderr: string; details: string }>;
  /** False when the task was already closed (the agent reported first, or it timed out). */
  sendTaskFailure(taskToken: string, error: string, cause: string): Promise<boolean>;
}

/** Errors that mean the task no longer waits: nothing to report. */
const CLOSED_TASK = new Set(['TaskDoesNotExist', 'TaskTimedOut', 'InvalidToken']);

export function awsRunCommandService(
  region: string | undefined,
  clients: { ssm?: SSMClient; sfn?: SFNClient } = {},
): RunCommandService {
  const ssm = clients.ssm ?? new SSMClient({ region });
  const sfn = clients.sfn ?? new SFNClient({ region });
  return {
    async commandParameters(commandId) {
      const { Commands } = await ssm.send(new ListCommandsCommand({ CommandId: commandId }));
      return Commands?.[0]?.Parameters;
    },
    async invocationOutput(commandId, instanceId) {
      const invocation = await ssm.send(
        new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: instanceId }),
      );
      return {
        stdout: invocation.StandardOutputContent ?? '',
        stderr: invocation.StandardErrorContent ?? '',
        details: invocation.StatusDetails ?? '',
      };
    },
    async sendTaskFailure(taskToken, error, cause) {
      try {
        await sfn.send(new SendTaskFailureCommand({ taskToken, error, cause }));
        return true;
      } catch (failure) {
        if (failure instanceof Error && CLOSED_TASK.has(failure.name)) return false;
        throw failure;
      }
    },
  };
}
