import { createReadStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline, Readable } from 'node:stream';
import { readBinlogManifest } from '../../core/binlogs/catalog.ts';
import { parseGtidSet } from '../../core/binlogs/gtids.ts';
import {
  BINLOG_MANIFEST_FILE,
  BINLOG_MANIFEST_FORMAT_VERSION,
  type BinlogManifest,
  binlogEntryName,
  serializeBinlogManifest,
} from '../../core/binlogs/manifest.ts';
import { ManifestError, messageOf, StepbackError, withCleanup } from '../../core/errors.ts';
import type { Compression } from '../../core/manifest.ts';
import { keyspaceAndShard } from '../../core/paths.ts';
import { binlogArchiveDir } from '../../core/storage/layout.ts';
import type { BackupStorage } from '../../core/storage/types.ts';
import { compressionSuffix, createCompressor } from '../../core/stream/compress.ts';
import { CountingStream } from '../../core/stream/hash.ts';
import type { EngineContext } from '../engines/engine.ts';
import { queryRows, queryValue } from '../mysql/connection.ts';
import type { MysqlDaemon } from '../mysqld/daemon.ts';
import { ByteProgress } from '../report/progress.ts';
import { type BinlogScan, scanBinlog } from './events.ts';

export interface ArchiveOptions {
  /** The shard, `keyspace/shard`. */
  dir: string;
  maxAgeSeconds: number;
  compression: Compression;
}

export interface ArchivedFile {
  entry: string;
  file: string;
  size: number;
  storedSize: number;
  transactions: number;
  lastGtid?: string;
}

export interface BinlogArchiveResult {
  dir: string;
  storage: string;
  /** The current binary log was rotated first (FLUSH BINARY LOGS). */
  rotated: boolean;
  /** The file the server writes to now (not archived until it is closed). */
  current: string;
  uploaded: ArchivedFile[];
  /** Closed files found already archived. */
  alreadyArchived: number;
  bytes: { raw: number; stored: number };
  seconds: number;
}

interface ServerBinlogs {
  dir: string;
  files: { name: string; size: number }[];
  serverVersion: string;
}

async function listServerBinlogs(daemon: MysqlDaemon): Promise<ServerBinlogs> {
  return daemon.withConnection(async (connection) => {
    if (Number(await queryValue(connection, 'SELECT @@GLOBAL.log_bin')) !== 1) {
      throw new StepbackError('binary logging is off on this instance: there is nothing to archive', {
        hint: 'turn it on with log-bin in the [mysqld] section of its my.cnf (it takes a restart)',
      });
    }
    const basename = String(await queryValue(connection, 'SELECT @@GLOBAL.log_bin_basename'));
    const rows = await queryRows(connection, 'SHOW BINARY LOGS');
    return {
      dir: path.isAbsolute(basename) ? path.dirname(basename) : daemon.config.datadir,
      files: rows.map((row) => ({ name: String(row.Log_name), size: Number(row.File_size) })),
      serverVersion: String(await queryValue(connection, 'SELECT VERSION()')),
    };
  });
}

/** A manifest that is missing or invalid, as the problem of an incomplete entry. */
function asProblem(error: unknown): { problem: string } {
  if (error instanceof ManifestError) return { problem: messageOf(error) };
  throw error;
}

/** Whether the current file should be closed now: old enough (and, unless 0, holding a transaction). */
async function shouldRotate(file: string, maxAgeSeconds: number, now: Date): Promise<boolean> {
  if (maxAgeSeconds === 0) return true;
  const scan = await scanBinlog(file, { firstTransactionOnly: true });
  return scan.transactions > 0 && now.getTime() / 1000 - scan.openedAt >= maxAgeSeconds;
}

function iso(unixSeconds: number): string {
  return new Date(unixSeconds * 1000).toISOString();
}

/** The manifest fields read from the file itself: its GTIDs before and after, its times. */
async function describeFile(file: string): Promise<{ scan: BinlogScan; gtidsAfter: string }> {
  let after: ReturnType<typeof parseGtidSet> | undefined;
  const gtids: string[] = [];
  const scan = await scanBinlog(file, {
    onTransaction: (transaction) => {
      if (transaction.gtid) gtids.push(transaction.gtid);
    },
  });
  after = parseGtidSet(scan.flavor, scan.gtidsBefore);
  for (const gtid of gtids) after = after.with(gtid);
  return { scan, gtidsAfter: after.toString() };
}

/**
 * Uploads every closed binary log of the instance that the shard's archive does not hold yet, each
 * compressed and hashed as it streams, its manifest written last. A file already archived is left
 * alone; an entry a killed run left without its manifest is uploaded again. Nothing on the server is
 * deleted: the only statement that changes it is FLUSH BINARY LOGS, which closes the current file.
 */
