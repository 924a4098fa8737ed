import { Writable } from 'node:stream';
import {
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
  SFNClient,
  TaskTimedOut,
} from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { runCli } from '../../agent/cli/main.ts';
import type { OperationContext } from '../../agent/operations/operation.ts';
import { SfnTaskCallbacks } from '../../agent/run/callbacks.ts';
import { decodeRequest } from '../../agent/run/request.ts';
import { type RunRequestOptions, runRequest } from '../../agent/run/run.ts';
import {
  type AgentRequest,
  encodeAgentRequest,
  type ParsedRequest,
  parseAgentRequest,
} from '../../core/agent-request.ts';
import { readEnvironment } from '../../core/environment.ts';
import {
  ExistingDataError,
  FieldError,
  hint,
  NoBackupError,
  StepbackError,
  switchOption,
  UsageError,
  VerificationError,
} from '../../core/errors.ts';
import { silentLogger } from '../../core/log.ts';

const sfn = mockClient(SFNClient);
const token = 'AAAAKgAAAAIAAAAAAAAAAQ==token';

const backup: AgentRequest = {
  operation: 'backup',
  storage: 's3://bucket/backups',
  dir: 'commerce/-80',
  defaultsFile: '/etc/mysql/my.cnf',
  compression: 'zstd',
  concurrency: 4,
};

const sink = () =>
  new Writable({
    write: (_chunk, _encoding, done) => done(),
  });

function callbacks(): SfnTaskCallbacks {
  return new SfnTaskCallbacks(token, new SFNClient({ region: 'us-east-1' }));
}

type Outcome = { reported: object; failure?: StepbackError };

/** An operation that ends when the test says so, with a result or an error; it sees the context it got. */
function controllableOperation() {
  let finish!: (outcome: Outcome | Error) => void;
  let seen: { parsed: ParsedRequest; context: OperationContext } | undefined;
  const execute = (parsed: ParsedRequest, context: OperationContext) => {
    seen = { parsed, context };
    return new Promise<Outcome>((resolve, reject) => {
      finish = (outcome) => (outcome instanceof Error ? reject(outcome) : resolve(outcome));
      context.signal.addEventListener('abort', () => reject(new StepbackError('stopped')));
    });
  };
  return {
    execute,
    finish: (outcome: Outcome | Error) => finish(outcome),
    seen: () => seen,
  };
}

function options(execute: RunRequestOptions['execute']): RunRequestOptions {
  return {
    callbacks: callbacks(),
    env: readEnvironment({}),
    logger: silentLogger,
    execute,
    firstHeartbeatRetryMs: [1, 1],
  };
}

beforeEach(() => {
  sfn.reset();
  sfn.on(SendTaskHeartbeatCommand).resolves({});
  sfn.on(SendTaskSuccessCommand).resolves({});
  sfn.on(SendTaskFailureCommand).resolves({});
});

afterEach(() => {
  vi.useRealTimers();
});

describe('stepback run request decoding', () => {
  it('decodes a base64 request into the operation and its typed request, defaults filled in', () => {
    expect(decodeRequest(encodeAgentRequest(backup))).toEqual({
      operation: 'backup',
      request: {
        storage: 's3://bucket/backups',
        dir: 'commerce/-80',
        defaultsFile: '/etc/mysql/my.cnf',
        engine: 'physical',
        compression: 'zstd',
        concurrency: 4,
        partSize: 1024 ** 3,
        keepReplicaApplying: false,
        slowShutdown: false,
        allowPrimary: false,
        evidence: true,
      },
    });
  });

  it('names the field a request gets wrong by its path in the schema', () => {
    const bad = Buffer.from(JSON.stringify({ ...backup, dir: '../etc' })).toString('base64');
    expect(() => decodeRequest(bad)).toThrow(UsageError);
    expect(() => decodeRequest(bad)).toThrow(/^request\.dir: /);
    const nested = {
      operation: 'restore',
      storage: 'file:///b',
      dir: 'ks/0',
      defaultsFile: '/d/my.cnf',
      replicateFrom: { host: 'db1', port: 70000, user: 'repl' },
    };
    expect(() => parseAgentRequest(nested)).toThrow(/^request\.replicateFrom\.port: must be at most 65535/);
    const error = (() => {
      try {
        parseAgentRequest(nested);
      } catch (caught) {
        return caught;
      }
    })();
    expect(error).toBeInstanceOf(FieldError);
    expect((error as FieldError).path).toEqual(['replicateFrom', 'port']);
  });

  it('takes null for an absent field, as a state machine passes it', () => {
    const parsed = parseAgentRequest({ ...backup, name: null, concurrency: null });
    expect(parsed.request).toMatchObject({ concurrency: 4 });
    expect(parsed.request).not.toHaveProperty('name', null);
  });

  it('refuses text that is not base64 and base64 that is not JSON', () => {
    expect(() => decodeRequest('not base64; rm -rf /')).toThrow(/not base64/);
    expect(() => decodeRequest(Buffer.from('{oops').toString('base64'))).toThrow(/does not decode to JSON/);
  });

  it('refuses fields an operation does not have, and an operation that does not exist', () => {
    const extra = Buffer.from(JSON.stringify({ ...backup, shell: 'id' })).toString('base64');
    expect(() => decodeRequest(extra)).toThrow(/shell/);
    expect(() => parseAgentRequest({ operation: 'rm' })).toThrow(
      /^request\.operation: must be one of backup, restore/,
    );
  });
});

