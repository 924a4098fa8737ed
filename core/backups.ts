import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ManifestError, MissingFileError, messageOf, NoBackupError } from './errors.ts';
import type { Logger } from './log.ts';
import { type BackupManifest, MANIFEST_FILE, parseManifest } from './manifest.ts';
import { isLegacySnapshotRange } from './storage/layout.ts';
import type { BackupHandle, BackupStorage } from './storage/types.ts';
import { mapConcurrent } from './stream/concurrency.ts';
import { HashingStream } from './stream/hash.ts';

/** A MANIFEST larger than this is refused before it is parsed (it lists files, not data). */
const MAX_MANIFEST_BYTES = 256 * 1024 * 1024;

/** Reads and validates a backup's MANIFEST; ManifestError when it is missing or invalid. */
export async function readManifest(handle: BackupHandle, signal?: AbortSignal): Promise<BackupManifest> {
  const label = `${handle.dir}/${handle.name}`;
  let stream: NodeJS.ReadableStream;
  try {
    stream = await handle.readFile(MANIFEST_FILE, signal ? { signal } : {});
  } catch (error) {
    if (error instanceof MissingFileError)
      throw new ManifestError('has no MANIFEST (incomplete)', label, { cause: error });
    throw error;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_MANIFEST_BYTES)
      throw new ManifestError(`MANIFEST is larger than ${MAX_MANIFEST_BYTES} bytes`, label);
    chunks.push(chunk);
  }
  return parseManifest(Buffer.concat(chunks).toString('utf8'), label);
}

/**
 * One backup as a listing shows it: complete with its manifest, or incomplete with the reason
 * (`error`: its MANIFEST is missing — still being written, or abandoned — or invalid).
 */
export type BackupSummary =
  | { dir: string; name: string; complete: true; manifest: BackupManifest }
  | { dir: string; name: string; complete: false; problem: string; error: ManifestError };

export async function inspectBackup(handle: BackupHandle): Promise<BackupSummary> {
  try {
    return { dir: handle.dir, name: handle.name, complete: true, manifest: await readManifest(handle) };
  } catch (error) {
    if (!(error instanceof ManifestError)) throw error;
    return { dir: handle.dir, name: handle.name, complete: false, problem: messageOf(error), error };
  }
}

/**
 * The backups of a shard's directory, oldest first. The range directories an older release put
 * there for its snapshots (`80-`) are not backups, and are left out.
 */
export async function listShardBackups(storage: BackupStorage, dir: string): Promise<BackupHandle[]> {
  return (await storage.listBackups(dir)).filter((handle) => !isLegacySnapshotRange(handle.name));
}

/** Every backup in `dir`, oldest first, each with its manifest read (a few at a time). */
export async function inspectBackups(
  storage: BackupStorage,
  dir: string,
  concurrency = 16,
): Promise<BackupSummary[]> {
  const handles = await listShardBackups(storage, dir);
  return mapConcurrent(handles, concurrency, (handle) => inspectBackup(handle));
}

/** `2026-11-24.101500.db1`: UTC time first, so names sort by time; the host part is sanitised. */
export function backupName(time: Date, host: string): string {
  const iso = time.toISOString();
  const stamp = `${iso.slice(0, 10)}.${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}`;
  const safeHost = host.replace(/[^A-Za-z0-9_.-]/g, '-').replace(/^[^A-Za-z0-9]+/, '') || 'host';
  return `${stamp}.${safeHost}`.slice(0, 200);
}

/** The time a backup name starts with, or undefined for names not made by `backupName`. */
export function timeOfBackupName(name: string): Date | undefined {
  const match = /^(\d{4})-(\d{2})-(\d{2})\.(\d{2})(\d{2})(\d{2})/.exec(name);
  if (!match) return undefined;
  const [, y, mo, d, h, mi, s] = match.map(Number) as number[];
  const time = new Date(Date.UTC(y!, mo! - 1, d!, h!, mi!, s!));
  return Number.isNaN(time.getTime()) ? undefined : time;
}

