import fs from 'node:fs/promises';
import { z } from 'zod';
import { StepbackError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import type { MysqlDaemon } from '../mysqld/daemon.ts';
import { InstanceState } from './state.ts';

/**
 * The file an operation holds next to the datadir while it may change the instance: what it found
 * (to put back) and how far it got (to finish or undo). Kept when the instance could not be put
 * back, so the next command on the instance completes the recovery.
 */

/** The operations that change an instance, and so may leave a marker behind. */
export const InstanceOperation = z.enum([
  'backup',
  'restore',
  'snapshot',
  'multirestore',
  'drill',
  'catchup',
  'replication',
  'writes',
]);
export type InstanceOperation = z.infer<typeof InstanceOperation>;

export const OperationMarker = z.object({
  version: z.literal(1),
  operation: z.string().max(64),
  pid: z.number().int().positive(),
  host: z.string(),
  startedAt: z.string(),
  /** The state to put back; absent until the operation recorded it (nothing was changed before). */
  original: InstanceState.optional(),
  /** Operation-specific recovery data, read by that operation's recoverer. */
  details: z.record(z.string(), z.unknown()).optional(),
});
export type OperationMarker = z.infer<typeof OperationMarker>;

/**
 * What an interrupted operation needs beyond putting the state back (restore: move the old files
 * back). `pending` says whether a failed run left work only recovery may finish: then the marker
 * stays and the instance is not started over it.
 */
export interface Recoverer {
  recover(daemon: MysqlDaemon, marker: OperationMarker, logger: Logger): Promise<string[]>;
  pending?(marker: OperationMarker): boolean;
}

/** `/var/lib/mysql` → `/var/lib/mysql.stepback.json`: beside the datadir, never inside it. */
export function markerPath(daemon: MysqlDaemon): string {
  return `${daemon.config.datadir}.stepback.json`;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export async function readMarker(file: string): Promise<OperationMarker | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const parsed = OperationMarker.safeParse(safeJson(text));
  if (!parsed.success) {
    throw new StepbackError(`the operation marker ${file} is unreadable`, {
      hint: 'check the instance by hand (running, read_only, replication), then delete the file',
    });
  }
  return parsed.data;
}

export async function writeMarker(file: string, marker: OperationMarker): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`;
  await fs.writeFile(temporary, `${JSON.stringify(marker, null, 2)}\n`, { flush: true });
  await fs.rename(temporary, file);
}
