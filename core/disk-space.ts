import fs from 'node:fs/promises';
import { StepbackError, type StepbackErrorOptions } from './errors.ts';

/**
 * A full disk, said the way an operator acts on it: which directory, how much it needs, how much is
 * free. Every place that writes a large amount of data (staged restore files, dump files) turns a
 * "no space left" failure into this error.
 */
export class DiskFullError extends StepbackError {
  override readonly code = 'DISK_FULL';
  readonly dir: string;
  readonly neededBytes: number;
  readonly freeBytes: number | undefined;

  constructor(
    what: string,
    where: { dir: string; neededBytes: number; freeBytes?: number | undefined },
    options?: StepbackErrorOptions,
  ) {
    const free = where.freeBytes === undefined ? '' : `, ${describeBytes(where.freeBytes)} is free`;
    super(
      `${what}: the filesystem of ${where.dir} is full (it needs ${describeBytes(where.neededBytes)}${free})`,
      options,
    );
    this.dir = where.dir;
    this.neededBytes = where.neededBytes;
    this.freeBytes = where.freeBytes;
  }
}

const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** `12.5 MiB (13107200 bytes)`: readable, and exact for a script. */
export function describeBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(1)} ${units[unit]} (${bytes} bytes)`;
}

/** Free bytes for an unprivileged writer on the filesystem of `dir`; undefined when it cannot be read. */
export async function freeBytes(dir: string): Promise<number | undefined> {
  try {
    const stats = await fs.statfs(dir);
    return stats.bavail * stats.bsize;
  } catch {
    return undefined;
  }
}

/**
 * Whether `error` says a disk is full: ENOSPC from Node, or a MySQL/MariaDB error carrying OS error
 * 28 ("Errcode: 28", "No space left on device") or ER_DISK_FULL (1021).
 */
export function isDiskFull(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, errno, message } = error as { code?: unknown; errno?: unknown; message?: unknown };
  if (code === 'ENOSPC' || errno === 1021) return true;
  return typeof message === 'string' && /Errcode: 28\b|No space left on device/i.test(message);
}

/**
 * The DiskFullError for a write of `what` into `dir` that ran out of space, with the free space
 * measured now. `cause` is kept for the log.
 */
export async function diskFullError(
  what: string,
  dir: string,
  neededBytes: number,
  options: StepbackErrorOptions = {},
): Promise<DiskFullError> {
  return new DiskFullError(what, { dir, neededBytes, freeBytes: await freeBytes(dir) }, options);
}