export async function archiveBinlogs(
  daemon: MysqlDaemon,
  storage: BackupStorage,
  options: ArchiveOptions,
  context: EngineContext,
): Promise<BinlogArchiveResult> {
  const { logger } = context;
  const started = performance.now();
  let server = await listServerBinlogs(daemon);
  const current = server.files.at(-1);
  let rotated = false;
  if (
    current &&
    (await shouldRotate(path.join(server.dir, current.name), options.maxAgeSeconds, new Date()))
  ) {
    logger.info(`closing ${current.name} (FLUSH BINARY LOGS)`);
    await daemon.withConnection(async (connection) => {
      try {
        await connection.query('FLUSH BINARY LOGS');
      } catch (error) {
        throw new StepbackError(`cannot close ${current.name} (FLUSH BINARY LOGS): ${messageOf(error)}`, {
          cause: error,
          hint: "grant RELOAD to the agent's user (see the grants for a first backup), or archive without rotating: --max-age larger than the file's age",
        });
      }
    });
    rotated = true;
    server = await listServerBinlogs(daemon);
  }
  const closed = server.files.slice(0, -1);
  // Only the entries of the files on the server are read: the archive may hold thousands.
  const archiveDir = binlogArchiveDir(options.dir);
  const archived = new Map((await storage.listBackups(archiveDir)).map((handle) => [handle.name, handle]));

  const pending: { name: string; absolute: string; entry: string; size: number }[] = [];
  let alreadyArchived = 0;
  for (const file of closed) {
    const absolute = path.join(server.dir, file.name);
    let openedAt: number;
    try {
      openedAt = (await scanBinlog(absolute, { firstTransactionOnly: true })).openedAt;
    } catch (error) {
      // Purged by the server between the listing and now: nothing to archive any more.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    const entry = binlogEntryName(new Date(openedAt * 1000), file.name);
    const handle = archived.get(entry);
    const found = handle ? await readBinlogManifest(handle).catch(asProblem) : undefined;
    if (found && !('problem' in found)) {
      if (found.size !== file.size) {
        throw new StepbackError(
          `${file.name} is ${file.size} bytes on the server but ${found.size} in the archive (${archiveDir}/${entry})`,
          {
            hint: 'the archived copy is not this file: move that entry away in storage and run the archive again',
          },
        );
      }
      alreadyArchived++;
      continue;
    }
    if (found) {
      logger.warn(`archived binlog ${entry} is incomplete (${found.problem}): uploading it again`);
      await storage.removeBackup(archiveDir, entry);
    }
    pending.push({ name: file.name, absolute, entry, size: file.size });
  }

  const progress = new ByteProgress(
    'archiving binary logs',
    { bytes: pending.reduce((sum, file) => sum + file.size, 0), items: pending.length },
    context.progress,
  );
  progress.start();
  const uploaded: ArchivedFile[] = [];
  const { keyspace, shard } = keyspaceAndShard(options.dir);
  for (const file of pending) {
    if (context.signal.aborted) throw context.signal.reason;
    const { scan, gtidsAfter } = await describeFile(file.absolute);
    if (!scan.closed) {
      throw new StepbackError(
        `${file.absolute} has no rotate event at its end: it is not a closed binary log`,
      );
    }
    const handle = await storage.startBackup(archiveDir, file.entry);
    const object = `binlog${compressionSuffix[options.compression]}`;
    const stored = await withCleanup(
      logger,
      async () => {
        let raw = 0;
        const written = await handle.writeFile(
          object,
          () => {
            progress.addBytes(-raw);
            raw = 0;
            const counter = new CountingStream((delta) => {
              raw += delta;
              progress.addBytes(delta);
            });
            return pipeline(
              createReadStream(file.absolute, { highWaterMark: 1024 * 1024 }),
              counter,
              createCompressor(options.compression),
              () => {},
            );
          },
          { sizeHint: scan.size, replayable: true, signal: context.signal },
        );
        if (raw !== scan.size) {
          throw new StepbackError(
            `${file.absolute} changed while it was archived (${scan.size} bytes, ${raw} read)`,
          );
        }
        const manifest: BinlogManifest = {
          formatVersion: BINLOG_MANIFEST_FORMAT_VERSION,
          entry: file.entry,
          file: file.name,
          object,
          keyspace,
          shard,
          host: os.hostname(),
          flavor: scan.flavor,
          serverVersion: scan.serverVersion,
          serverId: scan.serverId,
          gtidsBefore: scan.gtidsBefore,
          gtidsAfter,
          ...(scan.firstGtid ? { firstGtid: scan.firstGtid } : {}),
          ...(scan.lastGtid ? { lastGtid: scan.lastGtid } : {}),
          transactions: scan.transactions,
          firstEventTime: iso(scan.openedAt),
          lastEventTime: iso(scan.lastEventTime),
          archivedAt: new Date().toISOString(),
          compression: options.compression,
          size: scan.size,
          storedSize: written.size,
          sha256: written.sha256,
        };
        const text = serializeBinlogManifest(manifest);
        await handle.writeFile(BINLOG_MANIFEST_FILE, () => Readable.from([Buffer.from(text)]));
        return manifest;
      },
      async (failed) => {
        if (failed) await handle.abortBackup().catch((error) => logger.warn(messageOf(error)));
      },
    );
    progress.itemDone();
    logger.info(`archived ${file.name} as ${archiveDir}/${file.entry} (${stored.transactions} transactions)`);
    uploaded.push({
      entry: file.entry,
      file: file.name,
      size: stored.size,
      storedSize: stored.storedSize,
      transactions: stored.transactions,
      ...(stored.lastGtid ? { lastGtid: stored.lastGtid } : {}),
    });
  }
  return {
    dir: options.dir,
    storage: storage.url,
    rotated,
    current: server.files.at(-1)?.name ?? '',
    uploaded,
    alreadyArchived,
    bytes: {
      raw: uploaded.reduce((sum, file) => sum + file.size, 0),
      stored: uploaded.reduce((sum, file) => sum + file.storedSize, 0),
    },
    seconds: Math.round((performance.now() - started) / 10) / 100,
  };
}
