import path from 'node:path';
import { StepbackError } from '../../../core/errors.ts';
import type { FileBase } from '../../../core/manifest.ts';
import type { MysqldConfig } from '../../mysqld/config.ts';

/**
 * Where an instance keeps its data, from its configuration: which directory each manifest base
 * names, and which names in those directories are data (copied by a backup, replaced by a
 * restore). One set of rules serves both, so a manifest can only restore what a backup would take.
 */
export interface DataLayout {
  datadir: string;
  /** The directory each manifest base restores into. */
  baseDirs: Readonly<Record<FileBase, string>>;
  /** System tablespace file names (innodb_data_file_path), in baseDirs['innodb-data']. */
  systemTablespaces: ReadonlySet<string>;
  /** Aria's log directory relative to the datadir ('' = the datadir itself); undefined without Aria. */
  ariaLogPath: string | undefined;
  /** Top-level names in the datadir that are directories of something else (logs, other bases, secure_file_priv). */
  notDatabases: ReadonlySet<string>;
  /** Base paths (directory + basename) of the binary and relay logs. */
  logBases: readonly string[];
}

export const fileBases: readonly FileBase[] = ['data', 'innodb-data', 'innodb-log', 'innodb-undo'];

/** MySQL 8.0.30+ keeps its redo log in this directory of innodb_log_group_home_dir. */
export const redoDirectory = '#innodb_redo';

