import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { StepbackError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import { type Connection, connect, queryValue } from '../mysql/connection.ts';
import { type Flavor, flavorNamed } from '../mysql/flavor.ts';
import { findServerBinaries, type ServerBinaries } from './binaries.ts';
import { type MysqldConfig, readMysqldConfig } from './config.ts';
import { isProcessRunning, readPidFile, spawnMysqld, tailOf, waitForExit } from './process.ts';

const execFileAsync = promisify(execFile);

/** Runs a command and returns its stdout (injectable so the systemd control can be tested without systemd). */
export type CommandRunner = (file: string, args: string[], env?: NodeJS.ProcessEnv) => Promise<string>;

export const runCommand: CommandRunner = async (file, args, env) =>
  (await execFileAsync(file, args, { env: env ?? process.env, maxBuffer: 16 * 1024 * 1024 })).stdout;

/**
 * How the process itself is started and stopped. `direct` spawns mysqld (tests, the local default,
 * hosts without an init system); `systemd` asks the unit, as production hosts run mysqld as `mysql`.
 */
export type MysqldControl = { kind: 'direct' } | { kind: 'systemd'; service: string; run?: CommandRunner };

export interface OpenDaemonOptions {
  defaultsFile: string;
  /** Server binary; default mariadbd or mysqld on PATH. */
  mysqld?: string | undefined;
  control?: MysqldControl | undefined;
  logger: Logger;
  /** How long a start may take (crash recovery of a big redo log is slow). Default 600 s. */
  startTimeoutSeconds?: number | undefined;
}

/**
 * One mysqld instance on this host, described by its defaults file: configuration, flavor,
 * connections, start, clean shutdown, upgrade.
 */
export class MysqlDaemon {
  readonly config: MysqldConfig;
  readonly binaries: ServerBinaries;
  readonly flavor: Flavor;
  readonly control: MysqldControl;
  readonly #logger: Logger;
  readonly #startTimeoutMs: number;

  constructor(config: MysqldConfig, binaries: ServerBinaries, options: OpenDaemonOptions) {
    this.config = config;
    this.binaries = binaries;
    this.flavor = flavorNamed(binaries.flavor);
    this.control = options.control ?? { kind: 'direct' };
    this.#logger = options.logger;
    this.#startTimeoutMs = (options.startTimeoutSeconds ?? 600) * 1000;
  }

  static async open(options: OpenDaemonOptions): Promise<MysqlDaemon> {
    const binaries = await findServerBinaries(options.mysqld);
    const config = await readMysqldConfig(options.defaultsFile, binaries.mysqld);
    return new MysqlDaemon(config, binaries, options);
  }

  /** A connection over the instance's socket with the [client] credentials of its defaults file. */
  connect(options: { database?: string } = {}): Promise<Connection> {
    return connect({
      socket: this.config.socket,
      user: this.config.client.user,
      password: this.config.client.password,
      database: options.database,
    });
  }

  async withConnection<T>(work: (connection: Connection) => Promise<T>): Promise<T> {
    const connection = await this.connect();
    try {
      return await work(connection);
    } finally {
      await connection.end().catch(() => connection.destroy());
    }
  }

  async pid(): Promise<number | undefined> {
    const pid = await readPidFile(this.config.pidFile);
    return pid !== undefined && (await isProcessRunning(pid)) ? pid : undefined;
  }

  async isRunning(): Promise<boolean> {
    if (this.control.kind === 'systemd') {
      const run = this.control.run ?? runCommand;
      const state = await run('systemctl', ['is-active', this.control.service]).catch(() => 'inactive');
      return state.trim() === 'active';
    }
    return (await this.pid()) !== undefined;
  }

  /** Starts mysqld (with extra arguments such as --skip-grant-tables) and waits until it accepts connections. */
  async start(extraArgs: readonly string[] = []): Promise<void> {
    this.#logger.info('starting mysqld', { args: extraArgs.join(' ') || undefined });
    if (this.control.kind === 'systemd') {
      const run = this.control.run ?? runCommand;
      // Both MariaDB's and MySQL's units pass $MYSQLD_OPTS to the server. A normal start clears it
      // first: an agent killed during a --skip-grant-tables start would have left it set.
      if (extraArgs.length > 0)
        await run('systemctl', ['set-environment', `MYSQLD_OPTS=${extraArgs.join(' ')}`]);
      else await run('systemctl', ['unset-environment', 'MYSQLD_OPTS']);
      try {
        await run('systemctl', ['start', this.control.service]);
      } finally {
        if (extraArgs.length > 0) await run('systemctl', ['unset-environment', 'MYSQLD_OPTS']);
      }
      await this.#waitUntilReady();
    } else {
      const pid = await spawnMysqld({
        binary: this.binaries.mysqld,
        defaultsFile: this.config.defaultsFile,
        extraArgs,
      });
      await this.#waitUntilReady(pid);
    }
  }

  /** Polls the socket until a connection succeeds; gives up early when the spawned process died. */
  async #waitUntilReady(spawnedPid?: number): Promise<void> {
    const deadline = Date.now() + this.#startTimeoutMs;
    let lastError: unknown;
    for (let attempt = 0; Date.now() < deadline; attempt++) {
      try {
        const connection = await this.connect();
        await connection.end();
        return;
      } catch (error) {
        lastError = error;
      }
      if (spawnedPid !== undefined && !(await isProcessRunning(spawnedPid))) {
        lastError = new Error(`mysqld (pid ${spawnedPid}) exited`);
        break;
      }
      await sleep(Math.min(25 + attempt * 5, 250));
    }
    throw new StepbackError(`mysqld did not start: ${(lastError as Error)?.message ?? 'timed out'}`, {
      cause: lastError,
      hint: `its error log says:\n${await tailOf(this.config.logError)}`,
    });
  }

  /**
   * Clean shutdown: the SHUTDOWN statement, then wait for the process to exit. `fast` sets
   * innodb_fast_shutdown first: `false` → 0 (full purge and change-buffer merge: slower, but the
   * files are self-contained for another server version), `true` → 1 (a clean shutdown without the
   * purge; never 2, which leaves work for crash recovery). Unset keeps the server's setting.
   */
  async shutdown(options: { fast?: boolean } = {}): Promise<void> {
    const setting =
      options.fast === undefined ? undefined : `SET GLOBAL innodb_fast_shutdown = ${options.fast ? 1 : 0}`;
    if (this.control.kind === 'systemd') {
      if (setting) await this.withConnection((c) => c.query(setting));
      await (this.control.run ?? runCommand)('systemctl', ['stop', this.control.service]);
      return;
    }
    const pid = await this.pid();
    if (pid === undefined) return;
    this.#logger.info('shutting mysqld down', { pid });
    await this.withConnection(async (connection) => {
      if (setting) await connection.query(setting);
      await connection.query('SHUTDOWN');
    });
    if (!(await waitForExit(pid, this.#startTimeoutMs))) {
      throw new StepbackError(`mysqld (pid ${pid}) did not exit after SHUTDOWN`, {
        hint: `check ${this.config.logError ?? 'its error log'}`,
      });
    }
  }

  /** The server version of the running instance, e.g. 10.11.19-MariaDB-0+deb12u1. */
  async serverVersion(): Promise<string> {
    return String(await this.withConnection((c) => queryValue(c, 'SELECT VERSION()')));
  }

  /**
   * Runs the flavor's upgrade tool over the socket (the server must be running, typically with
   * --skip-grant-tables --skip-networking). `--force` because mysql_upgrade_info may already name
   * this version while the tables came from another.
   */
  async upgrade(): Promise<void> {
    const tool = this.binaries.upgrade;
    if (!tool) return;
    this.#logger.info('running the upgrade tool', { tool });
    try {
      await runCommand(
        tool,
        ['--force', `--socket=${this.config.socket}`, `--user=${this.config.client.user}`],
        {
          ...process.env,
          ...(this.config.client.password ? { MYSQL_PWD: this.config.client.password } : {}),
        },
      );
    } catch (error) {
      throw new StepbackError(
        `${tool} failed: ${(error as { stderr?: string }).stderr || (error as Error).message}`,
        {
          cause: error,
        },
      );
    }
  }
}
