import fs from 'node:fs/promises';
import { StepbackError } from '../../core/errors.ts';
import type { FlavorName } from '../../core/gtid.ts';

/**
 * What a binary log file holds, read from its event headers in TypeScript rather than from
 * `mariadb-binlog`/`mysqlbinlog` text: the archive needs only headers (time, type, server id,
 * length) and the few GTID events, so most of the file is skipped rather than decoded and printed,
 * one reader serves both flavors, and the offsets it finds are exact transaction boundaries that the
 * server's own tool is then told to start and stop at.
 *
 * Every event starts with a 19-byte header: timestamp u32, type u8, server id u32, length u32,
 * next position u32, flags u16 (little endian). The file starts with the 4-byte magic.
 */

const MAGIC = Buffer.from([0xfe, 0x62, 0x69, 0x6e]);
const HEADER = 19;

const STOP = 3;
const ROTATE = 4;
const FORMAT_DESCRIPTION = 15;
const MYSQL_GTID = 33;
const MYSQL_ANONYMOUS_GTID = 34;
const MYSQL_PREVIOUS_GTIDS = 35;
const MYSQL_TAGGED_GTID = 42;
const MARIADB_BINLOG_CHECKPOINT = 161;
const MARIADB_GTID = 162;
const MARIADB_GTID_LIST = 163;
const MARIADB_START_ENCRYPTION = 164;

/** One transaction: where its events start and end in the file, and when it committed. */
export interface BinlogTransaction {
  /** `0-1-42` or `uuid:42`; none for MySQL's anonymous transactions (gtid_mode OFF). */
  gtid: string | undefined;
  /** Offset of its first event (the GTID event). */
  start: number;
  /** Offset just past its last event. */
  end: number;
  /** Unix seconds of its last event (the commit). */
  time: number;
}

export interface BinlogScan {
  flavor: FlavorName;
  serverId: number;
  serverVersion: string;
  /** Unix seconds of the format description event: when the server opened the file. */
  openedAt: number;
  /** Unix seconds of the last complete event. */
  lastEventTime: number;
  /** The server's binlog GTID state before this file (MariaDB Gtid_list, MySQL Previous_gtids). */
  gtidsBefore: string;
  firstGtid: string | undefined;
  lastGtid: string | undefined;
  transactions: number;
  /** Bytes of complete events read (the file size for a closed file). */
  size: number;
  /** The file ends with a rotate or stop event: the server will not write to it again. */
  closed: boolean;
}

export interface ScanOptions {
  /** Called for every complete transaction, in file order. */
  onTransaction?: (transaction: BinlogTransaction) => void;
  /** Stop after the first transaction (is there anything in the file?). */
  firstTransactionOnly?: boolean;
}

/** Reads a file in 1 MiB windows, so the many small header reads are served from memory. */
class WindowReader {
  readonly #file: fs.FileHandle;
  readonly size: number;
  #window = Buffer.alloc(1 << 20);
  #start = 0;
  #length = 0;

  constructor(file: fs.FileHandle, size: number) {
    this.#file = file;
    this.size = size;
  }

  /** `length` bytes at `position`, or undefined past the end (an event still being written). */
  async read(position: number, length: number): Promise<Buffer | undefined> {
    if (position + length > this.size) return undefined;
    if (position >= this.#start && position + length <= this.#start + this.#length) {
      return this.#window.subarray(position - this.#start, position - this.#start + length);
    }
    if (length > this.#window.length) {
      const buffer = Buffer.alloc(length);
      await this.#file.read(buffer, 0, length, position);
      return buffer;
    }
    const { bytesRead } = await this.#file.read(this.#window, 0, this.#window.length, position);
    this.#start = position;
    this.#length = bytesRead;
    return bytesRead >= length ? this.#window.subarray(0, length) : undefined;
  }
}

function unreadable(path: string, why: string): StepbackError {
  return new StepbackError(`cannot read binary log ${path}: ${why}`);
}

