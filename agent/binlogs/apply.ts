import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { CompleteBinlog } from '../../core/binlogs/catalog.ts';
import { type GtidSet, parseGtidSet } from '../../core/binlogs/gtids.ts';
import type { RestorePoint } from '../../core/binlogs/plan.ts';
import { HashMismatchError, StepbackError, VerificationError } from '../../core/errors.ts';
import { createDecompressor } from '../../core/stream/compress.ts';
import { CountingStream, HashingStream } from '../../core/stream/hash.ts';
import type { EngineContext } from '../engines/engine.ts';
import { findExecutable } from '../mysqld/binaries.ts';
import type { MysqlDaemon } from '../mysqld/daemon.ts';
import { ByteProgress } from '../report/progress.ts';
import { type BinlogTransaction, scanBinlog } from './events.ts';

/**
 * Replays archived binary logs into a restored instance up to a point, with the server's own
 * `mariadb-binlog`/`mysqlbinlog` piped into its client over the socket. The start and stop offsets
 * are whole transactions found by reading the files' events (events.ts), not `--stop-datetime`,
 * which stops at the first event at or after a time and so could neither include the transactions
 * of the last second nor be sure to end on a transaction's boundary.
 */

export interface AppliedBinlog {
  entry: string;
  file: string;
  transactions: number;
}

export interface PointInTimeResult {
  /** `2026-12-01T14:03:12.000Z` or `GTID 0-1-42`. */
  point: string;
  binlogs: AppliedBinlog[];
  transactions: number;
  /** The last transaction applied: its GTID and commit time (none when the backup was the point). */
  lastApplied?: { gtid?: string; time: string };
  /** The GTID position the instance ends at. */
  position: string;
}

/** The binlog tool and client of this server, found beside its binary first. */
function tools(daemon: MysqlDaemon): { binlog: string; client: string } {
  const dir = path.dirname(daemon.binaries.mysqld);
  const near = [dir, path.join(dir, '..', 'bin'), process.env.PATH ?? ''].join(path.delimiter);
  const mariadb = daemon.flavor.name === 'mariadb';
  const binlog = findExecutable(mariadb ? ['mariadb-binlog', 'mysqlbinlog'] : ['mysqlbinlog'], near);
  const client = daemon.binaries.client ?? findExecutable(mariadb ? ['mariadb', 'mysql'] : ['mysql'], near);
  if (!binlog || !client) {
    throw new StepbackError(
      `no ${mariadb ? 'mariadb-binlog' : 'mysqlbinlog'} or no ${mariadb ? 'mariadb' : 'mysql'} client found beside ${daemon.binaries.mysqld} or on PATH`,
      {
        hint: `install the server's client programs (Debian: ${mariadb ? 'mariadb-client' : 'mysql-client'})`,
      },
    );
  }
  return { binlog, client };
}

/** Downloads one archived file, checking the stored bytes' hash and size and the file's size. */
async function download(
  entry: CompleteBinlog,
  target: string,
  onBytes: (delta: number) => void,
  signal: AbortSignal,
) {
  const { manifest } = entry;
  const hasher = new HashingStream();
  const counter = new CountingStream(onBytes);
  await pipeline(
    await entry.handle.readFile(manifest.object, { signal }),
    hasher,
    createDecompressor(manifest.compression),
    counter,
    createWriteStream(target),
    { signal },
  );
  if (hasher.digest() !== manifest.sha256) {
    throw new HashMismatchError(
      `${entry.handle.dir}/${entry.entry}/${manifest.object}`,
      manifest.sha256,
      hasher.digest(),
    );
  }
  if (counter.bytes !== manifest.size) {
    throw new VerificationError(
      `archived binlog ${entry.entry} unpacks to ${counter.bytes} bytes, its manifest says ${manifest.size}`,
    );
  }
}

/** The last lines a child wrote to stderr, for errors. */
function tail(chunks: Buffer[]): string {
  return Buffer.concat(chunks).toString('utf8').trim().split('\n').slice(-5).join(' | ').slice(-2000);
}

