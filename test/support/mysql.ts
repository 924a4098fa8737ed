import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { findServerBinaries, type ServerBinaries } from '../../agent/mysqld/binaries.ts';
import { freePort } from '../../local/ports.ts';
import { openPrivateInstance, type PrivateInstance } from '../../local/private-instance.ts';
import { projectRoot } from './cli.ts';
import { testRoot } from './root.ts';

const run = promisify(execFile);

/** What `node scripts/setup.js --for test` makes (as root): a Debian unstable root with MySQL 9.7. */
export const mysqlRoot = path.join(projectRoot, '.stepback-mysql', 'root');
/** Runs that root's mysqld through its own loader; the server binary the tests pass as --mysqld. */
export const mysqldWrapper = path.join(projectRoot, '.stepback-mysql', 'mysqld');

let binariesPromise: Promise<ServerBinaries> | undefined;

/** The MySQL server binaries; fails (never skips) when setup has not made them. */
export function mysqlBinaries(): Promise<ServerBinaries> {
  if (!existsSync(mysqldWrapper)) {
    throw new Error(
      `no MySQL server at ${mysqldWrapper}: run \`node scripts/setup.js --for test\` as root (it makes a Debian unstable root with MySQL 9.7 under .stepback-mysql/)`,
    );
  }
  binariesPromise ??= findServerBinaries(mysqldWrapper);
  return binariesPromise;
}

/** The instance's `@@gtid_executed`, without the line breaks MySQL puts between server UUIDs. */
export async function gtidExecuted(instance: PrivateInstance): Promise<string> {
  const [row] = await instance.query<[{ set: string }]>('SELECT @@GLOBAL.gtid_executed AS `set`');
  return String(row.set).replace(/\n/g, '');
}

export interface MysqlInstanceOptions {
  name: string;
  serverId?: number;
  extraCnf?: string[];
  start?: boolean;
}

let nextServerId = 900;

/**
 * A private MySQL server for one test file, under the run's temp root: own datadir, socket, port,
 * binlogs with GTIDs on, secure_file_priv; root@localhost without a password.
 */
export async function createMysqlInstance(options: MysqlInstanceOptions): Promise<PrivateInstance> {
  const binaries = await mysqlBinaries();
  const root = await fs.mkdtemp(path.join(await testRoot(), `mysql-${options.name}-`));
  const layout = {
    name: options.name,
    root,
    cnf: path.join(root, 'my.cnf'),
    datadir: path.join(root, 'data'),
    socket: path.join(root, 'mysqld.sock'),
    port: await freePort(),
    pidFile: path.join(root, 'mysqld.pid'),
    errorLog: path.join(root, 'error.log'),
    filesDir: path.join(root, 'files'),
    serverId: options.serverId ?? nextServerId++,
    binaries,
  };
  await fs.mkdir(layout.filesDir);
  await fs.mkdir(path.join(root, 'tmp'));
  const cnf = [
    '[client]',
    `socket=${layout.socket}`,
    `port=${layout.port}`,
    'user=root',
    '',
    '[mysqld]',
    'user=root',
    `basedir=${path.join(mysqlRoot, 'usr')}`,
    `lc-messages-dir=${path.join(mysqlRoot, 'usr', 'share', 'mysql')}`,
    `datadir=${layout.datadir}`,
    `socket=${layout.socket}`,
    `port=${layout.port}`,
    'bind-address=127.0.0.1',
    'mysqlx=OFF',
    `pid-file=${layout.pidFile}`,
    `log-error=${layout.errorLog}`,
    `secure-file-priv=${layout.filesDir}`,
    `tmpdir=${path.join(root, 'tmp')}`,
    `server-id=${layout.serverId}`,
    'log-bin=mysql-bin',
    'relay-log=relay-bin',
    'gtid-mode=ON',
    'enforce-gtid-consistency=ON',
    'skip-name-resolve',
    'innodb-buffer-pool-size=64M',
    'innodb-redo-log-capacity=16M',
    'max-connections=100',
    ...(options.extraCnf ?? []),
    '',
  ].join('\n');
  await fs.writeFile(layout.cnf, cnf);
  await run(binaries.mysqld, [`--defaults-file=${layout.cnf}`, '--initialize-insecure']);

  return openPrivateInstance(layout, binaries, options.start !== false);
}

let toolsPromise: Promise<string> | undefined;

/**
 * A server binary with the root's `mysql` client and `mysqlbinlog` beside it, each run through the
 * root's loader like the server: what a host with MySQL installed has in one directory, and where
 * the agent looks for them (Debian's `mysql` here is MariaDB's client, which cannot log in to
 * MySQL 9.7). Returns the `--mysqld` to pass.
 */
export function mysqldWithClientTools(): Promise<string> {
  toolsPromise ??= (async () => {
    await mysqlBinaries();
    const dir = await fs.mkdtemp(path.join(await testRoot(), 'mysql-tools-'));
    const libraryPath = ['usr/lib/x86_64-linux-gnu', 'lib/x86_64-linux-gnu']
      .map((part) => path.join(mysqlRoot, part))
      .join(':');
    const loader = path.join(mysqlRoot, 'lib64', 'ld-linux-x86-64.so.2');
    for (const [name, binary] of [
      ['mysqld', 'usr/sbin/mysqld'],
      ['mysql', 'usr/bin/mysql'],
      ['mysqlbinlog', 'usr/bin/mysqlbinlog'],
    ] as const) {
      const script = `#!/bin/sh\nexec '${loader}' --library-path '${libraryPath}' '${path.join(mysqlRoot, binary)}' "$@"\n`;
      await fs.writeFile(path.join(dir, name), script, { mode: 0o755 });
    }
    return path.join(dir, 'mysqld');
  })();
  return toolsPromise;
}
