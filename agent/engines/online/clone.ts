import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { keepFirstError, messageOf, StepbackError } from '../../../core/errors.ts';
import { defaultLevel } from '../../../core/stream/compress.ts';
import { reachedPhase } from '../../instance/fault.ts';
import { queryValue } from '../../mysql/connection.ts';
import { readMysqldConfig } from '../../mysqld/config.ts';
import { MysqlDaemon } from '../../mysqld/daemon.ts';
import { ByteProgress } from '../../report/progress.ts';
import type { BackupParams, EngineBackup } from '../engine.ts';
import { dataLayout } from '../physical/layout.ts';
import { ownerOf } from '../physical/stage.ts';
import { exitOf, LastLines, toolFailed } from './mariabackup.ts';
import { PartWriter } from './parts.ts';
import { cloneDirectory, clonePidFile } from './recovery.ts';

/**
 * The online engine on MySQL, with the server's own clone plugin: `CLONE LOCAL DATA DIRECTORY`
 * copies the running instance into a directory beside its datadir (the server keeps serving), a
 * throwaway mysqld started on that copy (no network, no binary log) reads the GTID set it holds and
 * shuts it down cleanly, then the copy is streamed as a tar archive through compression and
 * hashing into storage, in parts, and removed. Unlike mariabackup this needs the disk space of a
 * full copy beside the datadir while it runs.
 */

/** Entries of a clone that are never data: the plugin's bookkeeping, the copy's own identity and temp space. */
const NOT_COPIED = ['#clone', 'auto.cnf', '#innodb_temp'];

export async function cloneBackup(params: BackupParams): Promise<EngineBackup> {
  const { daemon, logger } = params;
  const layout = dataLayout(daemon.config);
  const work = cloneDirectory(daemon);
  if (await fs.stat(work).catch(() => undefined)) {
    throw new StepbackError(`${work} exists, and no interrupted backup of this instance is recorded`, {
      hint: 'no backup is running on this instance (stepback holds it while one does): look inside, delete it and run the backup again',
    });
  }
  await fs.mkdir(work, { mode: 0o700 });
  try {
    // mysqld writes the clone: it must own the directory it creates the copy in.
    const owner = await ownerOf(layout.datadir);
    if (owner) await fs.chown(work, owner.uid, owner.gid);
    const copy = path.join(work, 'data');
    await cloneInto(daemon, copy, logger);
    const { position, purged } = await positionOfCopy(daemon, work, copy, logger);
    logger.info(`the copy holds ${position || '(empty)'}; streaming it to storage`);
    const started = performance.now();
    const parts = await streamDirectory(params, copy);
    const raw = parts.reduce((sum, part) => sum + part.rawSize, 0);
    return {
      role: params.original.replication.configured ? 'replica' : 'primary',
      position,
      purged,
      contents: {
        engine: 'online',
        tool: { name: 'mysql-clone', version: params.serverVersion },
        format: 'tar',
        partSize: params.partSize,
        files: parts,
      },
      bytes: { raw, stored: parts.reduce((sum, part) => sum + part.storedSize, 0) },
      copySeconds: (performance.now() - started) / 1000,
    };
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

/** CLONE LOCAL into `copy`, with the plugin installed for the time it takes when it was not. */
async function cloneInto(daemon: MysqlDaemon, copy: string, logger: BackupParams['logger']): Promise<void> {
  await daemon.withConnection(async (connection) => {
    const status = await queryValue(
      connection,
      "SELECT PLUGIN_STATUS FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'clone'",
    );
    const installed = status === undefined || status === null;
    if (installed) {
      logger.info('installing the clone plugin for this backup (it is removed afterwards)');
      await connection.query("INSTALL PLUGIN clone SONAME 'mysql_clone.so'");
    } else if (status !== 'ACTIVE') {
      throw new StepbackError(`the clone plugin is ${String(status)} on this server`, {
        hint: 'make it ACTIVE (or uninstall it, and stepback installs it for each backup)',
      });
    }
    try {
      logger.info('cloning the instance locally (CLONE LOCAL DATA DIRECTORY; the server keeps serving)');
      await connection.query('CLONE LOCAL DATA DIRECTORY = ?', [copy]);
    } catch (error) {
      throw new StepbackError(`CLONE LOCAL DATA DIRECTORY failed: ${messageOf(error)}`, {
        cause: error,
        hint: 'the clone needs BACKUP_ADMIN, free space for a full copy beside the datadir, and mysqld allowed to write there',
      });
    } finally {
      if (installed) {
        await connection
          .query('UNINSTALL PLUGIN clone')
          .catch((error: unknown) =>
            logger.warn(`could not uninstall the clone plugin: ${messageOf(error)}`),
          );
      }
    }
  });
}

/**
 * The GTID set the copy holds: read from a mysqld started on it alone (no network, no binary log,
 * no replication), then shut down cleanly, which also leaves the copy without crash recovery to do.
 */
async function positionOfCopy(
  daemon: MysqlDaemon,
  work: string,
  copy: string,
  logger: BackupParams['logger'],
): Promise<{ position: string; purged: string }> {
  const cnf = path.join(work, 'copy.cnf');
  await fs.writeFile(
    cnf,
    [
      `!include ${path.resolve(daemon.config.defaultsFile)}`,
      '[mysqld]',
      `datadir=${copy}`,
      `innodb-data-home-dir=${copy}`,
      `innodb-log-group-home-dir=${copy}`,
      `innodb-undo-directory=${copy}`,
      `socket=${path.join(work, 'copy.sock')}`,
      `pid-file=${clonePidFile(work)}`,
      `log-error=${path.join(work, 'copy.err')}`,
      'skip-networking',
      'skip-log-bin',
      'skip-replica-start',
      'mysqlx=OFF',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  const copyDaemon = new MysqlDaemon(await readMysqldConfig(cnf, daemon.binaries.mysqld), daemon.binaries, {
    defaultsFile: cnf,
    logger,
  });
  await copyDaemon.start();
  reachedPhase('backup:cloned');
  try {
    return await copyDaemon.withConnection(async (connection) => ({
      position: await copyDaemon.flavor.executedPosition(connection),
      purged: await copyDaemon.flavor.purgedPosition(connection),
    }));
  } finally {
    await copyDaemon.shutdown().catch((error: unknown) => {
      logger.warn(`the server started on the copy did not shut down: ${messageOf(error)}`);
    });
  }
}

/** `tar` of `dir` (its data only) through the part writer into the backup. */
async function streamDirectory(params: BackupParams, dir: string) {
  const progress = new ByteProgress('streaming backup', { bytes: 0, items: 1 }, params.progress);
  const lines = new LastLines();
  const writer = new PartWriter(params.handle, {
    compression: params.compression,
    level: defaultLevel[params.compression],
    partSize: params.partSize,
    concurrency: Math.max(1, Math.min(params.concurrency, 4)),
    signal: params.signal,
    onBytes: progress.addBytes,
  });
  const child = spawn(
    'tar',
    ['-C', dir, '-cf', '-', ...NOT_COPIED.map((name) => `--exclude=./${name}`), '.'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      signal: params.signal,
    },
  );
  child.stderr.on('data', lines.add);
  const exited = exitOf(child);
  exited.catch(() => {});
  try {
    await pipeline(child.stdout, writer, { signal: params.signal });
  } catch (error) {
    child.kill('SIGTERM');
    await exited.catch((cleanup: unknown) => keepFirstError(params.logger, error, cleanup));
    throw error;
  }
  const outcome = await exited;
  if (outcome !== 0)
    throw toolFailed('tar', outcome, lines, 'the partial backup was removed; run the backup again');
  return writer.parts;
}
