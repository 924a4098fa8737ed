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
import { SfnTaskCallbacks } from '../../agent/run/callbacks.ts';
import { decodeRequest, requestArgv } from '../../agent/run/request.ts';
import { type CommandExecutor, runRequest } from '../../agent/run/run.ts';
import { type AgentRequest, encodeAgentRequest } from '../../core/agent-request.ts';
import { UsageError } from '../../core/errors.ts';
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

/** A command that prints `lines` on stdout and exits with `code` when `finish` is called. */
function controllableCommand() {
  let finish!: (lines: string[], code: number) => void;
  let seenSignal: AbortSignal | undefined;
  let seenArgv: string[] = [];
  const execute: CommandExecutor = (argv, io) => {
    seenArgv = argv;
    seenSignal = io.signal;
    return new Promise((resolve) => {
      finish = (lines, code) => {
        for (const line of lines) io.stdout.write(`${line}\n`);
        resolve(code);
      };
      io.signal?.addEventListener('abort', () => {
        io.stdout.write(`${JSON.stringify({ error: { code: 'INTERRUPTED', message: 'stopped' } })}\n`);
        resolve(1);
      });
    });
  };
  return {
    execute,
    finish: (lines: string[], code: number) => finish(lines, code),
    signal: () => seenSignal,
    argv: () => seenArgv,
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
  it('decodes a base64 request and validates it', () => {
    expect(decodeRequest(encodeAgentRequest(backup))).toEqual(backup);
  });

  it('names the field a request gets wrong', () => {
    const bad = Buffer.from(JSON.stringify({ ...backup, dir: '../etc' })).toString('base64');
    expect(() => decodeRequest(bad)).toThrow(UsageError);
    expect(() => decodeRequest(bad)).toThrow(/^request\.dir: /);
  });

  it('refuses text that is not base64 and base64 that is not JSON', () => {
    expect(() => decodeRequest('not base64; rm -rf /')).toThrow(/--request-b64 is not base64/);
    expect(() => decodeRequest(Buffer.from('{oops').toString('base64'))).toThrow(/does not decode to JSON/);
  });

  it('refuses fields a command does not have', () => {
    const extra = Buffer.from(JSON.stringify({ ...backup, shell: 'id' })).toString('base64');
    expect(() => decodeRequest(extra)).toThrow(/shell/);
  });

  it('maps each operation to its command line, values attached so "-80" is never a flag', () => {
    expect(requestArgv(backup)).toEqual([
      'backup',
      '--defaults-file=/etc/mysql/my.cnf',
      '--storage=s3://bucket/backups',
      '--dir=commerce/-80',
      '--concurrency=4',
      '--compression=zstd',
    ]);
    expect(
      requestArgv({
        operation: 'restore',
        storage: 'file:///b',
        dir: 'ks/0',
        defaultsFile: '/r/my.cnf',
        backup: null,
        deleteBeforeRestore: true,
        localMetadata: { Alias: 'zone1-101', Keyspace: 'ks' },
        replicateFrom: { host: '10.0.0.5', port: 3306, user: 'repl', passwordEnv: 'REPL_PASSWORD' },
      }),
    ).toEqual([
      'restore',
      '--defaults-file=/r/my.cnf',
      '--storage=file:///b',
      '--dir=ks/0',
      '--delete-before-restore',
      '--local-metadata=Alias=zone1-101',
      '--local-metadata=Keyspace=ks',
      '--replicate-from=10.0.0.5:3306',
      '--replication-user=repl',
      '--replication-password-env=REPL_PASSWORD',
    ]);
    expect(
      requestArgv({
        operation: 'diff',
        left: 'mysql://root@127.0.0.1:3307/shop',
        right: 'mysql://root@127.0.0.1:3308/shop',
        leftKeyRange: '-80',
        keyColumn: 'keyspace_id',
        keyType: 'uint64',
      }),
    ).toEqual([
      'diff',
      '--left=mysql://root@127.0.0.1:3307/shop',
      '--right=mysql://root@127.0.0.1:3308/shop',
      '--left-key-range=-80',
      '--key-column=keyspace_id',
      '--key-type=uint64',
    ]);
    expect(
      requestArgv({
        operation: 'multirestore',
        storage: 'file:///b',
        defaultsFile: '/d/my.cnf',
        sources: ['ks/0/-80@2026-11-24.101500.db1', 'ks/0/80-'],
        database: 'shop',
        dontStartReplication: true,
      }),
    ).toEqual([
      'multirestore',
      '--defaults-file=/d/my.cnf',
      '--storage=file:///b',
      '--sources=ks/0/-80@2026-11-24.101500.db1,ks/0/80-',
      '--database=shop',
      '--dont-start-replication',
    ]);
  });
});

