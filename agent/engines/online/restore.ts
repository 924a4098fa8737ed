import { spawn } from 'node:child_process';
import type { Dirent } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DiskFullError, freeBytes } from '../../../core/disk-space.ts';
import { keepFirstError, ManifestError, StepbackError } from '../../../core/errors.ts';
import type { Logger } from '../../../core/log.ts';
import type { FileBase, OnlineManifest } from '../../../core/manifest.ts';
import { syncFiles } from '../../../core/stream/sync.ts';
import { ByteProgress } from '../../report/progress.ts';
import type { EngineRestore, RestoreEngine, RestoreParams } from '../engine.ts';
import {
  type DataLayout,
  dataLayout,
  fileBases,
  isDatabaseDirectoryName,
  redoDirectory,
  refusedPath,
} from '../physical/layout.ts';
import { holdingLeftovers } from '../physical/recovery.ts';
import { swapInStaged } from '../physical/restore.ts';
import { ownerOf } from '../physical/stage.ts';
import { type RestoreArea, type RestoreJournal, removeHolding, restoreArea } from '../physical/swap.ts';
import { exitOf, findBackupTools, LastLines, releaseOf, runTool, toolFailed } from './mariabackup.ts';
import { readParts } from './parts.ts';

/**
 * Restores an online backup: every part streamed from storage through its SHA-256 check and the
 * decompressor into `mbstream -x` (a MySQL clone: `tar -x`) in the staging area beside the datadir,
 * the next parts downloading ahead; `mariabackup --prepare` there (a clone was shut down cleanly:
 * nothing to prepare), the prepared entries sorted into the instance's directories, then the same
 * journalled swap, start, position and replication as the physical restore (and the same recovery
 * when it is interrupted). Until the swap the instance keeps running untouched: a corrupt part (named when its last byte is checked,
 * after its other bytes were extracted) or a failed prepare only removes the staging area.
 */
export const onlineRestoreEngine: RestoreEngine<OnlineManifest> = {
  name: 'online',
  async executeRestore(params: RestoreParams<OnlineManifest>): Promise<EngineRestore> {
    const { daemon, manifest, lease, logger } = params;
    // The binary's version: the instance may be stopped (a fresh host). A clone (tar) needs no tool.
    const tools = manifest.format === 'xbstream' ? await findBackupTools(daemon.binaries.version) : undefined;
    if (tools && releaseOf(manifest.tool.version) !== tools.release) {
      throw new StepbackError(
        `backup ${manifest.name} was taken with ${manifest.tool.name} ${manifest.tool.version}; this host has ${tools.tool.version}: a backup is prepared by the release that took it`,
        { hint: 'restore it on a host with the same MariaDB release, or take a new backup here' },
      );
    }
    const layout = withAriaLogs(dataLayout(daemon.config));
    if (!(await fs.stat(layout.datadir).catch(() => undefined))?.isDirectory()) {
      throw new StepbackError(`the datadir ${layout.datadir} does not exist`, {
        hint: "create it, owned by mysqld's user",
      });
    }
    const area = await restoreArea(layout);
    const leftovers = await holdingLeftovers(area.holding);
    if (leftovers.length > 0) {
      throw new StepbackError(`${leftovers.join(', ')} exists from an earlier restore that left no record`, {
        hint: 'it may hold the only copy of old files: look inside, then move or delete it',
      });
    }
    const journal: RestoreJournal = { phase: 'staging', holding: area.holding };
    await lease.record({ details: { restore: journal } });
    const downloadStarted = performance.now();
    let tops: { base: FileBase; top: string }[];
    try {
      const prepared = await extract(
        params,
        tools ? [tools.mbstream, '-x', '-C'] : ['tar', '-x', '-f', '-', '-C'],
        area,
      );
      if (tools) {
        logger.info('preparing the backup (applying the redo the tool copied)');
        await runTool(
          tools.mariabackup,
          [
            `--defaults-file=${path.join(prepared, 'backup-my.cnf')}`,
            '--prepare',
            `--target-dir=${prepared}`,
            `--use-memory=${prepareMemory()}`,
          ],
          {
            what: 'mariabackup --prepare',
            hint: 'the instance was not changed; the staged files were removed',
            signal: params.signal,
          },
        );
      }
      tops = await stagePrepared(prepared, layout, area, manifest, logger);
    } catch (error) {
      await removeHolding(area.holding).catch((cleanup: unknown) => keepFirstError(logger, error, cleanup));
      throw error;
    }
    const downloadSeconds = (performance.now() - downloadStarted) / 1000;
    params.signal.throwIfAborted();
    const swapSeconds = await swapInStaged(params, layout, area, tops, journal);
    return { files: manifest.files.length, bytes: manifest.bytes, downloadSeconds, swapSeconds };
  },
};

