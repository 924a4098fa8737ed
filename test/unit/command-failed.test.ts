import { SendTaskFailureCommand, SFNClient, TaskDoesNotExist } from '@aws-sdk/client-sfn';
import { GetCommandInvocationCommand, ListCommandsCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../core/log.ts';
import { type CommandStatusEvent, reportFailedCommand } from '../../functions/command-failed.ts';
import { awsRunCommandService } from '../../functions/run-command.ts';

const credentials = { accessKeyId: 'x', secretAccessKey: 'y' };

function statusEvent(status: string): CommandStatusEvent {
  return {
    source: 'aws.ssm',
    'detail-type': 'EC2 Command Invocation Status-change Notification',
    detail: { 'command-id': 'c-1', 'instance-id': 'i-0123', 'document-name': 'doc', status },
  };
}

/** SSM and Step Functions behind mocked clients: one command sent with `parameters`. */
function aws(parameters: Record<string, string[]> | undefined) {
  const ssm = new SSMClient({ region: 'eu-west-1', credentials });
  const sfn = new SFNClient({ region: 'eu-west-1', credentials });
  const ssmMock = mockClient(ssm);
  const sfnMock = mockClient(sfn);
  ssmMock
    .on(ListCommandsCommand)
    .resolves({ Commands: parameters ? [{ CommandId: 'c-1', Parameters: parameters }] : [] });
  ssmMock.on(GetCommandInvocationCommand).resolves({
    StatusDetails: 'Failed',
    StandardOutputContent: '',
    StandardErrorContent:
      '/var/lib/amazon/ssm/i-0123/document/orchestration/c-1/stepbackRun/_script.sh: 7: exec: /usr/local/bin/stepback: not found\n',
  });
  sfnMock.on(SendTaskFailureCommand).resolves({});
  return { service: awsRunCommandService('eu-west-1', { ssm, sfn }), ssmMock, sfnMock };
}

describe('the failure path of agent commands', () => {
  it('fails the task named by the command’s taskToken with AGENT_COMMAND_FAILED and the shell’s error', async () => {
    const { service, ssmMock, sfnMock } = aws({ request: ['e30='], taskToken: ['token-1'] });
    const result = await reportFailedCommand(statusEvent('Failed'), service, { logger: silentLogger });
    expect(result.reported).toBe(true);
    expect(ssmMock.commandCalls(ListCommandsCommand)[0]!.args[0].input).toEqual({ CommandId: 'c-1' });
    expect(ssmMock.commandCalls(GetCommandInvocationCommand)[0]!.args[0].input).toEqual({
      CommandId: 'c-1',
      InstanceId: 'i-0123',
    });
    const [call] = sfnMock.commandCalls(SendTaskFailureCommand);
    expect(call!.args[0].input).toEqual({
      taskToken: 'token-1',
      error: 'AGENT_COMMAND_FAILED',
      cause: expect.stringMatching(
        /^the SSM command c-1 on i-0123 ended Failed without the agent reporting\nstderr:\n.*exec: \/usr\/local\/bin\/stepback: not found$/,
      ),
    });
  });

  it('reports a command that never reached its host with its status, without output', async () => {
    const { service, ssmMock, sfnMock } = aws({ taskToken: ['token-2'] });
    ssmMock
      .on(GetCommandInvocationCommand)
      .rejects(Object.assign(new Error('no invocation'), { name: 'InvocationDoesNotExist' }));
    await reportFailedCommand(statusEvent('Undeliverable'), service, { logger: silentLogger });
    expect(sfnMock.commandCalls(SendTaskFailureCommand)[0]!.args[0].input.cause).toBe(
      'the SSM command c-1 on i-0123 ended Undeliverable without the agent reporting\n(its output could not be read)',
    );
  });

  it('leaves a task the agent already reported (the task no longer exists)', async () => {
    const { service, sfnMock } = aws({ taskToken: ['token-3'] });
    sfnMock
      .on(SendTaskFailureCommand)
      .rejects(new TaskDoesNotExist({ message: 'Task does not exist', $metadata: {} }));
    const result = await reportFailedCommand(statusEvent('Failed'), service, { logger: silentLogger });
    expect(result.reported).toBe(false);
  });

  it('ignores commands without a task token and statuses that are not failures', async () => {
    const { service, sfnMock } = aws({ commands: ['echo'] });
    expect(
      (await reportFailedCommand(statusEvent('Failed'), service, { logger: silentLogger })).reported,
    ).toBe(false);
    expect(
      (await reportFailedCommand(statusEvent('Success'), service, { logger: silentLogger })).reported,
    ).toBe(false);
    expect(sfnMock.commandCalls(SendTaskFailureCommand)).toHaveLength(0);
  });
});
