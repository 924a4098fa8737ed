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
    onSpawn?: (pid: number) => void;
    /** Called with everything written to stderr so far, after each write (to act on progress). */
    onStderr?: (stderr: string, pid: number) => void;
  } = {},
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(options.node ?? process.execPath, [stepbackBin, ...args], {
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
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