describe('stepback run reporting to Step Functions', () => {
  it('beats before the operation starts and then every interval while it works, then sends the result value', async () => {
    vi.useFakeTimers();
    const operation = controllableOperation();
    const running = runRequest(parseAgentRequest(backup), {
      ...options(operation.execute),
      heartbeatMs: 30_000,
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(sfn.commandCalls(SendTaskHeartbeatCommand)).toHaveLength(1);
    expect(operation.seen()?.parsed.operation).toBe('backup');
    await vi.advanceTimersByTimeAsync(95_000);
    // 0 s, 30 s, 60 s, 90 s: never more than a minute between two.
    expect(sfn.commandCalls(SendTaskHeartbeatCommand)).toHaveLength(4);
    expect(sfn.commandCalls(SendTaskHeartbeatCommand)[0]!.args[0].input).toEqual({ taskToken: token });

    operation.finish({ reported: { name: '2026-11-24.101500.db1' } });
    const outcome = await running;
    await vi.advanceTimersByTimeAsync(120_000);

    expect(outcome).toEqual({ operation: 'backup', exitCode: 0, reported: 'success' });
    expect(sfn.commandCalls(SendTaskHeartbeatCommand)).toHaveLength(4);
    const success = sfn.commandCalls(SendTaskSuccessCommand);
    expect(success).toHaveLength(1);
    expect(success[0]!.args[0].input).toEqual({
      taskToken: token,
      output: '{"name":"2026-11-24.101500.db1"}',
    });
    expect(sfn.commandCalls(SendTaskFailureCommand)).toHaveLength(0);
  });

  it('does nothing when the state machine does not accept the first heartbeat (a command delivered too late)', async () => {
    sfn.on(SendTaskHeartbeatCommand).rejects(new TaskTimedOut({ message: 'Task Timed Out', $metadata: {} }));
    const operation = controllableOperation();
    const outcome = await runRequest(parseAgentRequest(backup), options(operation.execute));
    expect(operation.seen()).toBeUndefined();
    expect(outcome).toMatchObject({ reported: 'none', error: 'TASK_NOT_ACCEPTED', exitCode: 1 });
    expect(sfn.commandCalls(SendTaskSuccessCommand)).toHaveLength(0);
  });

  it('tries a first heartbeat that failed in passing again before starting', async () => {
    sfn.on(SendTaskHeartbeatCommand).rejectsOnce(new Error('socket hang up')).resolves({});
    const operation = controllableOperation();
    const running = runRequest(parseAgentRequest(backup), options(operation.execute));
    await vi.waitFor(() => expect(operation.seen()).toBeDefined());
    operation.finish({ reported: {} });
    expect(await running).toMatchObject({ reported: 'success' });
    expect(sfn.commandCalls(SendTaskHeartbeatCommand).length).toBeGreaterThanOrEqual(2);
  });

  it('sends the stable error code and the message when the operation fails', async () => {
    const operation = controllableOperation();
    const running = runRequest(parseAgentRequest(backup), options(operation.execute));
    await vi.waitFor(() => expect(operation.seen()).toBeDefined());
    operation.finish(new NoBackupError('ks/0'));
    const outcome = await running;
    expect(outcome).toMatchObject({ exitCode: 3, reported: 'failure', error: 'NO_BACKUP' });
    expect(sfn.commandCalls(SendTaskFailureCommand)[0]!.args[0].input).toEqual({
      taskToken: token,
      error: 'NO_BACKUP',
      cause: 'no complete backup in ks/0',
    });
    expect(sfn.commandCalls(SendTaskSuccessCommand)).toHaveLength(0);
  });

  it('sends what to do in the words of the request: its fields, not the command line flags', async () => {
    const operation = controllableOperation();
    const running = runRequest(
      parseAgentRequest({
        operation: 'restore',
        storage: 's3://b/p',
        dir: 'commerce/-80',
        defaultsFile: '/m.cnf',
      }),
      options(operation.execute),
    );
    await vi.waitFor(() => expect(operation.seen()).toBeDefined());
    operation.finish(
      new ExistingDataError('/var/lib/mysql holds user data (shop); nothing was changed', {
        hint: hint`pass ${switchOption('deleteBeforeRestore')} to replace it`,
      }),
    );
    await running;
    expect(sfn.commandCalls(SendTaskFailureCommand)[0]!.args[0].input).toMatchObject({
      error: 'EXISTING_DATA',
      cause:
        '/var/lib/mysql holds user data (shop); nothing was changed (what to do: pass deleteBeforeRestore: true to replace it)',
    });
  });

  it('names a bad field by its request path when the operation finds it', async () => {
    const operation = controllableOperation();
    const running = runRequest(parseAgentRequest(backup), options(operation.execute));
    await vi.waitFor(() => expect(operation.seen()).toBeDefined());
    operation.finish(new FieldError(['replicateFrom', 'passwordEnv'], 'the variable X is not set'));
    await running;
    expect(sfn.commandCalls(SendTaskFailureCommand)[0]!.args[0].input).toMatchObject({
      error: 'USAGE',
      cause: 'request.replicateFrom.passwordEnv: the variable X is not set',
    });
  });

  it('reports a result that means failure (rows differ) as that failure, the result in the cause', async () => {
    const operation = controllableOperation();
    const running = runRequest(parseAgentRequest(backup), options(operation.execute));
    await vi.waitFor(() => expect(operation.seen()).toBeDefined());
    operation.finish({
      reported: { tables: [{ table: 'orders', mismatched: 2 }] },
      failure: new VerificationError('the rows differ'),
    });
    expect(await running).toMatchObject({ exitCode: 5 });
    expect(sfn.commandCalls(SendTaskFailureCommand)[0]!.args[0].input).toMatchObject({
      error: 'VERIFICATION_FAILED',
      cause: 'the rows differ: {"tables":[{"table":"orders","mismatched":2}]}',
    });
  });

  it('stops the operation when Step Functions says the task timed out', async () => {
    vi.useFakeTimers();
    sfn
      .on(SendTaskHeartbeatCommand)
      .resolvesOnce({})
      .rejects(new TaskTimedOut({ message: 'Task Timed Out', $metadata: {} }));
    const operation = controllableOperation();
    const running = runRequest(parseAgentRequest(backup), {
      ...options(operation.execute),
      heartbeatMs: 30_000,
    });
    await vi.advanceTimersByTimeAsync(31_000);
    const outcome = await running;
    expect(operation.seen()?.context.signal.aborted).toBe(true);
    expect(outcome).toMatchObject({ exitCode: 1, error: 'STEPBACK_ERROR', cause: 'stopped' });
  });

  it('checks the result value against the task output limit before sending it', async () => {
    const operation = controllableOperation();
    const running = runRequest(parseAgentRequest(backup), options(operation.execute));
    await vi.waitFor(() => expect(operation.seen()).toBeDefined());
    operation.finish({ reported: { huge: 'x'.repeat(300 * 1024) } });
    const outcome = await running;
    expect(outcome).toMatchObject({ reported: 'failure', error: 'RESULT_NOT_DELIVERED' });
    expect(sfn.commandCalls(SendTaskSuccessCommand)).toHaveLength(0);
    expect(sfn.commandCalls(SendTaskFailureCommand)[0]!.args[0].input.cause).toMatch(/over the 262144-byte/);
  });

  it('tells the state machine about a request it cannot decode instead of leaving it waiting', async () => {
    const code = await runCli(['run', '--request-b64', 'e30=', '--task-token', token, '--json'], {
      stdout: sink(),
      stderr: sink(),
      env: { AWS_REGION: 'us-east-1' },
    });
    expect(code).toBe(2);
    const failure = sfn.commandCalls(SendTaskFailureCommand)[0]!.args[0].input;
    expect(failure.taskToken).toBe(token);
    expect(failure.error).toBe('USAGE');
    expect(failure.cause).toMatch(/^request\.operation: /);
  });

  it('takes the request and the token from the SSM variables when no flags give them', async () => {
    const code = await runCli(['run', '--json'], {
      stdout: sink(),
      stderr: sink(),
      env: { AWS_REGION: 'us-east-1', SSM_request: 'e30=', SSM_taskToken: token },
    });
    expect(code).toBe(2);
    expect(sfn.commandCalls(SendTaskFailureCommand)[0]!.args[0].input).toMatchObject({
      taskToken: token,
      error: 'USAGE',
    });
  });
});
