import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeAgentRequest } from '../../core/agent-request.ts';
import { silentLogger } from '../../core/log.ts';
import { runLocalCli } from '../../local/main.ts';
import { type ExecutionEvent, LocalStateMachines, type Notice } from '../../local/runner.ts';
import { stepbackBin } from '../support/cli.ts';
import { tempDir } from '../support/root.ts';

let machines: LocalStateMachines;
let storageUrl: string;

// One synthesis for the file: it costs seconds.
beforeAll(async () => {
  machines = new LocalStateMachines();
  storageUrl = `file://${await tempDir('local-runner')}`;
});

function run(machine: 'backup' | 'restore' | 'reshard', input: unknown) {
  const notices: Notice[] = [];
  const outcome = machines.run(machine, input, {
    storageUrl,
    logger: silentLogger,
    onNotice: (n) => notices.push(n),
  });
  return outcome.then((result) => ({ result, notices }));
}

/** What `stepback run` itself reports for a request, read from its callback descriptor. */
async function agentCallback(request: object): Promise<{ callback: string; error?: string }> {
  const child = spawn(
    process.execPath,
    [
      stepbackBin,
      'run',
      '--request-b64',
      encodeAgentRequest(request as never),
      '--task-token',
      'local-t',
      '--callback-fd',
      '3',
    ],
    { stdio: ['ignore', 'ignore', 'ignore', 'pipe'] },
  );
  const lines: { callback: string; error?: string }[] = [];
  createInterface({ input: child.stdio[3] as Readable }).on('line', (line) => lines.push(JSON.parse(line)));
  await new Promise((resolve) => child.once('close', resolve));
  expect(lines[0]).toEqual({ callback: 'heartbeat' });
  return lines.at(-1)!;
}

describe('the local state machines', () => {
  it('fail a bad input at validation with the field named, and notify', async () => {
    const { result, notices } = await run('restore', {
      keyspace: 'ks',
      shard: '0',
      host: '/x/my.cnf',
      deleteBeforeRestore: 'yes',
    });
    expect(result).toEqual({
      status: 'FAILED',
      error: 'USAGE',
      cause: expect.stringMatching(/^input\.deleteBeforeRestore: /),
    });
    expect(notices).toHaveLength(1);
    expect(notices[0]!.subject).toBe('stepback restore failed: USAGE');
  });

  it('fail a restore with NO_BACKUP when the shard has no complete backup', async () => {
    const { result, notices } = await run('restore', { keyspace: 'ks', shard: '0', host: '/x/my.cnf' });
    expect(result).toMatchObject({
      status: 'FAILED',
      error: 'NO_BACKUP',
      cause: expect.stringMatching(/no complete backup in ks\/0/),
    });
    expect(notices[0]!.message).toContain('Error: NO_BACKUP');
  });

  it('fail a backup with the error code the agent reported, after notifying', async () => {
    const host = path.join(await tempDir('no-instance'), 'my.cnf');
    const { result, notices } = await run('backup', { targets: [{ keyspace: 'ks', shard: '0', host }] });
    // The same request, run as SSM would run it on the host.
    const agent = await agentCallback({
      operation: 'backup',
      storage: storageUrl,
      dir: 'ks/0',
      defaultsFile: host,
      engine: 'physical',
      compression: 'zstd',
      concurrency: 4,
    });
    expect(agent.callback).toBe('failure');
    expect(result).toMatchObject({
      status: 'FAILED',
      error: agent.error,
      cause: expect.stringContaining(`ks/0 on ${host}: ${agent.error}`),
    });
    expect(notices).toHaveLength(1);
    expect(notices[0]!.subject).toBe(`stepback backup failed: ${agent.error}`);
  });

  it('fail a reshard at validation when a key-range destination has no range', async () => {
    const { result } = await run('reshard', {
      keyspace: 'shop',
      shard: '0',
      sourceHost: '/src/my.cnf',
      sourceUri: 'mysql://root@127.0.0.1:1/shop',
      database: 'shop',
      keyColumn: 'keyspace_id',
      keyType: 'uint64',
      destinations: [{ host: '/a/my.cnf', uri: 'mysql://root@127.0.0.1:2/shop' }],
    });
    expect(result).toMatchObject({
      status: 'FAILED',
      error: 'USAGE',
      cause: expect.stringMatching(/^input\.destinations\[0\]\.keyRange: /),
    });
  });
});

/** runLocalCli's io, collecting what it writes. */
function captureIo(cwd: string) {
  const out = { stdout: '', stderr: '' };
  const append = (stream: 'stdout' | 'stderr', text: string) => {
    out[stream] += text;
    return true;
  };
  const io = {
    stdout: { write: (t: string) => append('stdout', t) } as never,
    stderr: { write: (t: string) => append('stderr', t) } as never,
    env: process.env,
    cwd,
  };
  return { io, out };
}

