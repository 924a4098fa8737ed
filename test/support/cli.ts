import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const stepbackBin = path.join(projectRoot, 'bin', 'stepback.js');

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The last stdout line parsed as JSON (the --json result), or undefined. */
  json: unknown;
}

/** Runs the stepback CLI as a child process, as an operator or SSM would. */
export function runStepback(
  args: string[],
  options: {
    env?: Record<string, string>;
    node?: string;
    /** Options for that Node before the script (`--import …`). */
    nodeArgs?: string[];
    onSpawn?: (pid: number) => void;
    /** Called with everything written to stderr so far, after each write (to act on progress). */
    onStderr?: (stderr: string, pid: number) => void;
  } = {},
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      options.node ?? process.execPath,
      [...(options.nodeArgs ?? []), stepbackBin, ...args],
      {
        env: { ...process.env, ...options.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    if (child.pid) options.onSpawn?.(child.pid);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (data: Buffer) => {
      stdout += data.toString();
    });
    child.stderr.on('data', (data: Buffer) => {
      stderr += data.toString();
      if (child.pid) options.onStderr?.(stderr, child.pid);
    });
    child.once('error', reject);
    child.once('close', (code, signal) => {
      const last = stdout.trimEnd().split('\n').pop() ?? '';
      let json: unknown;
      try {
        json = JSON.parse(last);
      } catch {}
      resolve({ code, signal, stdout, stderr, json });
    });
  });
}

/** What `stepback run --callback-fd 3` sent back, and how it exited. */
export interface AgentRun {
  code: number | null;
  stderr: string;
  /** Every callback line, in order. */
  callbacks: Record<string, unknown>[];
  outcome:
    | { callback: 'success'; output: unknown }
    | { callback: 'failure'; error: string; cause: string }
    | undefined;
}

/**
 * Carries out a state machine request as the SSM document's command does, through `stepback run`,
 * its callbacks read as JSON lines from fd 3.
 */
export function runAgentRequest(
  request: object,
  env: Record<string, string> = {},
  /** Called with everything written to stderr so far, after each write (to act on progress). */
  onStderr?: (stderr: string) => void,
): Promise<AgentRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [stepbackBin, 'run', '--task-token', 'local-token', '--callback-fd', '3'],
      {
        env: { ...process.env, ...env, SSM_request: Buffer.from(JSON.stringify(request)).toString('base64') },
        stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    let lines = '';
    child.stderr?.on('data', (data: Buffer) => {
      stderr += data.toString();
      onStderr?.(stderr);
    });
    child.stdio[3]?.on('data', (data: Buffer) => {
      lines += data.toString();
    });
    child.once('error', reject);
    child.once('close', (code) => {
      const callbacks = lines
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      const outcome = callbacks.find(
        (c) => c.callback === 'success' || c.callback === 'failure',
      ) as AgentRun['outcome'];
      resolve({ code, stderr, callbacks, outcome });
    });
  });
}
