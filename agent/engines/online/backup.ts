import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { messageOf, StepbackError } from '../../../core/errors.ts';
import { defaultLevel } from '../../../core/stream/compress.ts';
import { ByteProgress } from '../../report/progress.ts';
import type { BackupEngine, BackupParams, EngineBackup } from '../engine.ts';
import { listDataFiles } from '../physical/files.ts';
import { dataLayout } from '../physical/layout.ts';
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
    if (daemon.flavor.name !== 'mariadb') {
      throw new StepbackError(
        'the online engine backs up MariaDB (with mariabackup); this instance runs MySQL',
        {
          hint: 'use --engine physical on MySQL',
        },
      );
    }
    const tools = await findBackupTools(params.serverVersion);
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
      // On a replica: record its replication position too, without stopping it (see docs/cli.md).
      ...(replica ? ['--slave-info'] : []),
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
      const child = spawn(tools.mariabackup, args, {
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
