import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import fs from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { StepbackError } from '../../core/errors.ts';

/**
 * Starting and stopping a mysqld process directly (tests, the local default, hosts without
 * systemd). The daemon outlives the agent: it is spawned detached, its pid read from the pid file.
 */

/** True while `pid` runs. A zombie (exited, not yet reaped) counts as gone: `kill -0` would say alive. */
export async function isProcessRunning(pid: number): Promise<boolean> {
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Waits until `pid` has exited; false when `timeoutMs` passed first. */
export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (await isProcessRunning(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

/** The pid in a pid file, or undefined when the file is missing or holds no number. */
export async function readPidFile(pidFile: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt((await fs.readFile(pidFile, 'utf8')).trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** The last lines of a log, to explain why mysqld did not start. */
export async function tailOf(file: string | undefined, lines = 15): Promise<string> {
  if (!file) return '';
  try {
    const text = await fs.readFile(file, 'utf8');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export interface SpawnMysqldOptions {
  /** mariadbd or mysqld, a path or a name on PATH. */
  binary: string;
  defaultsFile: string;
  extraArgs?: readonly string[];
  /** Where mysqld writes stdout/stderr when the cnf names no log-error. */
  consoleLog?: string;
}

/**
 * Spawns mysqld detached with `--defaults-file` first (else Debian's /etc/mysql files are read too)
 * and returns its pid. Readiness is the caller's to wait for.
 */
export async function spawnMysqld(options: SpawnMysqldOptions): Promise<number> {
  const out = options.consoleLog ? openSync(options.consoleLog, 'a') : 'ignore';
  try {
    const child = spawn(
      options.binary,
      [`--defaults-file=${options.defaultsFile}`, ...(options.extraArgs ?? [])],
      {
        detached: true,
        stdio: ['ignore', out, out],
      },
    );
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('spawn', () => resolve(child.pid!));
      child.once('error', (error) =>
        reject(
          new StepbackError(`cannot run ${options.binary}: ${error.message}`, {
            cause: error,
            hint: 'install the MariaDB or MySQL server, or pass --mysqld /path/to/mysqld',
          }),
        ),
      );
    });
    child.unref();
    return pid;
  } finally {
    if (typeof out === 'number') closeSync(out);
  }
}