/** `binlog --start-position --stop-position FILE | client`, both over this host's socket. */
async function replay(
  daemon: MysqlDaemon,
  programs: { binlog: string; client: string },
  file: string,
  range: { start: number; stop: number },
): Promise<void> {
  const { config } = daemon;
  const env = {
    ...process.env,
    // Times in the tool's output are read in its zone; UTC keeps them what the binlog says.
    TZ: 'UTC',
    ...(config.client.password ? { MYSQL_PWD: config.client.password } : {}),
  };
  const tool = spawn(
    programs.binlog,
    [`--start-position=${range.start}`, `--stop-position=${range.stop}`, file],
    {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const client = spawn(
    programs.client,
    [
      `--defaults-file=${config.defaultsFile}`,
      `--socket=${config.socket}`,
      `--user=${config.client.user}`,
      '--binary-mode',
    ],
    { env, stdio: ['pipe', 'ignore', 'pipe'] },
  );
  const toolErrors: Buffer[] = [];
  const clientErrors: Buffer[] = [];
  tool.stderr.on('data', (chunk: Buffer) => toolErrors.push(chunk));
  client.stderr.on('data', (chunk: Buffer) => clientErrors.push(chunk));
  const exited = (child: ReturnType<typeof spawn>) =>
    new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code) => resolve(code));
    });
  const [toolCode, clientCode] = await Promise.all([
    exited(tool),
    exited(client),
    pipeline(tool.stdout, client.stdin).catch(() => {}),
  ]);
  if (clientCode !== 0) {
    throw new StepbackError(
      `applying ${path.basename(file)} failed: ${path.basename(programs.client)} exited with ${clientCode}: ${tail(clientErrors)}`,
    );
  }
  if (toolCode !== 0) {
    throw new StepbackError(
      `reading ${path.basename(file)} failed: ${path.basename(programs.binlog)} exited with ${toolCode}: ${tail(toolErrors)}`,
    );
  }
}

/**
 * Downloads, verifies and applies `binlogs` to a running instance restored from a backup at
 * `backupPosition`: every transaction the backup lacks, in order, up to the point; then makes the
 * instance's GTID position the one it reached and checks the server agrees.
 */
export async function applyBinlogs(
  daemon: MysqlDaemon,
  binlogs: CompleteBinlog[],
  backupPosition: string,
  point: RestorePoint,
  context: EngineContext,
): Promise<PointInTimeResult> {
  const flavor = daemon.flavor.name;
  const pointText = 'time' in point ? point.time.toISOString() : `GTID ${point.gtid}`;
  let position: GtidSet = parseGtidSet(flavor, backupPosition);
  const result: PointInTimeResult = { point: pointText, binlogs: [], transactions: 0, position: '' };
  const programs = binlogs.length > 0 ? tools(daemon) : undefined;
  const work = await fs.mkdtemp(path.join(path.dirname(daemon.config.datadir), '.stepback-binlogs-'));
  try {
    const progress = new ByteProgress(
      'applying binary logs',
      { bytes: binlogs.reduce((sum, entry) => sum + entry.manifest.size, 0), items: binlogs.length },
      context.progress,
    );
    progress.start();
    let reached = false;
    for (const entry of binlogs) {
      if (reached) break;
      const local = path.join(work, entry.manifest.file);
      await download(entry, local, progress.addBytes, context.signal);
      const chosen: BinlogTransaction[] = [];
      await scanBinlog(local, {
        onTransaction: (transaction) => {
          if (reached) return;
          if (transaction.gtid && position.has(transaction.gtid)) return;
          if ('time' in point && transaction.time * 1000 > point.time.getTime()) {
            reached = true;
            return;
          }
          chosen.push(transaction);
          if (transaction.gtid) position = position.with(transaction.gtid);
          if ('gtid' in point && transaction.gtid === point.gtid) reached = true;
        },
      });
      const first = chosen[0];
      const last = chosen.at(-1);
      if (first && last && programs) {
        context.logger.info(
          `applying ${chosen.length} transaction(s) of ${entry.manifest.file} (${first.gtid ?? first.start} to ${last.gtid ?? last.end})`,
        );
        await replay(daemon, programs, local, { start: first.start, stop: last.end });
        result.binlogs.push({ entry: entry.entry, file: entry.manifest.file, transactions: chosen.length });
        result.transactions += chosen.length;
        result.lastApplied = {
          ...(last.gtid ? { gtid: last.gtid } : {}),
          time: new Date(last.time * 1000).toISOString(),
        };
      }
      await fs.rm(local, { force: true });
      progress.itemDone();
    }
    if ('gtid' in point && !position.has(point.gtid)) {
      throw new StepbackError(`the archived binary logs ended before ${point.gtid}`);
    }
    result.position = position.position();
    await daemon.withConnection(async (connection) => {
      // MariaDB counts replayed transactions of other servers in its binlog, not in gtid_current_pos.
      if (flavor === 'mariadb') await daemon.flavor.setRestoredPosition(connection, result.position);
      const executed = parseGtidSet(flavor, await daemon.flavor.executedPosition(connection));
      if (!executed.covers(position) || !position.covers(executed)) {
        throw new VerificationError(
          `after replaying the binary logs the instance is at ${executed.toString() || '(empty)'}, expected ${position.toString() || '(empty)'}`,
        );
      }
    });
    return result;
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}
