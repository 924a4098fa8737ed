import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { StepbackError, UsageError } from '../../core/errors.ts';
import { findExecutable } from './binaries.ts';

const run = promisify(execFile);

/**
 * What stepback needs to know about an instance, as the server itself resolves it from the
 * defaults file (includes, compiled-in defaults, relative names): `mysqld --defaults-file=F
 * --verbose --help` prints every effective value, so no my.cnf parser of ours can disagree with it.
 */
export interface MysqldConfig {
  defaultsFile: string;
  datadir: string;
  socket: string;
  port: number;
  pidFile: string;
  /** Binary log base path (directory + basename), when binary logging is on. */
  logBin: string | undefined;
  relayLog: string | undefined;
  innodbDataHomeDir: string;
  innodbLogGroupHomeDir: string;
  innodbUndoDirectory: string;
  /** System tablespace file names from innodb_data_file_path, relative to innodbDataHomeDir. */
  innodbDataFiles: string[];
  /** Aria's log directory (MariaDB). */
  ariaLogDir: string | undefined;
  /** Directory SELECT … INTO OUTFILE may write to; '' means anywhere, undefined means disabled. */
  secureFilePriv: string | undefined;
  logError: string | undefined;
  serverId: number;
  /** The OS user mysqld runs as (`user=`). */
  osUser: string | undefined;
  /** Credentials from the [client] groups of the same file. */
  client: { user: string; password: string | undefined };
  /** Every resolved server option, `name-with-dashes` → value. */
  options: ReadonlyMap<string, string>;
}

/** The "Variables" table of `--verbose --help`: `name   value` after a dashed rule. */
export function parseVerboseHelp(output: string): Map<string, string> {
  const options = new Map<string, string>();
  const lines = output.split('\n');
  const rule = lines.findIndex((line) => /^-{20,} -+$/.test(line));
  if (rule < 0) return options;
  for (const line of lines.slice(rule + 1)) {
    if (line.trim() === '') break;
    const match = /^(\S+)(?:\s+(.*))?$/.exec(line);
    if (!match) continue;
    const value = (match[2] ?? '').trim();
    if (value !== '(No default value)') options.set(match[1]!, value);
  }
  return options;
}

/** `--user=root` lines of my_print_defaults. */
export function parsePrintDefaults(output: string): Map<string, string> {
  const options = new Map<string, string>();
  for (const line of output.split('\n')) {
    const match = /^--([^=]+)(?:=(.*))?$/.exec(line.trim());
    if (match) options.set(match[1]!.replace(/_/g, '-'), match[2] ?? '');
  }
  return options;
}

/** `ibdata1:12M;ibdata2:50M:autoextend` → [ibdata1, ibdata2] */
export function innodbDataFileNames(dataFilePath: string): string[] {
  return dataFilePath
    .split(';')
    .map((spec) => spec.split(':')[0]!.trim())
    .filter(Boolean);
}

function dir(value: string | undefined, fallback: string): string {
  if (!value) return fallback;
  return path.resolve(fallback, value).replace(/\/+$/, '') || '/';
}

/** Builds the config from the resolved option tables (pure; exported for tests). */
export function mysqldConfigFrom(
  defaultsFile: string,
  server: ReadonlyMap<string, string>,
  client: ReadonlyMap<string, string>,
): MysqldConfig {
  const datadir = server.get('datadir')?.replace(/\/+$/, '');
  if (!datadir) throw new UsageError(`${defaultsFile} resolves to no datadir`);
  const logBasename = server.get('log-basename');
  const named = (option: string) => {
    const value = server.get(option);
    if (value === undefined || value === '' || value === 'OFF' || value === 'FALSE') return undefined;
    const name = value === 'ON' || value === 'TRUE' ? `${logBasename ?? 'mysql'}-bin` : value;
    return path.resolve(datadir, name);
  };
  const secure = server.get('secure-file-priv');
  return {
    defaultsFile,
    datadir,
    socket: server.get('socket') ?? '/run/mysqld/mysqld.sock',
    port: Number(server.get('port') ?? 3306),
    pidFile: path.resolve(datadir, server.get('pid-file') ?? `${logBasename ?? 'mysqld'}.pid`),
    logBin: named('log-bin'),
    relayLog: named('relay-log'),
    innodbDataHomeDir: dir(server.get('innodb-data-home-dir'), datadir),
    innodbLogGroupHomeDir: dir(server.get('innodb-log-group-home-dir'), datadir),
    innodbUndoDirectory: dir(server.get('innodb-undo-directory'), datadir),
    innodbDataFiles: innodbDataFileNames(server.get('innodb-data-file-path') ?? 'ibdata1:12M:autoextend'),
    ariaLogDir: server.has('aria-log-dir-path') ? dir(server.get('aria-log-dir-path'), datadir) : undefined,
    secureFilePriv: secure === undefined || secure === 'NULL' ? undefined : secure.replace(/\/+$/, ''),
    logError: server.get('log-error') ? path.resolve(datadir, server.get('log-error')!) : undefined,
    serverId: Number(server.get('server-id') ?? 0),
    osUser: server.get('user') || undefined,
    client: { user: client.get('user') || 'root', password: client.get('password') },
    options: server,
  };
}

/**
 * Reads an instance's configuration by asking its server binary. Fails with what to fix when the
 * file is missing or the server rejects it.
 */
export async function readMysqldConfig(defaultsFile: string, mysqld: string): Promise<MysqldConfig> {
  const file = path.resolve(defaultsFile);
  let help: string;
  try {
    const result = await run(mysqld, [`--defaults-file=${file}`, '--verbose', '--help'], {
      maxBuffer: 32 * 1024 * 1024,
    });
    help = result.stdout;
  } catch (error) {
    const output = `${(error as { stderr?: string }).stderr ?? ''}`.trim().split('\n').slice(-3).join(' ');
    throw new StepbackError(
      `cannot read the configuration in ${file}: ${output || (error as Error).message}`,
      {
        cause: error,
        hint: 'check that the --defaults-file exists and that the server accepts it (its directories must exist)',
      },
    );
  }
  const server = parseVerboseHelp(help);
  if (server.size === 0) throw new StepbackError(`${mysqld} printed no variables for ${file}`);
  // Beside the server binary first, then PATH: Debian puts mariadbd in /usr/sbin and the tool in /usr/bin.
  const printDefaults = findExecutable(
    ['my_print_defaults', 'mariadb-print-defaults'],
    [path.dirname(mysqld), process.env.PATH ?? ''].join(path.delimiter),
  );
  let client = new Map<string, string>();
  if (printDefaults) {
    const result = await run(printDefaults, [
      `--defaults-file=${file}`,
      'client',
      'client-server',
      'client-mariadb',
    ]);
    client = parsePrintDefaults(result.stdout);
  }
  return mysqldConfigFrom(file, server, client);
}
