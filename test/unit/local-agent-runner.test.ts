import fs from 'node:fs/promises';
import path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Progress } from '../../agent/report/reporter.ts';
import { AgentDocument } from '../../cdk/agent-document.ts';
import { encodeAgentRequest } from '../../core/agent-request.ts';
import { silentLogger } from '../../core/log.ts';
import type { CommandStatusEvent } from '../../functions/command-failed.ts';
import { reportFailedCommand } from '../../functions/command-failed.ts';
import { LocalTasks, runAgentTask } from '../../local/agent.ts';
import {
  type CommandDocumentContent,
  LocalRunCommand,
  type SendCommandInput,
} from '../../local/run-command.ts';
import { resolveIntrinsics } from '../../local/template.ts';
import { tempDir } from '../support/root.ts';

let dir: string;

/** The agent document as the stack deploys it, running `agent` (a stand-in for stepback). */
function agentDocument(
  agent: string,
  timeoutSeconds = 3600,
  environmentFile = path.join(dir, 'agent.env'),
): CommandDocumentContent {
  const stack = new Stack(new App(), 'Documents', { env: { account: '000000000000', region: 'us-east-1' } });
  const { document } = new AgentDocument(stack, 'Agent', {
    command: agent,
    environmentFile,
    timeoutSeconds,
  });
  return resolveIntrinsics(stack.resolve(document.content), { Resources: {} }) as CommandDocumentContent;
}

