import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { StepbackError } from '../../../core/errors.ts';
import type { BackupTool } from '../../../core/manifest.ts';
import { findExecutable } from '../../mysqld/binaries.ts';

const run = promisify(execFile);

/**
 * mariabackup (MariaDB's backup tool, package `mariadb-backup`) and mbstream, its stream extractor:
 * found, checked against the server, and run with their output kept for errors.
 */

export const TOOL_PACKAGE = 'mariadb-backup';

export interface BackupTools {
  mariabackup: string;
  mbstream: string;
  tool: BackupTool;
  /** `10.11.19`: the release the tool was built from. */
  release: string;
}

/** `10.11.19` from `10.11.19-MariaDB-0+deb12u1-log` or `… based on MariaDB server 10.11.19-MariaDB …`. */
export function releaseOf(version: string): string | undefined {
  return /(\d+\.\d+\.\d+)/.exec(version)?.[1];
}

function installHint(serverVersion: string): string {
  const release = releaseOf(serverVersion) ?? serverVersion;
  return `install the ${TOOL_PACKAGE} package of the server's release ${release} (Debian/Ubuntu: apt-get install ${TOOL_PACKAGE}; RHEL: dnf install MariaDB-backup), the same release as the server packages`;
}

/**
 * mariabackup and mbstream of the server's release. A tool of another release may not read the
 * server's redo log, or prepare a backup the server cannot start on: refused before anything runs.
 */
export async function findBackupTools(serverVersion: string): Promise<BackupTools> {
  const mariabackup = findExecutable(['mariadb-backup', 'mariabackup']);
  const mbstream = findExecutable(['mbstream', 'mariadb-backup-stream']);
  if (!mariabackup || !mbstream) {
    throw new StepbackError(
      `the online engine needs mariabackup and mbstream, and ${mariabackup ? 'mbstream' : 'mariabackup'} is not on PATH or in /usr/sbin`,
      { hint: installHint(serverVersion) },
    );
  }
  let output: string;
  try {
    const result = await run(mariabackup, ['--version']);
    output = `${result.stdout}${result.stderr}`;
  } catch (error) {
    throw new StepbackError(`cannot run ${mariabackup} --version: ${(error as Error).message}`, {
      cause: error,
      hint: installHint(serverVersion),
    });
  }
  const match = /server\s+(\S+)/.exec(output);
  const version = match?.[1];
  const release = version ? releaseOf(version) : undefined;
  if (!version || !release) {
    throw new StepbackError(
      `cannot read a version from ${mariabackup} --version: ${JSON.stringify(output.trim())}`,
    );
  }
  if (release !== releaseOf(serverVersion)) {
    throw new StepbackError(
      `${mariabackup} is from MariaDB ${release}, the server runs ${serverVersion}: the tool must come from the same release`,
      { hint: installHint(serverVersion) },
    );
  }
  return { mariabackup, mbstream, tool: { name: 'mariabackup', version }, release };
}

/** The last lines a tool wrote, kept while it runs (its log can be long). */
export class LastLines {
  readonly #lines: string[] = [];
  #partial = '';
  readonly #keep: number;

  constructor(keep = 15) {
    this.#keep = keep;
  }

  add = (chunk: Buffer | string): void => {
    const text = this.#partial + chunk.toString();
    const lines = text.split('\n');
    this.#partial = lines.pop() ?? '';
    this.#lines.push(...lines.filter((line) => line.trim() !== ''));
    if (this.#lines.length > this.#keep) this.#lines.splice(0, this.#lines.length - this.#keep);
  };

  text(): string {
    return [...this.#lines, this.#partial]
      .filter((line) => line.trim() !== '')
      .slice(-this.#keep)
      .join('\n');
  }
}

/** Resolves with the exit code (or the signal's name) once `child` has exited and closed its pipes. */
export function exitOf(child: ChildProcess): Promise<number | string> {
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });
}

/** A failed tool run, with its last lines: what the operator needs to see. */
export function toolFailed(
  what: string,
  outcome: number | string,
  lines: LastLines,
  hint: string,
): StepbackError {
  const how = typeof outcome === 'number' ? `exited with code ${outcome}` : `was killed (${outcome})`;
  return new StepbackError(`${what} ${how}; its last lines:\n${lines.text() || '(nothing)'}`, { hint });
}

/** Runs a tool to completion, stderr and stdout kept as last lines; throws toolFailed on failure. */
export async function runTool(
  file: string,
  args: readonly string[],
  options: { what: string; hint: string; signal: AbortSignal; cwd?: string },
): Promise<LastLines> {
  const lines = new LastLines();
  const child = spawn(file, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    signal: options.signal,
    ...(options.cwd ? { cwd: options.cwd } : {}),
  });
  child.stdout?.on('data', lines.add);
  child.stderr?.on('data', lines.add);
  const outcome = await exitOf(child).catch((error: unknown) => {
    if (options.signal.aborted) throw options.signal.reason;
    throw error;
  });
  if (outcome !== 0) throw toolFailed(options.what, outcome, lines, options.hint);
  return lines;
}
