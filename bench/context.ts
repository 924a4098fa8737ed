import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findExecutable } from '../agent/mysqld/binaries.ts';
import type { PrivateInstance } from '../local/private-instance.ts';
import type { Dataset } from './dataset.ts';
import { timed } from './measure.ts';

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The program the bench runs as stepback: the agent bundle once `buildAgentBundle` made it. */
let stepbackProgram = path.join(projectRoot, 'bin', 'stepback.js');

/**
 * Builds the agent the DB hosts run (`npm run bundle-agent`: stepback.mjs and stepback-agent.mjs)
 * into `dir` and measures that: it starts sooner than the TypeScript sources, which Node strips of
 * types on every start, and keeps its compiled code in Node's compile cache between runs.
 */
export async function buildAgentBundle(dir: string): Promise<void> {
  const bundle = path.join(dir, 'stepback.mjs');
  await timed([process.execPath, path.join(projectRoot, 'scripts', 'bundle-agent.js'), bundle]);
  stepbackProgram = bundle;
}

/** The program the bench runs as stepback (the bundle's entry, once built). */
export function stepbackProgramPath(): string {
  return stepbackProgram;
}

/** What every comparison shares: the data, two running instances and a scratch directory. */
export interface BenchContext {
  dataset: Dataset;
  /** Holds sbtest; the source of backups, snapshots and the left side of diffs. */
  source: PrivateInstance;
  /** Restore target, multirestore destination, right side of diffs. */
  target: PrivateInstance;
  work: string;
  log: (line: string) => void;
}

/** One stepback run: wall seconds and peak RSS, with the phases its --json result reports. */
export interface StepbackRun {
  seconds: number;
  peakRssMb: number | undefined;
  phases: Record<string, number>;
}

/** Phases read from a result: its own `seconds` (no CLI start-up) and the named parts of it. */
const phaseFields: Record<string, string> = {
  seconds: 'operation',
  copySeconds: 'copy',
  downloadSeconds: 'download',
  swapSeconds: 'swap and start',
  evidenceSeconds: 'evidence',
};

/** Runs the stepback CLI under GNU time with --json. */
export async function stepback(args: string[]): Promise<StepbackRun> {
  const run = await timed([process.execPath, stepbackProgram, ...args, '--json', '--quiet']);
  const phases: Record<string, number> = {};
  const last = run.stdout.trim().split('\n').at(-1) ?? '';
  let result: Record<string, unknown> = {};
  try {
    result = JSON.parse(last) as Record<string, unknown>;
  } catch {}
  for (const [field, phase] of Object.entries(phaseFields)) {
    if (typeof result[field] === 'number') phases[phase] = result[field];
  }
  return { seconds: run.seconds, peakRssMb: run.peakRssMb, phases };
}

let commands: Promise<string> | undefined;

/** Undefined when `stepback <command>` exists in this build, else why not (read from `stepback --help`). */
export async function stepbackCommandMissing(command: string): Promise<string | undefined> {
  commands ??= timed([process.execPath, stepbackProgram, '--help']).then((run) => run.stdout);
  const listed = new RegExp(`^\\s+${command}\\b`, 'm').test(await commands);
  return listed ? undefined : `stepback ${command} is not available in this build`;
}

/** Undefined when every binary is on PATH (or in /usr/sbin), else which is missing and how to get it. */
export async function binariesMissing(...names: string[]): Promise<string | undefined> {
  const missing = names.filter((name) => !findExecutable([name]));
  return missing.length
    ? `${missing.join(', ')} not installed (npm run bench installs them as root)`
    : undefined;
}

export async function directoryBytes(dir: string): Promise<number> {
  let total = 0;
  let entries: import('node:fs').Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true, recursive: true });
  } catch {
    return 0;
  }
  for (const entry of entries) {
    if (entry.isFile()) total += (await fs.stat(path.join(entry.parentPath, entry.name))).size;
  }
  return total;
}

export async function fileBytes(file: string): Promise<number> {
  return (await fs.stat(file)).size;
}

export async function emptyDir(dir: string): Promise<void> {
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { recursive: true });
}

/** `mariadb` client arguments for an instance. */
export function client(instance: PrivateInstance): string {
  return `mariadb --socket=${instance.socket} --user=root`;
}