const redoLogFile = /^ib_logfile\d+$/;
const redoDirectoryFile = /^#ib_redo\d+$/;
const undoTablespace = /^(undo_?\d+|[^#].*\.ibu)$/;
/**
 * Files at the top of the datadir that belong to the data: MySQL's data dictionary and general
 * tablespaces (*.ibd), doublewrite files, the buffer pool dump and the upgrade marker.
 */
const datadirFile =
  /^(ib_buffer_pool|mysql_upgrade_info|mariadb_upgrade_info|[^#].*\.ibd|#ib_\d+_\d+\.dblwr)$/;
const ariaLogFile = /^(aria_log_control|aria_log\.\d+)$/;
/** Temporary tables and leftovers of interrupted ALTERs are never data. */
export const temporaryTable = /^#sql/i;
/** Directories that hold an engine's data rather than a database. */
const engineDirectories = new Set(['#rocksdb']);

/** Replication state and logs in the datadir: never copied, always replaced by a restore. */
const datadirReplicationState = [
  /^(master|relay-log|multi-master)(-.+)?\.info$/,
  /(^|-)relay-bin(-.+)?\.(\d+|index)$/,
  /(^|-)bin\.(\d+|index|state)$/,
  /^binlog\.(\d+|index)$/,
  /^ddl_recovery(-backup)?\.log$/,
  /^tc\.log$/,
];

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** `parent/child` → `child`; undefined when `child` is not strictly inside `parent`. */
function relativeInside(parent: string, child: string): string | undefined {
  const relative = path.relative(parent, child);
  if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) return undefined;
  return relative;
}

/** The layout of the instance `config` describes. */
export function dataLayout(config: MysqldConfig): DataLayout {
  const datadir = path.resolve(config.datadir);
  const baseDirs: Record<FileBase, string> = {
    data: datadir,
    'innodb-data': path.resolve(config.innodbDataHomeDir),
    'innodb-log': path.resolve(config.innodbLogGroupHomeDir),
    'innodb-undo': path.resolve(config.innodbUndoDirectory),
  };
  let ariaLogPath: string | undefined;
  if (config.ariaLogDir !== undefined) {
    const aria = path.resolve(config.ariaLogDir);
    ariaLogPath = aria === datadir ? '' : relativeInside(datadir, aria);
    if (ariaLogPath === undefined) {
      throw new StepbackError(
        `aria_log_dir_path ${aria} is outside the datadir ${datadir}; the physical engine copies Aria's logs only from inside it`,
        { hint: 'keep aria_log_dir_path inside the datadir (the default)' },
      );
    }
  }
  const logBases = [config.logBin, config.relayLog].filter((base): base is string => base !== undefined);
  const special = [
    ...Object.values(baseDirs),
    ...logBases.map((base) => path.dirname(base)),
    config.secureFilePriv,
    config.logError === undefined ? undefined : path.dirname(config.logError),
    path.dirname(config.pidFile),
    path.dirname(config.socket),
    config.options.get('tmpdir'),
    ariaLogPath ? path.join(datadir, ariaLogPath) : undefined,
  ];
  const notDatabases = new Set<string>();
  for (const dir of special) {
    if (!dir) continue;
    const inside = relativeInside(datadir, path.resolve(datadir, dir));
    if (inside !== undefined) notDatabases.add(inside.split(path.sep)[0]!);
  }
  return {
    datadir,
    baseDirs,
    systemTablespaces: new Set(config.innodbDataFiles),
    ariaLogPath,
    notDatabases,
    logBases: logBases.map((base) => path.resolve(datadir, base)),
  };
}

/** A directory name in the datadir that can be a database (or an engine's data directory). */
export function isDatabaseDirectoryName(layout: DataLayout, name: string): boolean {
  if (name.startsWith('.') || name === 'lost+found' || layout.notDatabases.has(name)) return false;
  return !name.startsWith('#') || engineDirectories.has(name);
}

/** The base a file at the top of `dir` belongs to, or undefined when it is not data. */
export function topLevelFileBase(layout: DataLayout, dir: string, name: string): FileBase | undefined {
  return fileBases.find(
    (base) => layout.baseDirs[base] === dir && refusedPath(layout, base, name) === undefined,
  );
}

/**
 * Why `relative` under `base` is not a data file of this layout, or undefined when it is. Used on
 * the files a backup finds and on every entry of a manifest before a restore writes it.
 */
export function refusedPath(layout: DataLayout, base: FileBase, relative: string): string | undefined {
  const segments = relative.split('/');
  const [top = '', second] = segments;
  const name = segments.at(-1) ?? '';
  switch (base) {
    case 'innodb-data':
      return segments.length === 1 && layout.systemTablespaces.has(top)
        ? undefined
        : 'is not a system tablespace file named by innodb_data_file_path';
    case 'innodb-log':
      return (segments.length === 1 && redoLogFile.test(top)) ||
        (segments.length === 2 && top === redoDirectory && redoDirectoryFile.test(second ?? ''))
        ? undefined
        : 'is not a redo log file';
    case 'innodb-undo':
      return segments.length === 1 && undoTablespace.test(top) ? undefined : 'is not an undo tablespace';
    case 'data': {
      if (layout.ariaLogPath !== undefined && ariaLogFile.test(name)) {
        const ariaPath = layout.ariaLogPath === '' ? name : `${layout.ariaLogPath}/${name}`;
        if (relative === ariaPath) return undefined;
      }
      if (segments.length === 1) {
        return datadirFile.test(top) ? undefined : 'is not a data file of the datadir';
      }
      if (!isDatabaseDirectoryName(layout, top)) return `is not in a database directory (${top})`;
      if (segments.some((segment) => temporaryTable.test(segment))) return 'is a temporary table';
      return undefined;
    }
  }
}

/** Whether `name` in `dir` is a binary log, relay log, their index or state, or replication info. */
export function isReplicationState(layout: DataLayout, dir: string, name: string): boolean {
  for (const base of layout.logBases) {
    if (path.dirname(base) !== dir) continue;
    if (new RegExp(`^${escapeRegExp(path.basename(base))}\\.(\\d+|index|state)$`).test(name)) return true;
  }
  return dir === layout.datadir && datadirReplicationState.some((pattern) => pattern.test(name));
}

/** Every directory whose entries a restore replaces: the bases and the log directories. */
export function replacedDirectories(layout: DataLayout): string[] {
  return [...new Set([...Object.values(layout.baseDirs), ...layout.logBases.map((b) => path.dirname(b))])];
}
