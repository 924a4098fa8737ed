import type { Dirent, Stats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { StepbackError } from '../../../core/errors.ts';
import type { Logger } from '../../../core/log.ts';
import type { FileBase } from '../../../core/manifest.ts';
import {
  type DataLayout,
  isDatabaseDirectoryName,
  isReplicationState,
  redoDirectory,
  refusedPath,
  replacedDirectories,
  temporaryTable,
  topLevelFileBase,
} from './layout.ts';

/** One file of a cold copy. */
export interface DataFile {
  base: FileBase;
  /** Relative to the base directory, `/`-separated. */
  path: string;
  absolute: string;
  size: number;
}

async function readDirectory(dir: string): Promise<Dirent[]> {
  try {
    return await fs.readdir(dir, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new StepbackError(`cannot list ${dir}: ${(error as Error).message}`, { cause: error });
  }
}

/** What an entry is, following a symbolic link; a dangling link is an error, not a skipped file. */
async function kindOf(dir: string, entry: Dirent): Promise<{ stats: Stats; linked: boolean }> {
  const absolute = path.join(dir, entry.name);
  try {
    return { stats: await fs.stat(absolute), linked: entry.isSymbolicLink() };
  } catch (error) {
    throw new StepbackError(`cannot read ${absolute}: ${(error as Error).message}`, {
      cause: error,
      hint: entry.isSymbolicLink()
        ? 'it is a symbolic link to something that does not exist: fix or remove it'
        : undefined,
    });
  }
}

/** Every regular file under `dir` (a database directory), relative paths prefixed with `prefix`. */
async function listDatabaseFiles(dir: string, prefix: string, logger: Logger): Promise<DataFile[]> {
  const files: DataFile[] = [];
  for (const entry of await readDirectory(dir)) {
    if (temporaryTable.test(entry.name)) continue;
    const relative = `${prefix}/${entry.name}`;
    const { stats, linked } = await kindOf(dir, entry);
    if (stats.isDirectory()) {
      if (linked) {
        logger.warn(`not copying ${relative}: a symbolic link to a directory inside a database directory`);
        continue;
      }
      files.push(...(await listDatabaseFiles(path.join(dir, entry.name), relative, logger)));
    } else if (stats.isFile()) {
      if (entry.name.endsWith('.isl')) {
        throw new StepbackError(
          `${relative} places a table's data outside the datadir (DATA DIRECTORY), which a cold copy of the datadir does not hold`,
          {
            hint: 'move the table into the datadir (ALTER TABLE … without DATA DIRECTORY) or use another engine',
          },
        );
      }
      files.push({ base: 'data', path: relative, absolute: path.join(dir, entry.name), size: stats.size });
    } else {
      logger.warn(`not copying ${relative}: not a regular file`);
    }
  }
  return files;
}

/**
 * The files a cold copy of a stopped instance needs: the system tablespace, redo and undo logs,
 * Aria's logs, the datadir's own data files and every database directory — never binary or relay
 * logs, replication info, pid, socket, error log, temporary tablespaces or MySQL's auto.cnf.
 * Sorted by base and path.
 */
export async function listDataFiles(layout: DataLayout, logger: Logger): Promise<DataFile[]> {
  const files: DataFile[] = [];
  const skipped: string[] = [];
  for (const dir of [...new Set(Object.values(layout.baseDirs))]) {
    for (const entry of await readDirectory(dir)) {
      const absolute = path.join(dir, entry.name);
      const base = topLevelFileBase(layout, dir, entry.name);
      const isRedoDirectory = dir === layout.baseDirs['innodb-log'] && entry.name === redoDirectory;
      const mayBeDatabase = dir === layout.datadir && isDatabaseDirectoryName(layout, entry.name);
      if (!base && !isRedoDirectory && !mayBeDatabase) {
        if (!(dir === layout.datadir && layout.notDatabases.has(entry.name))) skipped.push(absolute);
        continue;
      }
      const { stats } = await kindOf(dir, entry);
      if (base && stats.isFile()) {
        files.push({ base, path: entry.name, absolute, size: stats.size });
      } else if (isRedoDirectory && stats.isDirectory()) {
        for (const redo of await readDirectory(absolute)) {
          const relative = `${redoDirectory}/${redo.name}`;
          if (refusedPath(layout, 'innodb-log', relative) !== undefined) continue;
          const file = path.join(absolute, redo.name);
          files.push({
            base: 'innodb-log',
            path: relative,
            absolute: file,
            size: (await fs.stat(file)).size,
          });
        }
      } else if (mayBeDatabase && stats.isDirectory()) {
        files.push(...(await listDatabaseFiles(absolute, entry.name, logger)));
      } else {
        skipped.push(absolute);
      }
    }
  }
  if (layout.ariaLogPath) {
    const ariaDir = path.join(layout.datadir, layout.ariaLogPath);
    for (const entry of await readDirectory(ariaDir)) {
      const relative = `${layout.ariaLogPath}/${entry.name}`;
      if (entry.isFile() && refusedPath(layout, 'data', relative) === undefined) {
        const absolute = path.join(ariaDir, entry.name);
        files.push({ base: 'data', path: relative, absolute, size: (await fs.stat(absolute)).size });
      }
    }
  }
  if (skipped.length > 0) logger.debug('not data, not copied', { entries: skipped });
  return files.sort((a, b) => compareText(`${a.base}:${a.path}`, `${b.base}:${b.path}`));
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The top-level entries a restore replaces in `layout`'s directories: every data file and database
 * directory (whole), the redo directory, and the replication state (binary and relay logs, their
 * index and state files, replication info) that belongs to the data being replaced.
 */
export async function listReplacedEntries(layout: DataLayout): Promise<string[]> {
  const entries: string[] = [];
  const ariaTop = layout.ariaLogPath ? layout.ariaLogPath.split('/')[0] : undefined;
  for (const dir of replacedDirectories(layout)) {
    for (const entry of await readDirectory(dir)) {
      const absolute = path.join(dir, entry.name);
      const isDirectory =
        entry.isDirectory() || (entry.isSymbolicLink() && (await isDirectoryPath(absolute)));
      const replaced = isDirectory
        ? (dir === layout.datadir &&
            (isDatabaseDirectoryName(layout, entry.name) || entry.name === ariaTop)) ||
          (dir === layout.baseDirs['innodb-log'] && entry.name === redoDirectory)
        : topLevelFileBase(layout, dir, entry.name) !== undefined ||
          isReplicationState(layout, dir, entry.name);
      if (replaced) entries.push(absolute);
    }
  }
  return entries.sort(compareText);
}

async function isDirectoryPath(target: string): Promise<boolean> {
  try {
    return (await fs.stat(target)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The databases in a stopped instance's datadir that hold anything (a directory with a file other
 * than db.opt), for the check before a restore replaces them.
 */
export async function databasesWithFiles(layout: DataLayout): Promise<string[]> {
  const databases: string[] = [];
  for (const entry of await readDirectory(layout.datadir)) {
    if (!isDatabaseDirectoryName(layout, entry.name)) continue;
    const absolute = path.join(layout.datadir, entry.name);
    if (!(entry.isDirectory() || (entry.isSymbolicLink() && (await isDirectoryPath(absolute))))) continue;
    const contents = await readDirectory(absolute);
    if (contents.some((file) => file.name !== 'db.opt' && !temporaryTable.test(file.name))) {
      databases.push(entry.name);
    }
  }
  return databases.sort(compareText);
}