describe('stepback run reporting to Step Functions', () => {
  it('beats at once and then every interval while the command works, then sends the result', async () => {
    vi.useFakeTimers();
    const command = controllableCommand();
    const running = runRequest(backup, {
      callbacks: callbacks(),
      execute: command.execute,
      stderr: sink(),
      env: {},
      logger: silentLogger,
      heartbeatMs: 30_000,
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(sfn.commandCalls(SendTaskHeartbeatCommand)).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(95_000);
    // 0 s, 30 s, 60 s, 90 s: never more than a minute between two.
    expect(sfn.commandCalls(SendTaskHeartbeatCommand)).toHaveLength(4);
    expect(sfn.commandCalls(SendTaskHeartbeatCommand)[0]!.args[0].input).toEqual({ taskToken: token });
    expect(command.argv().at(-1)).toBe('--json');

    command.finish(['progress is on stderr, this line is not JSON', '{"name":"2026-11-24.101500.db1"}'], 0);
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

  it('sends the stable error code and the message when the command fails', async () => {
    const command = controllableCommand();
    const running = runRequest(backup, {
      callbacks: callbacks(),
      execute: command.execute,
      stderr: sink(),
      env: {},
      logger: silentLogger,
    });
    await vi.waitFor(() => expect(command.argv()).not.toHaveLength(0));
    command.finish(
      [JSON.stringify({ error: { code: 'NO_BACKUP', message: 'no complete backup in ks/0' } })],
      3,
    );
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
    const restore: AgentRequest = {
      operation: 'restore',
      storage: 's3://bucket/backups',
      dir: 'commerce/-80',
      defaultsFile: '/etc/mysql/my.cnf',
    };
    const command = controllableCommand();
    const running = runRequest(restore, {
      callbacks: callbacks(),
      execute: command.execute,
      stderr: sink(),
      env: {},
      logger: silentLogger,
    });
    await vi.waitFor(() => expect(command.argv()).not.toHaveLength(0));
    const error = {
      code: 'EXISTING_DATA',
      message: '/var/lib/mysql holds user data (shop); nothing was changed',
      hint: 'pass --delete-before-restore to replace it, or --backup NAME for another, see --help',
    };
    command.finish([JSON.stringify({ error })], 4);
    await running;
    expect(sfn.commandCalls(SendTaskFailureCommand)[0]!.args[0].input).toMatchObject({
      error: 'EXISTING_DATA',
      cause:
        '/var/lib/mysql holds user data (shop); nothing was changed (what to do: pass deleteBeforeRestore: true to replace it, or backup NAME for another, see --help)',
    });
  });

  it('reports a result printed with a failing exit code (rows differ) as a verification failure', async () => {
    const command = controllableCommand();
    const running = runRequest(backup, {
      callbacks: callbacks(),
      execute: command.execute,
      stderr: sink(),
      env: {},
      logger: silentLogger,
    });
    await vi.waitFor(() => expect(command.argv()).not.toHaveLength(0));
    command.finish(['{"tables":[{"table":"orders","mismatched":2}]}'], 5);
    await running;
    expect(sfn.commandCalls(SendTaskFailureCommand)[0]!.args[0].input).toMatchObject({
      error: 'VERIFICATION_FAILED',
      cause: '{"tables":[{"table":"orders","mismatched":2}]}',
    });
  });

  it('stops the operation when Step Functions says the task timed out', async () => {
    vi.useFakeTimers();
    sfn
      .on(SendTaskHeartbeatCommand)
      .resolvesOnce({})
      .rejects(new TaskTimedOut({ message: 'Task Timed Out', $metadata: {} }));
    const command = controllableCommand();
    const running = runRequest(backup, {
      callbacks: callbacks(),
      execute: command.execute,
      stderr: sink(),
      env: {},
      logger: silentLogger,
      heartbeatMs: 30_000,
    });
    await vi.advanceTimersByTimeAsync(31_000);
    const outcome = await running;
    expect(command.signal()?.aborted).toBe(true);
    expect(outcome).toMatchObject({ exitCode: 1, error: 'INTERRUPTED' });
  });

  it('sends a failure when the result is too large for Step Functions', async () => {
    const command = controllableCommand();
    const running = runRequest(backup, {
      callbacks: callbacks(),
      execute: command.execute,
      stderr: sink(),
      env: {},
      logger: silentLogger,
    });
    await vi.waitFor(() => expect(command.argv()).not.toHaveLength(0));
    command.finish([JSON.stringify({ huge: 'x'.repeat(300 * 1024) })], 0);
    const outcome = await running;
    expect(outcome).toMatchObject({ reported: 'failure', error: 'RESULT_NOT_DELIVERED' });
    expect(sfn.commandCalls(SendTaskSuccessCommand)).toHaveLength(0);
    expect(sfn.commandCalls(SendTaskFailureCommand)[0]!.args[0].input.error).toBe('RESULT_NOT_DELIVERED');
  });

  it('reports a command the CLI does not know as a USAGE failure through the real CLI', async () => {
    const outcome = await runRequest(
      {
        operation: 'snapshot',
        storage: 'file:///b',
        dir: 'ks/0',
        defaultsFile: '/d/my.cnf',
        database: 'shop',
      },
      {
        callbacks: callbacks(),
        execute: (argv, io) => runCli(['nonesuch', ...argv.slice(1)], io),
        stderr: sink(),
        env: {},
        logger: silentLogger,
      },
    );
    expect(outcome).toMatchObject({ exitCode: 2, reported: 'failure', error: 'USAGE' });
    expect(sfn.commandCalls(SendTaskFailureCommand)[0]!.args[0].input.cause).toMatch(
      /unknown command 'nonesuch'/,
    );
  });

  it('tells the state machine about a request it cannot decode instead of leaving it waiting', async () => {
    const stdout = sink();
    const stderr = sink();
    const code = await runCli(['run', '--request-b64', 'e30=', '--task-token', token, '--json'], {
      stdout,
      stderr,
      env: { AWS_REGION: 'us-east-1' },
    });
    expect(code).toBe(2);
    const failure = sfn.commandCalls(SendTaskFailureCommand)[0]!.args[0].input;
    expect(failure.taskToken).toBe(token);
    expect(failure.error).toBe('USAGE');
    expect(failure.cause).toMatch(/^request\.operation: /);
  });
});
