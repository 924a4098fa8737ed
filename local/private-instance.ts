import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { RowDataPacket } from 'mysql2/promise';
import type { Connection } from '../agent/mysql/connection.ts';
import { findServerBinaries, type ServerBinaries } from '../agent/mysqld/binaries.ts';
import { readMysqldConfig } from '../agent/mysqld/config.ts';
import { MysqlDaemon } from '../agent/mysqld/daemon.ts';
import { isProcessRunning, readPidFile, waitForExit } from '../agent/mysqld/process.ts';
import { silentLogger } from '../core/log.ts';
import { freePort } from './ports.ts';

const run = promisify(execFile);

export interface PrivateInstanceOptions {
  /** Directory the instance's own directory is created in. */
  parent: string;
  /** Prefix of the instance's directory name, e.g. source, replica. */
  name: string;
  serverId?: number;
  /** Extra lines for the [mariadbd] section. */
  extraCnf?: string[];
  /** Start it (default true). */
  start?: boolean;
  /** Copy this (stopped, cleanly shut down) datadir instead of initialising a new one. */
  seedDatadir?: string;
}

/**
 * A private mariadbd: its own datadir, socket, port, pid file, binlogs and secure_file_priv under a
 * directory of its own. Tests, the demo and the bench run on these; never on a system server.
 */
export interface PrivateInstance {
  readonly name: string;
  readonly root: string;
  readonly cnf: string;
  readonly datadir: string;
  readonly socket: string;
  readonly port: number;
  readonly pidFile: string;
  readonly errorLog: string;
  readonly filesDir: string;
  readonly serverId: number;
  readonly binaries: ServerBinaries;
  connect(database?: string): Promise<Connection>;
  /** Runs one statement on a short-lived connection. */
  query<T = RowDataPacket[]>(sql: string, values?: unknown[]): Promise<T>;
  start(): Promise<void>;
  /** Clean SHUTDOWN, waiting for the process (whoever started it). */
  stop(): Promise<void>;
  /** SIGKILL, for crash tests and teardown. */
  kill(): Promise<void>;
  isRunning(): Promise<boolean>;
  /** Stops it and removes its directory. */
  dispose(): Promise<void>;
}

let binariesPromise: Promise<ServerBinaries> | undefined;

export function serverBinaries(): Promise<ServerBinaries> {
  binariesPromise ??= findServerBinaries();
  return binariesPromise;
}

let nextServerId = 100;

function cnfText(
  instance: Omit<PrivateInstance, 'connect' | 'query' | 'start' | 'stop' | 'kill' | 'isRunning' | 'dispose'>,
  extra: string[],
): string {
  const asRoot = process.getuid?.() === 0;
  return [
    '[client]',
    `socket=${instance.socket}`,
    `port=${instance.port}`,
    'user=root',
    'default-character-set=utf8mb4',
    '',
    '[mariadbd]',
    // mariadbd refuses to run as OS root unless told to; the first --user seen wins.
    ...(asRoot ? ['user=root'] : []),
    `datadir=${instance.datadir}`,
    `socket=${instance.socket}`,
    `port=${instance.port}`,
    'bind-address=127.0.0.1',
    `pid-file=${instance.pidFile}`,
    `log-error=${instance.errorLog}`,
    `secure-file-priv=${instance.filesDir}`,
    // mariadbd deletes every #sql* temporary file in its tmpdir when it starts: a shared /tmp lets
    // parallel instances delete each other's temporary tables (mariadb-install-db then fails).
    `tmpdir=${path.join(instance.root, 'tmp')}`,
    `server-id=${instance.serverId}`,
    'log-bin=mysql-bin',
    'relay-log=relay-bin',
    'log-slave-updates=1',
    'binlog-format=ROW',
    // What a reshard's catch-up reads: full row images with column names and types.
    'binlog-row-image=FULL',
    'binlog-row-metadata=FULL',
    'character-set-server=utf8mb4',
    'collation-server=utf8mb4_general_ci',
    'skip-name-resolve',
    'innodb-buffer-pool-size=64M',
    'innodb-log-file-size=16M',
    'max-connections=200',
    ...extra,
    '',
  ].join('\n');
}

