import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import { findServerBinaries, type ServerBinaries } from '../../agent/mysqld/binaries.ts';
import {
  isProcessRunning,
  readPidFile,
  spawnMysqld,
  tailOf,
  waitForExit,
} from '../../agent/mysqld/process.ts';
import { freePort } from './ports.ts';
import { testRoot } from './root.ts';

const run = promisify(execFile);

export interface TestInstanceOptions {
  /** Directory name under the run's root; unique per test file helps reading leftovers. */
  name: string;
  serverId?: number;
  /** Extra lines for the [mariadbd] section. */
  extraCnf?: string[];
  /** Start it (default true). */
  start?: boolean;
}

/**
 * A private mariadbd for one test file: its own datadir, socket, port, pid file, binlogs and
 * secure_file_priv under the run's temp root. Never the system server.
 */
export interface TestInstance {
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
  connect(database?: string): Promise<mysql.Connection>;
  /** Runs one statement on a short-lived connection. */
  query<T = mysql.RowDataPacket[]>(sql: string, values?: unknown[]): Promise<T>;
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
  instance: Omit<TestInstance, 'connect' | 'query' | 'start' | 'stop' | 'kill' | 'isRunning' | 'dispose'>,
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

export async function createTestInstance(options: TestInstanceOptions): Promise<TestInstance> {
  const binaries = await serverBinaries();
  const root = await fs.mkdtemp(path.join(await testRoot(), `${options.name}-`));
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
  await fs.mkdir(layout.datadir);
  await fs.mkdir(layout.filesDir);
  await fs.mkdir(path.join(root, 'tmp'));
  await fs.writeFile(layout.cnf, cnfText(layout, options.extraCnf ?? []));
  if (!binaries.installDb) throw new Error('mariadb-install-db not found');
  await run(binaries.installDb, [
    `--defaults-file=${layout.cnf}`,
    '--auth-root-authentication-method=normal',
    '--skip-test-db',
    '--skip-name-resolve',
  ]);

  const connect = async (database?: string) =>
    mysql.createConnection({
      socketPath: layout.socket,
      user: 'root',
      ...(database ? { database } : {}),
      supportBigNumbers: true,
      bigNumberStrings: true,
      dateStrings: true,
      charset: 'utf8mb4_general_ci',
    });

  const instance: TestInstance = {
    ...layout,
    connect,
    async query<T>(sql: string, values?: unknown[]): Promise<T> {
      const connection = await connect();
      try {
        const [rows] = await connection.query(sql, values);
        return rows as T;
      } finally {
        await connection.end();
      }
    },
    async start() {
      await spawnMysqld({ binary: binaries.mysqld, defaultsFile: layout.cnf });
      const deadline = Date.now() + 30_000;
      for (;;) {
        try {
          const connection = await connect();
          await connection.end();
          return;
        } catch {
          if (Date.now() > deadline) {
            throw new Error(`mariadbd ${options.name} did not start:\n${await tailOf(layout.errorLog)}`);
          }
          await sleep(25);
        }
      }
    },
    async stop() {
      const pid = await readPidFile(layout.pidFile);
      if (pid === undefined || !(await isProcessRunning(pid))) return;
      try {
        const connection = await connect();
        await connection.query('SHUTDOWN').catch(() => {});
        await connection.end().catch(() => {});
      } catch {
        process.kill(pid, 'SIGTERM');
      }
      if (!(await waitForExit(pid, 60_000))) {
        process.kill(pid, 'SIGKILL');
        await waitForExit(pid, 10_000);
      }
    },
    async kill() {
      const pid = await readPidFile(layout.pidFile);
      if (pid === undefined || !(await isProcessRunning(pid))) return;
      process.kill(pid, 'SIGKILL');
      await waitForExit(pid, 10_000);
      await fs.rm(layout.pidFile, { force: true });
    },
    async isRunning() {
      const pid = await readPidFile(layout.pidFile);
      return pid !== undefined && (await isProcessRunning(pid));
    },
    async dispose() {
      await instance.kill();
      await fs.rm(root, { recursive: true, force: true });
    },
  };
  if (options.start !== false) await instance.start();
  return instance;
}

/** Makes `replica` replicate from `primary` with GTIDs, starting from the primary's current position. */
export async function startReplication(replica: TestInstance, primary: TestInstance): Promise<void> {
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
  replica: TestInstance,
  primary: TestInstance,
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
