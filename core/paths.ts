import path from 'node:path';
import { z } from 'zod';
import { ManifestError } from './errors.ts';

/**
 * Names that reach storage keys, file names and SQL: validated here, once, so nothing read back
 * from a manifest or an execution input is used as a path or identifier unchecked.
 */

const segmentPattern = /^[A-Za-z0-9_.-]{1,128}$/;

/** One path segment of a backup directory: a keyspace, a shard (`-80`, `0`), a key range. */
export function isSafeSegment(segment: string): boolean {
  return segmentPattern.test(segment) && segment !== '.' && segment !== '..';
}

/** A keyspace, shard or cell name: one safe path segment. */
export const Segment = z.string().refine(isSafeSegment, 'must be letters, digits, "_", "." or "-"');

/** `KS/SHARD`, or `KS/SHARD/RANGE` for a snapshot split by key range. */
export const BackupDir = z
  .string()
  .min(1)
  .max(512)
  .refine((value) => value.split('/').length <= 4 && value.split('/').every(isSafeSegment), {
    message: 'must be 1 to 4 segments like "commerce/-80", each of letters, digits, "_", "." and "-"',
  });

/** Backup names sort by time: `YYYY-MM-DD.HHMMSS.<host>`; any safe single segment is accepted. */
export const BackupName = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$/,
    'must start with a letter or digit and use only [A-Za-z0-9_.-]',
  );

/** The name of one object inside a backup. */
export const StoredFileName = BackupName;

export function parseBackupDir(value: string): string {
  return BackupDir.parse(value);
}

/** The keyspace and shard a backup directory names (the first two segments). */
export function keyspaceAndShard(dir: string): { keyspace: string; shard: string } {
  const [keyspace = '', shard = '', ...rest] = dir.split('/');
  return { keyspace, shard: [shard, ...rest].filter(Boolean).join('/') };
}

/** A value quoted for a message, cut to 100 characters: a hostile manifest must not make a huge error. */
export function quoted(value: string): string {
  return value.length <= 100 ? JSON.stringify(value) : `${JSON.stringify(value.slice(0, 100))}…`;
}

/**
 * Why a relative path is unsafe, or undefined when it is safe: relative, `/`-separated, no empty,
 * `.` or `..` segment, no backslash or NUL.
 */
export function unsafeRelativePathReason(value: string): string | undefined {
  if (value.length === 0) return 'is empty';
  if (value.length > 4096) return 'is longer than 4096 characters';
  if (value.includes('\0')) return 'contains a NUL byte';
  if (value.includes('\\')) return 'contains a backslash';
  if (value.startsWith('/')) return 'is absolute';
  for (const segment of value.split('/')) {
    if (segment === '') return 'has an empty segment';
    if (segment === '.' || segment === '..') return `has a "${segment}" segment`;
  }
  return undefined;
}

export const RelativePath = z.string().superRefine((value, ctx) => {
  const reason = unsafeRelativePathReason(value);
  if (reason) ctx.addIssue({ code: 'custom', message: `path ${quoted(value)} ${reason}` });
});

/**
 * The absolute path of `relative` under `base`, refusing anything that would land outside it.
 * Checked again here (not only by the schema) because this is where a path becomes a file.
 */
export function resolveUnder(base: string, relative: string): string {
  const reason = unsafeRelativePathReason(relative);
  if (reason) throw new ManifestError(`path ${quoted(relative)} ${reason}; refusing to write it`);
  const root = path.resolve(base);
  const target = path.resolve(root, relative);
  if (target !== root && !target.startsWith(root + path.sep)) {
    throw new ManifestError(`path ${quoted(relative)} escapes ${root}; refusing to write it`);
  }
  return target;
}
