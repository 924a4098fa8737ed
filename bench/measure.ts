import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

/** One timed run of a command: wall seconds and the peak RSS GNU time saw (max over the process tree it waited for). */
export interface Timed {
  seconds: number;
  peakRssMb: number | undefined;
  stdout: string;
  stderr: string;
  code: number | null;
}

const gnuTime = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

/**
 * Runs `command` (argv, or a shell line when `shell` is true) and times it. Fails when it exits
 * non-zero, with the tail of its stderr.
 */
export async function timed(
  command: string[] | string,
  options: { env?: NodeJS.ProcessEnv; cwd?: string; allowFailure?: boolean } = {},
): Promise<Timed> {
  const argv = typeof command === 'string' ? ['/bin/bash', '-c', `set -o pipefail; ${command}`] : command;
  const wrapped = gnuTime ? [gnuTime, '-f', '__STEPBACK_TIME__ %e %M', ...argv] : argv;
  const started = process.hrtime.bigint();
  const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
    (resolve, reject) => {
      const child = spawn(wrapped[0]!, wrapped.slice(1), {
        env: options.env ?? process.env,
        cwd: options.cwd,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (data: Buffer) => {
        stdout += data.toString();
        if (stdout.length > 1 << 20) stdout = stdout.slice(-(1 << 19));
      });
      child.stderr.on('data', (data: Buffer) => {
        stderr += data.toString();
        if (stderr.length > 1 << 20) stderr = stderr.slice(-(1 << 19));
      });
      child.once('error', reject);
      child.once('close', (code) => resolve({ code, stdout, stderr }));
    },
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const match = /__STEPBACK_TIME__ ([\d.]+) (\d+)\s*$/.exec(result.stderr);
  const stderr = result.stderr.replace(
    /(Command exited with non-zero status \d+\n)?__STEPBACK_TIME__.*\s*$/,
    '',
  );
  if (result.code !== 0 && !options.allowFailure) {
    const shown = typeof command === 'string' ? command : command.join(' ');
    throw new Error(`${shown} exited with ${result.code}: ${stderr.trim().split('\n').slice(-5).join('\n')}`);
  }
  return {
    seconds,
    peakRssMb: match ? Number(match[2]) / 1024 : undefined,
    stdout: result.stdout,
    stderr,
    code: result.code,
  };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