/**
 * The buffer pool `mariabackup --prepare` applies the redo with: its default of 100 MiB makes it
 * read and write pages back again and again when much was written during the backup. A quarter of
 * the memory free now, between that default and 1 GiB: the instance is running beside it.
 */
export function prepareMemory(free = os.freemem()): number {
  const mib = 1024 * 1024;
  return Math.floor(Math.min(1024 * mib, Math.max(100 * mib, free / 4)) / mib) * mib;
}

/**
 * Streams every part into the extractor (`mbstream -x -C` or `tar -x -f - -C`, the directory
 * appended); returns the directory it extracted into.
 */
async function extract(
  params: RestoreParams<OnlineManifest>,
  extractor: readonly string[],
  area: RestoreArea,
): Promise<string> {
  const { manifest } = params;
  const root = area.holding[0]!;
  const target = path.join(root, 'prepared');
  await fs.mkdir(target, { recursive: true, mode: 0o700 });
  const concurrency = Math.max(1, Math.min(params.concurrency, manifest.files.length));
  const needed = manifest.bytes.raw;
  const available = await freeBytes(root);
  if (available !== undefined && needed > available) {
    throw new DiskFullError(
      `restoring ${manifest.name} extracts it beside the datadir`,
      { dir: root, neededBytes: needed, freeBytes: available },
      { hint: 'free space on the datadir filesystem (the old files stay until the restore is complete)' },
    );
  }
  const progress = new ByteProgress(
    'downloading parts',
    { bytes: manifest.bytes.raw, items: manifest.files.length },
    params.progress,
  );
  progress.start();
  const lines = new LastLines();
  const [command, ...args] = extractor;
  const child = spawn(command!, [...args, target], {
    stdio: ['pipe', 'pipe', 'pipe'],
    signal: params.signal,
  });
  child.stdout.on('data', lines.add);
  child.stderr.on('data', lines.add);
  const exited = exitOf(child);
  exited.catch(() => {});
  child.stdin.on('error', () => {});
  try {
    await readParts(params.handle, manifest.files, manifest.compression, child.stdin, {
      signal: params.signal,
      concurrency,
      onBytes: progress.addBytes,
      onPartDone: progress.itemDone,
    });
  } catch (error) {
    child.kill('SIGTERM');
    await exited.catch(() => {});
    throw error;
  }
  child.stdin.end();
  const outcome = await exited;
  if (outcome !== 0) {
    throw toolFailed(
      extractor.slice(0, 2).join(' '),
      outcome,
      lines,
      'the instance was not changed; the staged files were removed',
    );
  }
  return target;
}

/**
 * The layout with Aria's log in the datadir unless configured elsewhere (MariaDB's default). A hot
 * copy of a crash-safe Aria table is only consistent with the Aria log the tool copied beside it:
 * the log goes with the data, where a cold copy of a cleanly stopped server can do without it.
 */
function withAriaLogs(layout: DataLayout): DataLayout {
  return { ...layout, ariaLogPath: layout.ariaLogPath ?? '' };
}

