import { describe, expect, it } from 'vitest';
import type { Progress } from '../../agent/report/reporter.ts';
import { silentLogger } from '../../core/log.ts';
import { runAgentLocally } from '../../local/agent.ts';

/** What SSM would pass: the request and the token. The stand-in agents below ignore them. */
const parameters = {
  DocumentName: 'local',
  InstanceIds: ['host-1'],
  Parameters: { request: ['e30='], taskToken: ['local-token'] },
};

/** A stand-in for `stepback` run by this Node: the script gets the agent's arguments and fd 3. */
const agent = (script: string): [string, ...string[]] => [process.execPath, '-e', script];

describe('the local agent runner', () => {
  it('stops an agent that sends no heartbeat in HeartbeatSeconds and fails with States.HeartbeatTimeout', async () => {
    const outcome = runAgentLocally(parameters, {
      env: process.env,
      logger: silentLogger,
      heartbeatSeconds: 1,
      agentCommand: agent('setTimeout(() => {}, 60_000)'),
    });
    await expect(outcome).rejects.toMatchObject({
      name: 'States.HeartbeatTimeout',
      message: 'the agent on host-1 sent no heartbeat in 1s',
    });
  });

  it('keeps an agent that beats, forwards its progress and resolves with its result', async () => {
    const script = `
      const fs = require('node:fs');
      const send = (message) => fs.writeSync(3, JSON.stringify(message) + '\\n');
      let beats = 0;
      const timer = setInterval(() => {
        send({ callback: 'heartbeat' });
        send({ callback: 'progress', progress: { phase: 'copying files', bytesDone: ++beats, bytesTotal: 8 } });
        if (beats === 8) {
          clearInterval(timer);
          send({ callback: 'success', output: { args: process.argv.slice(1) } });
        }
      }, 200);`;
    const progress: Progress[] = [];
    const output = await runAgentLocally(parameters, {
      env: process.env,
      logger: silentLogger,
      heartbeatSeconds: 1,
      agentCommand: agent(script),
      onProgress: (update) => progress.push(update),
    });
    expect(output).toEqual({
      args: ['run', '--request-b64', 'e30=', '--task-token', 'local-token', '--callback-fd', '3'],
    });
    expect(progress.map((p) => p.bytesDone)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('fails with the error code the agent sent', async () => {
    const script = `require('node:fs').writeSync(3, JSON.stringify({ callback: 'failure', error: 'NO_BACKUP', cause: 'no complete backup in ks/0' }) + '\\n');`;
    await expect(
      runAgentLocally(parameters, { env: process.env, logger: silentLogger, agentCommand: agent(script) }),
    ).rejects.toMatchObject({ name: 'NO_BACKUP', message: 'no complete backup in ks/0' });
  });

  it('fails an agent that exits without reporting, with the end of its stderr', async () => {
    const script = `process.stderr.write('mysqld would not start\\n'); process.exit(7);`;
    await expect(
      runAgentLocally(parameters, { env: process.env, logger: silentLogger, agentCommand: agent(script) }),
    ).rejects.toMatchObject({
      name: 'States.TaskFailed',
      message: expect.stringMatching(/exited with 7 without reporting:\nmysqld would not start$/),
    });
  });
});
