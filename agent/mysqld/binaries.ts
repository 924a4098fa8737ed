import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { StepbackError } from '../../core/errors.ts';
import type { FlavorName } from '../../core/gtid.ts';

const run = promisify(execFile);

/** Where server binaries live on Debian, RHEL and tarball installs when they are not on PATH. */
const extraDirs = ['/usr/sbin', '/usr/local/sbin', '/usr/local/mysql/bin', '/opt/mysql/bin'];

/** The first executable named one of `names` on PATH or in the usual server directories. */
export function findExecutable(
  names: readonly string[],
  searchPath = process.env.PATH ?? '',
): string | undefined {
  const dirs = [...searchPath.split(path.delimiter).filter(Boolean), ...extraDirs];
  for (const name of names) {
    if (name.includes('/')) return name;
    for (const dir of dirs) {
      const candidate = path.join(dir, name);
      try {
        accessSync(candidate, constants.X_OK);
        return candidate;
      } catch {}
    }
  }
  return undefined;
}

export interface ServerBinaries {
  flavor: FlavorName;
  /** e.g. 10.11.19 */
  version: string;
  mysqld: string;
  /** mariadb-install-db, or mysqld itself (`--initialize-insecure`) for MySQL. */
  installDb: string | undefined;
  /** mariadb-upgrade; undefined for MySQL 8.0.16+, which upgrades itself on start. */
  upgrade: string | undefined;
  client: string | undefined;
}

/** `mysqld  Ver 10.11.19-MariaDB-0+deb12u1 …` or `mysqld  Ver 8.0.36 for Linux …` */
export function parseServerVersion(output: string): { flavor: FlavorName; version: string } {
  const match = /Ver\s+(\d+\.\d+\.\d+)(\S*)/.exec(output);
  if (!match) throw new StepbackError(`cannot read a server version from ${JSON.stringify(output.trim())}`);
  return {
    flavor: /mariadb/i.test(match[2] ?? '') || /mariadb/i.test(output) ? 'mariadb' : 'mysql',
    version: match[1]!,
  };
}

/**
 * The server binaries of this host: `mysqld` when given, else mariadbd or mysqld found on PATH.
 * Fails with a message that says what to install.
 */
export async function findServerBinaries(mysqld?: string): Promise<ServerBinaries> {
  const server = mysqld ?? findExecutable(['mariadbd', 'mysqld']);
  if (!server) {
    throw new StepbackError(
      'no MariaDB or MySQL server binary (mariadbd or mysqld) found on PATH or in /usr/sbin',
      {
        hint: 'install it (Debian: apt-get install mariadb-server) or pass --mysqld /path/to/mysqld',
      },
    );
  }
  let output: string;
  try {
    output = (await run(server, ['--version'])).stdout;
  } catch (error) {
    throw new StepbackError(`cannot run ${server} --version: ${(error as Error).message}`, { cause: error });
  }
  const { flavor, version } = parseServerVersion(output);
  const dir = path.dirname(server);
  const near = (names: string[]) =>
    findExecutable(names, [dir, path.join(dir, '..', 'bin'), process.env.PATH ?? ''].join(path.delimiter));
  return flavor === 'mariadb'
    ? {
        flavor,
        version,
        mysqld: server,
        installDb: near(['mariadb-install-db', 'mysql_install_db']),
        upgrade: near(['mariadb-upgrade', 'mysql_upgrade']),
        client: near(['mariadb', 'mysql']),
      }
    : { flavor, version, mysqld: server, installDb: server, upgrade: undefined, client: near(['mysql']) };
}
