import { z } from 'zod';
import { MissingFileError, VerificationError } from './errors.ts';
import { BackupEvidence, Identifier } from './manifest.ts';
import { BackupDir, BackupName } from './paths.ts';
import type { BackupHandle } from './storage/types.ts';

/**
 * DRILL.json: the outcome of the last restore drill of a backup, written beside its MANIFEST
 * (which a drill never changes: the MANIFEST stays the backup's commit marker). Untrusted when read
 * back, like the MANIFEST.
 */

export const DRILL_FILE = 'DRILL.json';
const MAX_DRILL_BYTES = 4 * 1024 * 1024;

const Timestamp = z.iso.datetime({ offset: true });
const Text = z.string().max(4096);

/** A table or stored file that did not check out, and how. */
export const DrillDifference = z.object({
  database: Identifier.optional(),
  table: Identifier.optional(),
  /** The stored file, when the difference is one (a hash that does not match). */
  file: z.string().max(255).optional(),
  problem: Text,
});
export type DrillDifference = z.infer<typeof DrillDifference>;

export const DrillRecord = z.object({
  formatVersion: z.literal(1),
  dir: BackupDir,
  backup: BackupName,
  outcome: z.enum(['passed', 'failed']),
  startedAt: Timestamp,
  finishedAt: Timestamp,
  durationSeconds: z.number().nonnegative(),
  /** Where the drill ran: the host name and the drill instance's my.cnf. */
  drillHost: z.string().max(255),
  defaultsFile: z.string().max(4096),
  /** Tables whose rows and checksum were recomputed and compared with the backup's evidence. */
  tablesChecked: z.number().int().nonnegative(),
  /** Tables CHECK TABLE ran on. */
  tablesCheckedByServer: z.array(z.string().max(200)).max(10_000),
  /** Whether the backup recorded evidence this drill compared (without it, only the start and CHECK TABLE prove it). */
  evidence: z.boolean(),
  /**
   * For a backup that records no evidence of its own (an online backup): every table's rows and
   * checksum as the first passing drill found them on the prepared copy. Later drills compare with
   * it and carry it forward unchanged.
   */
  drillEvidence: BackupEvidence.optional(),
  differences: z.array(DrillDifference).max(10_000),
  /** What failed besides per-table differences: recovery errors in the log, a server that did not start. */
  problems: z.array(Text).max(1000),
});
export type DrillRecord = z.infer<typeof DrillRecord>;

export function serializeDrillRecord(record: DrillRecord): string {
  return `${JSON.stringify(DrillRecord.parse(record), null, 2)}\n`;
}

/** The last drill of a backup; undefined when it was never drilled. A record that does not parse is an error. */
export async function readDrillRecord(handle: BackupHandle): Promise<DrillRecord | undefined> {
  let stream: NodeJS.ReadableStream;
  try {
    stream = await handle.readFile(DRILL_FILE);
  } catch (error) {
    if (error instanceof MissingFileError) return undefined;
    throw error;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_DRILL_BYTES) throw new VerificationError(`${DRILL_FILE} of ${handle.name} is too large`);
    chunks.push(chunk);
  }
  const where = `${handle.dir}/${handle.name}/${DRILL_FILE}`;
  let json: unknown;
  try {
    json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new VerificationError(`${where} is not JSON`, { hint: 'drill the backup again to rewrite it' });
  }
  const parsed = DrillRecord.safeParse(json);
  if (!parsed.success || parsed.data.backup !== handle.name || parsed.data.dir !== handle.dir) {
    throw new VerificationError(`${where} is not a drill record of this backup`, {
      hint: 'drill the backup again to rewrite it',
    });
  }
  return parsed.data;
}

/** What a listing says of a backup's last drill. */
export type DrillState = 'passed' | 'failed' | 'never' | 'unreadable';

export async function drillStateOf(
  handle: BackupHandle,
): Promise<{ state: DrillState; record?: DrillRecord; problem?: string }> {
  try {
    const record = await readDrillRecord(handle);
    return record ? { state: record.outcome, record } : { state: 'never' };
  } catch (error) {
    if (error instanceof VerificationError) return { state: 'unreadable', problem: error.message };
    throw error;
  }
}