export interface BackupChoice {
  /** A specific backup; else the newest complete one. */
  name?: string | undefined;
  /** The newest complete backup that finished at or before this time. */
  atOrBefore?: Date | undefined;
  /** Only backups of these engines qualify when none is named (others are skipped, each with why). */
  engine?: BackupManifest['engine'] | readonly BackupManifest['engine'][] | undefined;
  /** Why a backup does not qualify (a restore to a point skips the backups from after it), if it does not. */
  skipIf?: ((manifest: BackupManifest) => string | undefined) | undefined;
}

export interface ChosenBackup {
  handle: BackupHandle;
  manifest: BackupManifest;
  /** Newer backups passed over, each with why (incomplete, invalid, too new). */
  skipped: { name: string; problem: string }[];
}

/**
 * The backup to restore: the newest complete one (or the named one, or the newest at or before a
 * time). Backups whose MANIFEST is missing or invalid are skipped with a warning naming each.
 * NoBackupError when nothing qualifies.
 */
export async function chooseBackup(
  storage: BackupStorage,
  dir: string,
  choice: BackupChoice,
  logger: Logger,
): Promise<ChosenBackup> {
  const handles = await listShardBackups(storage, dir);
  const skipped: ChosenBackup['skipped'] = [];
  const candidates = choice.name ? handles.filter((h) => h.name === choice.name) : [...handles].reverse();
  if (choice.name && candidates.length === 0) {
    throw new NoBackupError(dir, `backup ${dir}/${choice.name} does not exist in ${storage.url}`, {
      hint: `list the backups with: stepback backups list --storage ${storage.url} --dir ${dir}`,
    });
  }
  for (const handle of candidates) {
    const summary = await inspectBackup(handle);
    if (!summary.complete) {
      // Asked for by name, a backup whose MANIFEST exists but fails the checks is a verification
      // failure (exit 5), not a missing backup.
      if (choice.name && !(summary.error.cause instanceof MissingFileError)) throw summary.error;
      logger.warn(`skipping backup ${handle.name}: ${summary.problem}`, { dir });
      skipped.push({ name: handle.name, problem: summary.problem });
      continue;
    }
    const engines = choice.engine === undefined ? undefined : [choice.engine].flat();
    if (!choice.name && engines && !engines.includes(summary.manifest.engine)) {
      skipped.push({ name: handle.name, problem: `a ${summary.manifest.engine} backup` });
      continue;
    }
    if (choice.atOrBefore && new Date(summary.manifest.finishedAt) > choice.atOrBefore) {
      skipped.push({ name: handle.name, problem: `finished after ${choice.atOrBefore.toISOString()}` });
      continue;
    }
    const unfit = choice.skipIf?.(summary.manifest);
    if (unfit) {
      if (choice.name) {
        throw new NoBackupError(dir, `backup ${dir}/${choice.name} cannot be used: ${unfit}`, {
          hint: 'name an older backup, or leave the name out to use the newest one that fits',
        });
      }
      skipped.push({ name: handle.name, problem: unfit });
      continue;
    }
    return { handle, manifest: summary.manifest, skipped };
  }
  const what = choice.name
    ? `backup ${dir}/${choice.name} is not complete`
    : choice.skipIf
      ? `no complete backup in ${dir} fits (${
          skipped
            .map((s) => `${s.name}: ${s.problem}`)
            .slice(-3)
            .join('; ') || 'none'
        })`
      : choice.atOrBefore
        ? `no complete backup in ${dir} finished at or before ${choice.atOrBefore.toISOString()}`
        : `no complete backup in ${dir}`;
  throw new NoBackupError(dir, `${what} (storage ${storage.url}, ${skipped.length} skipped)`, {
    hint: `list the backups with: stepback backups list --storage ${storage.url} --dir ${dir}`,
  });
}

export interface ValidationProblem {
  file?: string;
  problem: string;
}

export interface ValidationReport {
  dir: string;
  name: string;
  deep: boolean;
  files: number;
  bytes: number;
  problems: ValidationProblem[];
}

/**
 * Checks a backup against its manifest: every file present with its stored size; with `deep`, every
 * file read and its SHA-256 compared. Problems are collected, not thrown, so one report names them all.
 */
