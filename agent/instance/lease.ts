import fs from 'node:fs/promises';
import os from 'node:os';
import { InstanceBusyError, messageOf, StepbackError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import type { MysqlDaemon } from '../mysqld/daemon.ts';
import { isProcessRunning } from '../mysqld/process.ts';
import {
  InstanceOperation,
  markerPath,
  type OperationMarker,
  type Recoverer,
  readMarker,
  writeMarker,
} from './marker.ts';
import { recoverers } from './recoverers.ts';
import { type InstanceState, restoreState } from './state.ts';

/**
 * One stepback operation per instance at a time, and crash safety: before an operation changes
 * anything it holds a marker file next to the datadir recording what it found. A marker whose process
 * is gone means an operation was killed; the next command on the instance puts it back first.
 */

async function isStepbackProcess(pid: number): Promise<boolean> {
  if (pid === process.pid) return true;
  if (!(await isProcessRunning(pid))) return false;
  // A recycled pid belongs to some other program: then the marker's operation is dead.
  const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return /stepback|vitest|node/.test(cmdline);
}

/** The recoverer of the operation a marker names; refuses a marker no known operation wrote. */
export function recovererOf(marker: OperationMarker, file: string): Recoverer | undefined {
  const operation = InstanceOperation.safeParse(marker.operation);
  if (!operation.success) {
    throw new StepbackError(
      `the operation marker ${file} was left by "stepback ${marker.operation}", which this version cannot recover`,
      {
        hint: `run stepback ${marker.operation} again with the version that started it, or check the instance by hand (running, read_only, replication) and delete the file`,
      },
    );
  }
  return recoverers[operation.data];
}

/**
 * Puts the instance back when a marker was left by an operation that is no longer running, and says
 * so. Throws InstanceBusyError when the operation is still running. Returns what was done.
 */
export async function recoverInterrupted(daemon: MysqlDaemon, logger: Logger): Promise<string[]> {
  const file = markerPath(daemon);
  const marker = await readMarker(file);
  if (!marker) return [];
  if (marker.pid !== process.pid && (await isStepbackProcess(marker.pid))) {
    throw new InstanceBusyError(
      `instance ${daemon.config.datadir} is busy: stepback ${marker.operation} (pid ${marker.pid} on ${marker.host}) has been running since ${marker.startedAt}`,
      { hint: 'wait for it to finish; only one stepback operation runs on an instance at a time' },
    );
  }
  const recoverer = recovererOf(marker, file);
  logger.warn(
    `an earlier stepback ${marker.operation} (pid ${marker.pid}, started ${marker.startedAt}) was interrupted; putting the instance back`,
  );
  const actions: string[] = [];
  if (recoverer) actions.push(...(await recoverer.recover(daemon, marker, logger)));
  if (marker.original) actions.push(...(await restoreState(daemon, marker.original, logger)));
  await fs.rm(file, { force: true });
  logger.warn(
    `recovered from the interrupted ${marker.operation}: ${actions.join(', ') || 'nothing needed changing'}`,
  );
  return actions;
}

/** The right to change an instance, held while an operation runs. */
export interface InstanceLease {
  readonly marker: OperationMarker;
  /** Records the state found (before changing anything) and operation-specific recovery data. */
  record(update: { original?: InstanceState; details?: Record<string, unknown> }): Promise<void>;
  release(): Promise<void>;
  /** What recovery did before this operation started (empty when nothing was interrupted). */
  readonly recovered: string[];
}

/**
 * Recovers an interrupted operation if there was one, then takes the instance for `operation`.
 * A second operation gets InstanceBusyError naming the first.
 */
export async function acquireInstance(
  daemon: MysqlDaemon,
  operation: InstanceOperation,
  logger: Logger,
): Promise<InstanceLease> {
  const recovered = await recoverInterrupted(daemon, logger);
  const file = markerPath(daemon);
  let marker: OperationMarker = {
    version: 1,
    operation,
    pid: process.pid,
    host: os.hostname(),
    startedAt: new Date().toISOString(),
  };
  try {
    await fs.writeFile(file, `${JSON.stringify(marker, null, 2)}\n`, { flag: 'wx', flush: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new StepbackError(`cannot write the operation marker ${file}: ${messageOf(error)}`, {
        cause: error,
      });
    }
    const other = await readMarker(file);
    throw new InstanceBusyError(
      `instance ${daemon.config.datadir} is busy: stepback ${other?.operation ?? 'operation'} (pid ${other?.pid ?? '?'}) just started`,
      { hint: 'wait for it to finish; only one stepback operation runs on an instance at a time' },
    );
  }
  let released = false;
  return {
    recovered,
    get marker() {
      return marker;
    },
    async record(update) {
      marker = {
        ...marker,
        ...(update.original ? { original: update.original } : {}),
        ...(update.details ? { details: { ...marker.details, ...update.details } } : {}),
      };
      await writeMarker(file, marker);
    },
    async release() {
      if (released) return;
      released = true;
      await fs.rm(file, { force: true });
    },
  };
}