/** A stand-in for `stepback` on the host: a shell script. */
async function standIn(name: string, body: string): Promise<string> {
  const file = path.join(dir, name);
  await fs.writeFile(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

const request = encodeAgentRequest({ operation: 'diff', left: 'mysql://a@h:1/d', right: 'mysql://a@h:2/d' });
const token = 'AQCEAAAAKgAAAAMAAAAAAAAAAcO5d+1pZ1Gxs=';

function commandTo(documentName: string, parameters: Record<string, string[]>): SendCommandInput {
  return { DocumentName: documentName, InstanceIds: ['i-0123'], Parameters: parameters, TimeoutSeconds: 600 };
}

/** Run Command over `documents`, with the status changes it emits. */
function runCommand(documents: Record<string, CommandDocumentContent>) {
  const changes: CommandStatusEvent[] = [];
  const service = new LocalRunCommand({
    documents,
    env: process.env,
    region: 'us-east-1',
    callbackFd: 3,
    orchestrationRoot: path.join(dir, 'orchestration'),
    onStatusChange: (event) => changes.push(event),
  });
  return { service, changes };
}

beforeAll(async () => {
  dir = await tempDir('local-agent');
});

describe('the local SSM agent', () => {
  it('passes the parameters as SSM_request and SSM_taskToken, never on the command line or in the script', async () => {
    const agent = await standIn(
      'agent-env',
      `echo "args: $*"; echo "cwd: $(pwd)"; echo "request: $SSM_request"; echo "token: $SSM_taskToken"
       echo "script:"; cat "${dir}/orchestration/$SSM_COMMAND_ID/stepbackRun/_script.sh"`,
    );
    const { service, changes } = runCommand({ doc: agentDocument(agent) });
    const command = await service.send(commandTo('doc', { request: [request], taskToken: [token] }));
    expect(await command.done).toBe('Success');
    const { stdout } = await service.invocationOutput(command.commandId, 'i-0123');
    const [head, script] = stdout.split('script:\n');
    expect(head).toBe(`args: run\ncwd: /\nrequest: ${request}\ntoken: ${token}\n`);
    expect(script).toContain(`exec '${agent}' run`);
    expect(script).not.toContain(token);
    expect(script).not.toContain(request);
    expect(changes.map((c) => c.detail.status)).toEqual(['Success']);
    expect(await service.commandParameters(command.commandId)).toEqual({
      request: [request],
      taskToken: [token],
    });
  });

  it('fails a command whose parameter does not match its allowedPattern, before the script runs', async () => {
    const agent = await standIn('agent-never', `echo ran`);
    const { service, changes } = runCommand({ doc: agentDocument(agent) });
    const command = await service.send(commandTo('doc', { request: ["e30=' ; reboot"], taskToken: [token] }));
    expect(await command.done).toBe('Failed');
    const output = await service.invocationOutput(command.commandId, 'i-0123');
    expect(output.stdout).toBe('');
    expect(output.stderr).toMatch(/^parameter value \/e30=' ; reboot\/ does not match the allowed pattern/);
    expect(changes.map((c) => c.detail.status)).toEqual(['Failed']);
  });

  it('compiles allowedPattern with RE2: a repeat count over 1000 fails every command', async () => {
    const agent = await standIn('agent-re2', `echo ran`);
    const document = agentDocument(agent);
    document.parameters!.request!.allowedPattern = '^[A-Za-z0-9+/]{2,65536}={0,2}$';
    const { service } = runCommand({ doc: document });
    const command = await service.send(commandTo('doc', { request: [request], taskToken: [token] }));
    expect(await command.done).toBe('Failed');
    expect((await service.invocationOutput(command.commandId, 'i-0123')).stderr).toMatch(
      /compiling allowed pattern.*invalid repeat count/,
    );
  });

  it('refuses unknown and missing parameters as SendCommand does', async () => {
    const { service } = runCommand({ doc: agentDocument('/bin/true') });
    await expect(
      service.send(commandTo('doc', { request: [request], taskToken: [token], extra: ['x'] })),
    ).rejects.toMatchObject({
      name: 'Ssm.InvalidParametersException',
      message: expect.stringContaining('extra'),
    });
    await expect(service.send(commandTo('doc', { request: [request] }))).rejects.toMatchObject({
      name: 'Ssm.InvalidParametersException',
      message: expect.stringContaining('taskToken'),
    });
  });

  it('stops a script at the step’s timeoutSeconds and ends it TimedOut', async () => {
    const agent = await standIn('agent-sleeps', 'sleep 60');
    const { service, changes } = runCommand({ doc: agentDocument(agent, 5) });
    const command = await service.send(commandTo('doc', { request: [request], taskToken: [token] }));
    expect(await command.done).toBe('TimedOut');
    expect(changes.map((c) => c.detail.status)).toEqual(['TimedOut']);
  });
});

describe('an agent task on this machine', () => {
  /** A task on `agent`, with the failure path wired as the stack wires it. */
  async function task(
    agent: string,
    options: { heartbeatSeconds?: number; onProgress?: (p: Progress) => void; environmentFile?: string } = {},
  ) {
    const { environmentFile, ...taskOptions } = options;
    const tasks = new LocalTasks();
    const service: LocalRunCommand = new LocalRunCommand({
      documents: { doc: agentDocument(agent, 3600, environmentFile) },
      env: process.env,
      region: 'us-east-1',
      callbackFd: 3,
      orchestrationRoot: path.join(dir, 'orchestration'),
      onStatusChange: (event) =>
        void reportFailedCommand(
          event,
          {
            commandParameters: (id) => service.commandParameters(id),
            invocationOutput: (id, instance) => service.invocationOutput(id, instance),
            sendTaskFailure: async (t, error, cause) => tasks.fail(t, error, cause),
          },
          { logger: silentLogger },
        ),
    });
    return runAgentTask(commandTo('doc', { request: [request], taskToken: [token] }), {
      runCommand: service,
      tasks,
      logger: silentLogger,
      ...taskOptions,
    });
  }

  it('resolves with the result the agent sends on its callback fd, forwarding its progress', async () => {
    const agent = await standIn(
      'agent-succeeds',
      `for i in 1 2 3; do echo '{"callback":"heartbeat"}' >&$STEPBACK_CALLBACK_FD
         echo "{\\"callback\\":\\"progress\\",\\"progress\\":{\\"phase\\":\\"copying files\\",\\"bytesDone\\":$i,\\"bytesTotal\\":3}}" >&$STEPBACK_CALLBACK_FD
       done
       echo '{"callback":"success","output":{"ok":true}}' >&$STEPBACK_CALLBACK_FD`,
    );
    const progress: Progress[] = [];
    expect(await task(agent, { heartbeatSeconds: 5, onProgress: (p) => progress.push(p) })).toEqual({
      ok: true,
    });
    expect(progress.map((p) => p.bytesDone)).toEqual([1, 2, 3]);
  });

  it('fails with the error code the agent sent', async () => {
    const agent = await standIn(
      'agent-fails',
      `echo '{"callback":"failure","error":"NO_BACKUP","cause":"no complete backup in ks/0"}' >&$STEPBACK_CALLBACK_FD; exit 3`,
    );
    await expect(task(agent)).rejects.toMatchObject({
      name: 'NO_BACKUP',
      message: 'no complete backup in ks/0',
    });
  });

  it('fails a command that ends without reporting with AGENT_COMMAND_FAILED and the shell’s error', async () => {
    await expect(task(path.join(dir, 'no-such-stepback'))).rejects.toMatchObject({
      name: 'AGENT_COMMAND_FAILED',
      message: expect.stringMatching(
        /ended Failed without the agent reporting\nstderr:\n.*no-such-stepback.*not found/s,
      ),
    });
  });

  it('fails a command whose agent.env does not parse with AGENT_COMMAND_FAILED and the shell’s error', async () => {
    const agent = await standIn(
      'agent-unreached',
      `echo '{"callback":"success","output":{}}' >&$STEPBACK_CALLBACK_FD`,
    );
    const environmentFile = path.join(dir, 'broken.env');
    await fs.writeFile(environmentFile, 'PASSWORD="unterminated\n');
    await expect(task(agent, { environmentFile })).rejects.toMatchObject({
      name: 'AGENT_COMMAND_FAILED',
      message: expect.stringMatching(/ended Failed without the agent reporting\nstderr:\n.*broken\.env/s),
    });
  });

  it('fails a silent agent with States.HeartbeatTimeout and stops it', async () => {
    const agent = await standIn('agent-silent', 'sleep 60');
    await expect(task(agent, { heartbeatSeconds: 1 })).rejects.toMatchObject({
      name: 'States.HeartbeatTimeout',
      message: 'the agent on i-0123 sent no heartbeat in 1s',
    });
  });
});