export async function validateBackup(
  handle: BackupHandle,
  manifest: BackupManifest,
  options: {
    deep?: boolean;
    concurrency?: number;
    signal?: AbortSignal;
    onBytes?: (delta: number) => void;
  } = {},
): Promise<ValidationReport> {
  const listed = new Map((await handle.listFiles()).map((file) => [file.name, file.size]));
  const problems: ValidationProblem[] = [];
  let bytes = 0;
  const present = manifest.files.filter((file) => {
    const size = listed.get(file.name);
    if (size === undefined) problems.push({ file: file.name, problem: 'missing' });
    else if (size !== file.storedSize) {
      problems.push({ file: file.name, problem: `size ${size}, manifest says ${file.storedSize}` });
    } else return true;
    return false;
  });
  if (options.deep) {
    await mapConcurrent(
      present,
      options.concurrency ?? 4,
      async (file, _index, signal) => {
        const hasher = new HashingStream();
        const stream = await handle.readFile(file.name, { signal });
        try {
          await pipeline(stream, hasher, new Writable({ write: (_chunk, _encoding, done) => done() }), {
            signal,
          });
        } catch (error) {
          if (signal.aborted) throw error;
          problems.push({ file: file.name, problem: `cannot read: ${messageOf(error)}` });
          return;
        }
        bytes += hasher.bytes;
        options.onBytes?.(hasher.bytes);
        if (hasher.digest() !== file.sha256) {
          problems.push({
            file: file.name,
            problem: `sha256 ${hasher.digest()}, manifest says ${file.sha256}`,
          });
        }
      },
      options.signal ? { signal: options.signal } : {},
    );
  }
  return {
    dir: handle.dir,
    name: handle.name,
    deep: Boolean(options.deep),
    files: manifest.files.length,
    bytes,
    problems,
  };
}

export interface RetentionPolicy {
  /** Complete backups always kept, newest first. */
  keepCount: number;
  /** Complete backups younger than this are kept. */
  keepDays: number;
}

export interface PrunePlan {
  remove: { name: string; reason: string }[];
  keep: string[];
}

const DAY = 24 * 60 * 60 * 1000;

/**
 * Which backups retention removes: complete ones older than `keepDays` while more than `keepCount`
 * complete ones remain, never the newest complete one; incomplete ones older than a day (younger
 * ones may still be running). Pure: `now` and the summaries in, the plan out.
 */
export function planPrune(summaries: BackupSummary[], policy: RetentionPolicy, now: Date): PrunePlan {
  const plan: PrunePlan = { remove: [], keep: [] };
  const complete = summaries.filter((s): s is Extract<BackupSummary, { complete: true }> => s.complete);
  const newest = complete.at(-1)?.name;
  let remaining = complete.length;
  for (const summary of summaries) {
    if (!summary.complete) {
      const time = timeOfBackupName(summary.name);
      if (time && now.getTime() - time.getTime() > DAY) {
        plan.remove.push({
          name: summary.name,
          reason: `incomplete and older than a day (${summary.problem})`,
        });
      } else {
        plan.keep.push(summary.name);
      }
      continue;
    }
    const ageDays = (now.getTime() - new Date(summary.manifest.finishedAt).getTime()) / DAY;
    if (summary.name !== newest && ageDays > policy.keepDays && remaining > policy.keepCount) {
      plan.remove.push({
        name: summary.name,
        reason: `${ageDays.toFixed(1)} days old, ${remaining - 1} newer kept`,
      });
      remaining--;
    } else {
      plan.keep.push(summary.name);
    }
  }
  return plan;
}

/** Applies `planPrune` to a directory (or only reports it with `dryRun`). */
export async function pruneBackups(
  storage: BackupStorage,
  dir: string,
  policy: RetentionPolicy,
  options: { dryRun?: boolean; now?: Date; logger: Logger },
): Promise<PrunePlan & { dryRun: boolean }> {
  // A logical snapshot an older release kept among the shard's backups is not one of them: counted,
  // it could be taken for the newest backup and let the last physical one go.
  const summaries = (await inspectBackups(storage, dir)).filter(
    (summary) => !summary.complete || summary.manifest.engine !== 'logical',
  );
  const plan = planPrune(summaries, policy, options.now ?? new Date());
  if (!options.dryRun) {
    for (const { name, reason } of plan.remove) {
      options.logger.info(`removing backup ${dir}/${name}: ${reason}`);
      await storage.removeBackup(dir, name);
    }
  }
  return { ...plan, dryRun: Boolean(options.dryRun) };
}