describe('a Backup of more targets than one execution takes', () => {
  it('runs them in batches of child executions, and fewer in one inline Map', async () => {
    const batched = new LocalStateMachines({ shardsPerExecution: 2 });
    const dir = await tempDir('batches');
    const targets = ['a', 'b', 'c'].map((shard) => ({
      keyspace: 'ks',
      shard,
      host: path.join(dir, shard, 'my.cnf'),
    }));
    const entered = (events: ExecutionEvent[]) =>
      new Set(events.flatMap((e) => (e.type === 'entered' ? [e.state] : [])));
    const events: ExecutionEvent[] = [];
    const result = await batched.run(
      'backup',
      { targets },
      {
        storageUrl,
        logger: silentLogger,
        onEvent: (event) => events.push(event),
      },
    );
    // Every shard fails here (no instance), but each ran, in two batches of its own execution.
    expect(result).toMatchObject({
      status: 'FAILED',
      cause: expect.stringMatching(/^3 of 3 shard\(s\) failed: ks\/a on .*ks\/b on .*ks\/c on /),
    });
    expect([...entered(events)]).toEqual(
      expect.arrayContaining([
        'InBatches',
        'BackupBatches',
        'BackupBatch',
        'SummarizeBatch',
        'SummarizeBatches',
      ]),
    );
    expect(events.filter((e) => e.type === 'entered' && e.state === 'BackupBatch')).toHaveLength(2);
    expect(events.filter((e) => e.type === 'entered' && e.state === 'AgentBackup')).toHaveLength(3);

    const inline: ExecutionEvent[] = [];
    await batched.run(
      'backup',
      { targets: targets.slice(0, 2) },
      {
        storageUrl,
        logger: silentLogger,
        onEvent: (event) => inline.push(event),
      },
    );
    expect([...entered(inline)]).toContain('BackupShards');
    expect([...entered(inline)]).not.toContain('BackupBatches');
  });
});

describe('stepback-local', () => {
  it('fails a Backup within 30 s with AGENT_COMMAND_FAILED and the shell’s error when the agent is missing', async () => {
    const dir = await tempDir('missing-agent');
    await fs.writeFile(
      path.join(dir, 'input.json'),
      JSON.stringify({ targets: [{ keyspace: 'ks', shard: '0', host: path.join(dir, 'my.cnf') }] }),
    );
    const { io, out } = captureIo(dir);
    const missing = path.join(dir, 'bin', 'stepback');
    const code = await runLocalCli(
      ['backup', '--input', 'input.json', '--storage', storageUrl, '--agent-command', missing, '--json'],
      io,
    );
    expect(code).toBe(1);
    // Without the failure path the task would wait for its 300 s heartbeat timeout.
    expect(JSON.parse(out.stdout.trim())).toMatchObject({
      status: 'FAILED',
      error: 'AGENT_COMMAND_FAILED',
      cause: expect.stringMatching(
        new RegExp(
          `ks/0 on .*: AGENT_COMMAND_FAILED: the SSM command .* ended Failed without the agent reporting\\nstderr:\\n.*${missing}.*not found`,
          's',
        ),
      ),
    });
  }, 30_000);

  it('refuses an agent command that is not an absolute path', async () => {
    const dir = await tempDir('bad-agent');
    await fs.writeFile(path.join(dir, 'input.json'), '{}');
    const { io, out } = captureIo(dir);
    expect(
      await runLocalCli(['backup', '--input', 'input.json', '--agent-command', '/bin/step back'], io),
    ).toBe(2);
    expect(out.stderr).toMatch(/error: --agent-command: .*agent\.command: must be an absolute path/s);
  });

  it('runs a machine from an input file and exits with the code of the error', async () => {
    const dir = await tempDir('local-cli');
    const input = path.join(dir, 'input.json');
    await fs.writeFile(input, JSON.stringify({ keyspace: 'ks', shard: '0', host: '/x/my.cnf' }));
    let stdout = '';
    let stderr = '';
    const io = {
      stdout: {
        write: (t: string) => {
          stdout += t;
          return true;
        },
      } as never,
      stderr: {
        write: (t: string) => {
          stderr += t;
          return true;
        },
      } as never,
      env: process.env,
      cwd: dir,
    };
    const code = await runLocalCli(
      ['restore', '--input', 'input.json', '--storage', storageUrl, '--json'],
      io,
    );
    expect(code).toBe(3);
    expect(JSON.parse(stdout.trim())).toMatchObject({ status: 'FAILED', error: 'NO_BACKUP' });
    expect(stderr).toMatch(/error: restore failed: NO_BACKUP: /);
    expect(await runLocalCli(['restore', '--input', 'nonesuch.json'], io)).toBe(2);
    expect(stderr).toMatch(/error: cannot read --input nonesuch\.json: /);
  });
});