const ariaLogFile = /^(aria_log_control|aria_log\.\d+)$/;

/** The base a top-level entry of a prepared backup belongs to, or undefined (the tool's own files). */
function baseOfEntry(layout: DataLayout, entry: Dirent): FileBase | undefined {
  // MySQL 8.0.30+ keeps its redo log in a directory of its own.
  if (entry.isDirectory() && entry.name === redoDirectory) return 'innodb-log';
  if (entry.isDirectory()) return isDatabaseDirectoryName(layout, entry.name) ? 'data' : undefined;
  if (!entry.isFile()) return undefined;
  return fileBases.find((base) => refusedPath(layout, base, entry.name) === undefined);
}

/**
 * Moves the prepared entries into the staging root of the directory each belongs in (by the same
 * rules a physical backup copies by), owned like the datadir and synced; returns them. The tool's
 * own files (backup-my.cnf, xtrabackup_*) stay behind and go with the staging area.
 */
async function stagePrepared(
  prepared: string,
  layout: DataLayout,
  area: RestoreArea,
  manifest: OnlineManifest,
  logger: Logger,
): Promise<{ base: FileBase; top: string }[]> {
  const tops: { base: FileBase; top: string }[] = [];
  const left: string[] = [];
  for (const entry of await fs.readdir(prepared, { withFileTypes: true })) {
    // The tool streams Aria's log at the top; it goes where aria_log_dir_path says.
    if (entry.isFile() && ariaLogFile.test(entry.name) && layout.ariaLogPath) {
      const destination = path.join(area.stagedRoot('data'), layout.ariaLogPath, entry.name);
      await fs.mkdir(path.dirname(destination), { recursive: true, mode: 0o700 });
      await moveEntry(path.join(prepared, entry.name), destination);
      const top = layout.ariaLogPath.split('/')[0]!;
      if (!tops.some((t) => t.base === 'data' && t.top === top)) tops.push({ base: 'data', top });
      continue;
    }
    const base = baseOfEntry(layout, entry);
    if (!base) {
      left.push(entry.name);
      continue;
    }
    const destination = path.join(area.stagedRoot(base), entry.name);
    await fs.mkdir(path.dirname(destination), { recursive: true, mode: 0o700 });
    await moveEntry(path.join(prepared, entry.name), destination);
    tops.push({ base, top: entry.name });
  }
  logger.debug('not restored: the tool’s own files', { entries: left });
  const tablespaces = new Set(tops.filter((t) => t.base === 'innodb-data').map((t) => t.top));
  const missing = [...layout.systemTablespaces].filter((name) => !tablespaces.has(name));
  if (missing.length > 0) {
    throw new ManifestError(
      `the prepared backup has no ${missing.join(', ')}: innodb_data_file_path of this instance does not match the backup's`,
      manifest.name,
    );
  }
  const files: string[] = [];
  const owner = await ownerOf(layout.datadir);
  for (const { base, top } of tops) {
    await walk(path.join(area.stagedRoot(base), top), async (entry, directory) => {
      if (owner) await fs.chown(entry, owner.uid, owner.gid);
      if (!directory) files.push(entry);
    });
  }
  // Durable before the swap deletes anything.
  await syncFiles(files);
  return tops;
}

/** A rename, or a copy when the target is on another filesystem (InnoDB directories on their own volume). */
async function moveEntry(from: string, to: string): Promise<void> {
  try {
    await fs.rename(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
    await fs.cp(from, to, { recursive: true, preserveTimestamps: true });
    await fs.rm(from, { recursive: true, force: true });
  }
}

/** Calls `visit` for `target` and every file and directory under it. */
async function walk(
  target: string,
  visit: (entry: string, directory: boolean) => Promise<void>,
): Promise<void> {
  const directory = (await fs.lstat(target)).isDirectory();
  await visit(target, directory);
  if (!directory) return;
  for (const entry of await fs.readdir(target)) await walk(path.join(target, entry), visit);
}