export async function createPrivateInstance(options: PrivateInstanceOptions): Promise<PrivateInstance> {
  const binaries = await serverBinaries();
  const root = await fs.mkdtemp(path.join(options.parent, `${options.name}-`));
  const serverId = options.serverId ?? nextServerId++;
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
    serverId,
    binaries,
  };
  await fs.mkdir(layout.filesDir);
  await fs.mkdir(path.join(root, 'tmp'));
  await fs.writeFile(layout.cnf, cnfText(layout, options.extraCnf ?? []));
  if (options.seedDatadir) {
    await fs.cp(options.seedDatadir, layout.datadir, { recursive: true });
  } else {
    await fs.mkdir(layout.datadir);
    if (!binaries.installDb) throw new Error('mariadb-install-db not found');
    await run(binaries.installDb, [
      `--defaults-file=${layout.cnf}`,
      '--auth-root-authentication-method=normal',
      '--skip-test-db',
      '--skip-name-resolve',
    ]);
  }

  return openPrivateInstance(layout, binaries, options.start !== false);
}

/**
 * The handle of a private instance whose datadir and my.cnf exist (MariaDB here, MySQL in the
 * MySQL tests): started unless `start` is false, removed with its directory by `dispose`.
 */
export async function openPrivateInstance(
  layout: Omit<PrivateInstance, 'connect' | 'query' | 'start' | 'stop' | 'kill' | 'isRunning' | 'dispose'>,
  binaries: ServerBinaries,
  start: boolean,
): Promise<PrivateInstance> {
  const daemon = new MysqlDaemon(await readMysqldConfig(layout.cnf, binaries.mysqld), binaries, {
    defaultsFile: layout.cnf,
    logger: silentLogger,
    startTimeoutSeconds: 60,
  });
  const instance: PrivateInstance = {
    ...layout,
    connect: (database?: string) => daemon.connect(database ? { database } : {}),
    async query<T>(sql: string, values?: unknown[]): Promise<T> {
      return daemon.withConnection(async (connection) => (await connection.query(sql, values))[0] as T);
    },
    start: () => daemon.start(),
    stop: () => daemon.shutdown(),
    async kill() {
      const pid = await readPidFile(layout.pidFile);
      if (pid === undefined || !(await isProcessRunning(pid))) return;
      process.kill(pid, 'SIGKILL');
      await waitForExit(pid, 10_000);
      await fs.rm(layout.pidFile, { force: true });
    },
    isRunning: () => daemon.isRunning(),
    async dispose() {
      await instance.kill();
      await fs.rm(layout.root, { recursive: true, force: true });
    },
  };
  if (start) await instance.start();
  return instance;
}

/** Makes `replica` replicate from `primary` with GTIDs, starting from the primary's current position. */
export async function startReplication(replica: PrivateInstance, primary: PrivateInstance): Promise<void> {
  const [{ pos }] = await primary.query<[{ pos: string }]>('SELECT @@GLOBAL.gtid_binlog_pos AS pos');
  const connection = await replica.connect();
  try {
    await connection.query('STOP SLAVE');
    await connection.query('SET GLOBAL gtid_slave_pos = ?', [pos]);
    await connection.query(
      `CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=${primary.port}, MASTER_USER='root', MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos`,
    );
    await connection.query('START SLAVE');
  } finally {
    await connection.end();
  }
}

/** Waits until `replica` has applied everything `primary` has written so far. */
export async function waitForReplica(
  replica: PrivateInstance,
  primary: PrivateInstance,
  timeoutSeconds = 30,
): Promise<void> {
  const [{ pos }] = await primary.query<[{ pos: string }]>('SELECT @@GLOBAL.gtid_binlog_pos AS pos');
  const [{ result }] = await replica.query<[{ result: number | string }]>(
    'SELECT MASTER_GTID_WAIT(?, ?) AS result',
    [pos, timeoutSeconds],
  );
  if (Number(result) !== 0)
    throw new Error(`replica ${replica.name} did not reach ${pos} in ${timeoutSeconds}s`);
}
