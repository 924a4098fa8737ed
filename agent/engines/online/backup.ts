import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { messageOf } from '../../../core/errors.ts';
import { defaultLevel } from '../../../core/stream/compress.ts';
import { qualifiedName, queryRows } from '../../mysql/connection.ts';
import { ByteProgress } from '../../report/progress.ts';
import type { BackupEngine, BackupParams, EngineBackup } from '../engine.ts';
import { listDataFiles } from '../physical/files.ts';
import { dataLayout } from '../physical/layout.ts';
import { cloneBackup } from './clone.ts';
import { exitOf, findBackupTools, LastLines, toolFailed } from './mariabackup.ts';
import { PartWriter } from './parts.ts';
import {
  BINLOG_INFO_FILES,
  binlogInfoPosition,
  mergePositions,
  REPLICA_INFO_FILES,
  replicaInfoPosition,
} from './position.ts';
import { XbstreamWatcher } from './xbstream.ts';

/**
 * The hot copy: `mariabackup --backup --stream=xbstream` while the server keeps serving reads and
 * writes (no read_only, no replication stop, no shutdown; the tool blocks commits only for the
 * moment it reads the binlog position). Its stream goes through compression and hashing straight
 * into storage, cut into parts; nothing of it is written to local disk. The position comes from
 * the binlog info file the tool puts into the stream, read as the stream passes.
 */
export const onlineBackupEngine: BackupEngine = {
  name: 'online',
  async executeBackup(params: BackupParams): Promise<EngineBackup> {
    const { daemon, logger } = params;
    if (daemon.flavor.name === 'mysql') return cloneBackup(params);
    const tools = await findBackupTools(params.serverVersion);
    await flushCrashSafeAriaState(params);
    const replica = params.original.replication.configured;
    const layout = dataLayout(daemon.config);
    // An estimate for the progress bar: the stream carries the data files plus the redo written meanwhile.
    const estimate = (await listDataFiles(layout, logger)).reduce((sum, file) => sum + file.size, 0);
    const bookkeeping = await fs.mkdtemp(path.join(os.tmpdir(), 'stepback-online-'));
    const args = [
      // First, or the tool reads the host's own my.cnf files as well.
      `--defaults-file=${daemon.config.defaultsFile}`,
      '--backup',
      '--stream=xbstream',
      `--target-dir=${bookkeeping}`,
      `--socket=${daemon.config.socket}`,
      `--user=${daemon.config.client.user}`,
      // On a replica: record its replication position too; pause its SQL thread only while the
      // tables that are not InnoDB are copied, unless told not to (see docs/cli.md).
      ...(replica ? ['--slave-info'] : []),
      ...(replica && !params.keepReplicaApplying ? ['--safe-slave-backup'] : []),
    ];
    logger.info(
      `streaming ${tools.tool.name} ${tools.tool.version} (${replica ? 'replica' : 'primary'}, the server keeps serving)`,
    );
    const progress = new ByteProgress('streaming backup', { bytes: estimate, items: 1 }, params.progress);
    progress.start();
    const lines = new LastLines();
    const started = performance.now();
    const watcher = new XbstreamWatcher([...BINLOG_INFO_FILES, ...REPLICA_INFO_FILES]);
    const writer = new PartWriter(params.handle, {
      compression: params.compression,
      level: defaultLevel[params.compression],
      partSize: params.partSize,
      concurrency: Math.max(1, Math.min(params.concurrency, 4)),
      signal: params.signal,
      onBytes: progress.addBytes,
    });
    writer.on('finish', progress.itemDone);
    try {
      // mariabackup reads no [client] group: the password goes in MYSQL_PWD, never on a command line.
      const password = daemon.config.client.password;
      const env = password ? { ...process.env, MYSQL_PWD: password } : process.env;
      const child = spawn(tools.mariabackup, args, {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
        signal: params.signal,
      });
      child.stderr.on('data', lines.add);
      const exited = exitOf(child);
      exited.catch(() => {});
      try {
        await pipeline(child.stdout, watcher, writer, { signal: params.signal });
      } catch (error) {
        child.kill('SIGTERM');
        const outcome = await exited.catch(() => 'killed');
        if (outcome !== 0 && !params.signal.aborted) {
          throw toolFailed(
            'mariabackup --backup',
            outcome,
            lines,
            `the stream failed too: ${messageOf(error)}`,
          );
        }
        throw error;
      }
      const outcome = await exited;
      if (outcome !== 0) {
        throw toolFailed(
          'mariabackup --backup',
          outcome,
          lines,
          'the partial backup was removed; fix what the tool says and run the backup again',
        );
      }
    } finally {
      await fs.rm(bookkeeping, { recursive: true, force: true });
    }
    const copySeconds = (performance.now() - started) / 1000;
    const binlog = BINLOG_INFO_FILES.map((name) => watcher.file(name)).find((text) => text !== undefined);
    const replicaInfo = REPLICA_INFO_FILES.map((name) => watcher.file(name)).find(
      (text) => text !== undefined,
    );
    const position = mergePositions(binlogInfoPosition(binlog), replicaInfoPosition(replicaInfo));
    if (binlog === undefined)
      logger.warn('mariabackup wrote no binlog position (is log_bin off?): the position is empty');
    const parts = writer.parts;
    logger.info(`position ${position || '(empty)'}; ${watcher.files} files in ${parts.length} part(s)`);
    const raw = parts.reduce((sum, part) => sum + part.rawSize, 0);
    return {
      role: replica ? 'replica' : 'primary',
      position,
      purged: '',
      contents: {
        engine: 'online',
        tool: tools.tool,
        format: 'xbstream',
        partSize: params.partSize,
        files: parts,
      },
      bytes: { raw, stored: parts.reduce((sum, part) => sum + part.storedSize, 0) },
      copySeconds,
    };
  },
};

/**
 * Writes the state of every Aria and MyISAM table to its files (FLUSH LOCAL TABLES of those tables
 * only: InnoDB is untouched, and LOCAL is never binlogged, so a replica gets no GTID of its own).
 * mariabackup copies crash-safe Aria tables first, relying on Aria's log; a table last written by
 * a replica's SQL thread was measured here (MariaDB 10.11) to come back with the row count of an
 * older state, the log not repairing it. Flushed first, it comes back whole.
 */
async function flushCrashSafeAriaState(params: BackupParams): Promise<void> {
  const tables = await params.daemon.withConnection(async (connection) => {
    const rows = await queryRows<{ db: string; name: string }>(
      connection,
      "SELECT TABLE_SCHEMA AS db, TABLE_NAME AS name FROM information_schema.TABLES WHERE ENGINE IN ('Aria', 'MyISAM') AND TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN ('information_schema', 'performance_schema')",
    );
    for (let start = 0; start < rows.length; start += 100) {
      const names = rows.slice(start, start + 100).map((row) => qualifiedName(row.db, row.name));
      await connection.query(`FLUSH LOCAL TABLES ${names.join(', ')}`);
    }
    return rows.length;
  });
  params.logger.debug(`flushed the state of ${tables} Aria and MyISAM tables`);
}
