import { z } from 'zod';
import { ManifestError } from '../errors.ts';
import { FlavorName, GtidSetText, isValidGtidSet } from '../gtid.ts';
import { Compression } from '../manifest.ts';
import { BackupName } from '../paths.ts';

/**
 * One archived binary log file: `binlogs/<keyspace>/<shard>/<entry>/` holds the compressed file
 * (`binlog` plus the codec's suffix) and this manifest, written last: an entry without a readable
 * manifest is incomplete and the next archive run uploads it again. Untrusted when read back.
 */

export const BINLOG_MANIFEST_FILE = 'BINLOG-MANIFEST';
export const BINLOG_MANIFEST_FORMAT_VERSION = 1;

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits');
const ByteCount = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const Timestamp = z.iso.datetime({ offset: true });

/** A binary log file name as the server names them: `mysql-bin.000042`. */
export const BinlogFileName = z
  .string()
  .regex(/^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}\.\d{6,10}$/, 'must be a binary log name like mysql-bin.000042');

export const BinlogManifest = z
  .object({
    formatVersion: z.literal(BINLOG_MANIFEST_FORMAT_VERSION),
    /** The entry's name in the archive (`2026-12-01.140312.mysql-bin.000042`). */
    entry: BackupName,
    /** The file's name on the server. */
    file: BinlogFileName,
    /** The stored object inside the entry. */
    object: BackupName,
    keyspace: z.string().max(128),
    shard: z.string().max(128),
    host: z.string().max(255),
    flavor: FlavorName,
    serverVersion: z.string().max(128),
    /** The server that wrote the file. */
    serverId: z.number().int().nonnegative(),
    /** What the server's binary logs held before this file (Gtid_list / Previous_gtids). */
    gtidsBefore: GtidSetText,
    /** …and after it. */
    gtidsAfter: GtidSetText,
    firstGtid: z.string().max(128).optional(),
    lastGtid: z.string().max(128).optional(),
    transactions: ByteCount,
    /** When the server opened the file (its first event). */
    firstEventTime: Timestamp,
    /** Its last event (the rotation): every transaction of the file committed at or before it. */
    lastEventTime: Timestamp,
    archivedAt: Timestamp,
    compression: Compression,
    size: ByteCount,
    storedSize: ByteCount,
    /** SHA-256 of the stored (compressed) bytes. */
    sha256: Sha256,
  })
  .superRefine((manifest, ctx) => {
    for (const field of ['gtidsBefore', 'gtidsAfter'] as const) {
      if (!isValidGtidSet(manifest.flavor, manifest[field])) {
        ctx.addIssue({ code: 'custom', path: [field], message: `is not a ${manifest.flavor} GTID set` });
      }
    }
    for (const field of ['firstGtid', 'lastGtid'] as const) {
      const value = manifest[field];
      if (value !== undefined && !isValidGtidSet(manifest.flavor, value)) {
        ctx.addIssue({ code: 'custom', path: [field], message: `is not a ${manifest.flavor} GTID` });
      }
    }
  });
export type BinlogManifest = z.infer<typeof BinlogManifest>;

function describe(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`)
    .join('; ');
}

export function parseBinlogManifest(text: string, entry: string): BinlogManifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ManifestError(
      `archived binlog ${entry}: ${BINLOG_MANIFEST_FILE} is not JSON (${(error as Error).message})`,
      undefined,
      { cause: error },
    );
  }
  const result = BinlogManifest.safeParse(json);
  if (!result.success) {
    throw new ManifestError(
      `archived binlog ${entry}: ${BINLOG_MANIFEST_FILE} is invalid: ${describe(result.error)}`,
      undefined,
      { cause: result.error },
    );
  }
  if (result.data.entry !== entry) {
    throw new ManifestError(
      `archived binlog ${entry}: ${BINLOG_MANIFEST_FILE} names entry ${result.data.entry}`,
    );
  }
  return result.data;
}

export function serializeBinlogManifest(manifest: BinlogManifest): string {
  const result = BinlogManifest.safeParse(manifest);
  if (!result.success) {
    throw new ManifestError(
      `refusing to write an invalid ${BINLOG_MANIFEST_FILE}: ${describe(result.error)}`,
    );
  }
  return `${JSON.stringify(result.data, null, 2)}\n`;
}

/**
 * The archive entry of a binary log file: the time the server opened it, then its name. Names then
 * sort in the order the server wrote the files, across restarts, failovers and a reset that starts
 * the numbering again, and the same file always gets the same entry (a re-run uploads nothing twice).
 */
export function binlogEntryName(openedAt: Date, file: string): string {
  const iso = openedAt.toISOString();
  return `${iso.slice(0, 10)}.${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}.${file}`;
}