function uuidText(bytes: Buffer): string {
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** MySQL's encoded GTID set (Previous_gtids): n_sids, then per sid its uuid and intervals [start, end). */
function decodeMysqlGtidSet(body: Buffer, path: string): string {
  const head = body.readBigUInt64LE(0);
  if (head >> 56n !== 0n) {
    throw unreadable(
      path,
      'its Previous_gtids event uses the tagged GTID format, which stepback does not read',
    );
  }
  const sids: string[] = [];
  let at = 8;
  for (let i = 0n; i < head; i++) {
    const uuid = uuidText(body.subarray(at, at + 16));
    const count = Number(body.readBigUInt64LE(at + 16));
    at += 24;
    const intervals: string[] = [];
    for (let j = 0; j < count; j++) {
      const start = body.readBigInt64LE(at);
      const end = body.readBigInt64LE(at + 8) - 1n;
      intervals.push(start === end ? `${start}` : `${start}-${end}`);
      at += 16;
    }
    sids.push(`${uuid}:${intervals.join(':')}`);
  }
  return sids.join(',');
}

/** MariaDB's Gtid_list: count (low 28 bits), then per GTID domain u32, server u32, sequence u64. */
function decodeGtidList(body: Buffer): string {
  const count = body.readUInt32LE(0) & 0x0fffffff;
  const gtids: string[] = [];
  for (let i = 0; i < count; i++) {
    const at = 4 + i * 16;
    gtids.push(`${body.readUInt32LE(at)}-${body.readUInt32LE(at + 4)}-${body.readBigUInt64LE(at + 8)}`);
  }
  return gtids.join(',');
}

/** Reads a binary log file's events (their headers, and the bodies of GTID events only). */
export async function scanBinlog(path: string, options: ScanOptions = {}): Promise<BinlogScan> {
  const file = await fs.open(path, 'r');
  try {
    const reader = new WindowReader(file, (await file.stat()).size);
    const magic = await reader.read(0, 4);
    if (!magic?.equals(MAGIC)) throw unreadable(path, 'it does not start with the binary log magic number');
    const scan: BinlogScan = {
      flavor: 'mysql',
      serverId: 0,
      serverVersion: '',
      openedAt: 0,
      lastEventTime: 0,
      gtidsBefore: '',
      firstGtid: undefined,
      lastGtid: undefined,
      transactions: 0,
      size: 4,
      closed: false,
    };
    let open: BinlogTransaction | undefined;
    const finish = (end: number) => {
      if (!open) return;
      open.end = end;
      scan.transactions++;
      options.onTransaction?.(open);
      open = undefined;
    };
    let position = 4;
    for (;;) {
      const header = await reader.read(position, HEADER);
      if (!header) break;
      const time = header.readUInt32LE(0);
      const type = header.readUInt8(4);
      const serverId = header.readUInt32LE(5);
      const length = header.readUInt32LE(9);
      if (length < HEADER) throw unreadable(path, `event at ${position} has length ${length}`);
      if (position + length > reader.size) break;
      const body = async (max: number) => {
        const bytes = await reader.read(position + HEADER, Math.min(length - HEADER, max));
        if (!bytes) throw unreadable(path, `event at ${position} is cut short`);
        return bytes;
      };
      if (type === FORMAT_DESCRIPTION) {
        const version = (await body(52)).subarray(2, 52);
        scan.serverVersion = version.subarray(0, Math.max(0, version.indexOf(0))).toString('latin1');
        if (scan.serverVersion === '') scan.serverVersion = version.toString('latin1');
        scan.flavor = /mariadb/i.test(scan.serverVersion) ? 'mariadb' : 'mysql';
        scan.serverId = serverId;
        scan.openedAt = time;
      } else if (type === MARIADB_GTID_LIST) {
        scan.gtidsBefore = decodeGtidList(await body(length));
      } else if (type === MYSQL_PREVIOUS_GTIDS) {
        scan.gtidsBefore = decodeMysqlGtidSet(await body(length), path);
      } else if (type === MARIADB_START_ENCRYPTION) {
        throw unreadable(path, 'it is encrypted (encrypt_binlog), which stepback does not read');
      } else if (type === MYSQL_TAGGED_GTID) {
        throw unreadable(path, `it holds a tagged GTID (event at ${position}), which stepback does not read`);
      } else if (type === MARIADB_GTID || type === MYSQL_GTID || type === MYSQL_ANONYMOUS_GTID) {
        finish(position);
        if (options.firstTransactionOnly && scan.transactions > 0) break;
        let gtid: string | undefined;
        if (type === MARIADB_GTID) {
          const bytes = await body(12);
          gtid = `${bytes.readUInt32LE(8)}-${serverId}-${bytes.readBigUInt64LE(0)}`;
        } else if (type === MYSQL_GTID) {
          const bytes = await body(25);
          gtid = `${uuidText(bytes.subarray(1, 17))}:${bytes.readBigInt64LE(17)}`;
        }
        if (gtid) {
          scan.firstGtid ??= gtid;
          scan.lastGtid = gtid;
        }
        open = { gtid, start: position, end: position, time };
      } else if (type === ROTATE || type === STOP) {
        finish(position);
        scan.closed = true;
      } else if (open && type !== MARIADB_BINLOG_CHECKPOINT) {
        open.time = Math.max(open.time, time);
      }
      scan.lastEventTime = Math.max(scan.lastEventTime, time);
      position += length;
      scan.size = position;
      if (scan.closed) break;
    }
    // The file being written may end inside a transaction: it is not counted (a closed file's last
    // one ended at its rotate event). With firstTransactionOnly, a started one is enough.
    if (open && options.firstTransactionOnly) scan.transactions++;
    if (!scan.serverVersion) throw unreadable(path, 'it has no format description event');
    return scan;
  } finally {
    await file.close();
  }
}
