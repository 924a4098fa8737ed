import { FieldError } from '../../../../core/errors.ts';
import { KeyRange } from '../../../../core/keyrange.ts';
import type { Logger } from '../../../../core/log.ts';
import type { Compression } from '../../../../core/manifest.ts';
import { snapshotAddress, snapshotDir } from '../../../../core/storage/layout.ts';
import type { BackupHandle } from '../../../../core/storage/types.ts';
import { mapConcurrent } from '../../../../core/stream/concurrency.ts';
import type { MysqlDaemon } from '../../../mysqld/daemon.ts';
import type { Progress } from '../../../report/reporter.ts';
import type { SnapshotSessions } from './consistent-read.ts';
import { type DumpedTable, type DumpTableOptions, dumpTable } from './dump.ts';
import type { SourceSchema } from './schema.ts';

/** What decides which ranges a snapshot writes. */
export interface RangeChoice {
  dir: string;
  keyRanges?: readonly KeyRange[] | undefined;
}

/**
 * The key ranges a snapshot writes (default: the full range). The request schema has refused the
 * combinations that make no sense; a range listed twice is refused here, where ranges are parsed.
 */
export function snapshotRanges(choice: RangeChoice): KeyRange[] {
  const ranges = choice.keyRanges && choice.keyRanges.length > 0 ? [...choice.keyRanges] : [KeyRange.full()];
  const dirs = new Set<string>();
  for (const [index, range] of ranges.entries()) {
    const dir = snapshotDir(snapshotAddress(choice.dir, range));
    if (dirs.has(dir)) throw new FieldError(['keyRanges', String(index)], `lists key range ${range} twice`);
    dirs.add(dir);
  }
  return ranges;
}

export interface DumpTablesOptions {
  daemon: MysqlDaemon;
  database: string;
  maxFileBytes: number;
  concurrency: number;
  logger: Logger;
  onProgress?: ((progress: Progress) => void) | undefined;
  workDir: string;
  split: DumpTableOptions['split'];
  compression: Compression;
  signal: AbortSignal;
  /** Consistent-snapshot sessions to read every table through; absent: the instance is quiesced. */
  sessions?: SnapshotSessions | undefined;
}

/**
 * Dumps every table, `concurrency` at a time, the biggest first (the server's estimate) so the last
 * one to finish is a small one. Returns what each table index wrote.
 */
export async function dumpTables(
  schema: SourceSchema,
  handles: readonly BackupHandle[],
  options: DumpTablesOptions,
): Promise<Map<number, DumpedTable>> {
  const { daemon, database, logger, signal } = options;
  const tables = [...schema.tables.entries()].sort(
    ([, a], [, b]) => (schema.dataLength.get(b.name) ?? 0) - (schema.dataLength.get(a.name) ?? 0),
  );
  let rowsDone = 0;
  let tablesDone = 0;
  const report = () =>
    options.onProgress?.({
      phase: `dumping ${database}`,
      rowsDone,
      itemsDone: tablesDone,
      itemsTotal: tables.length,
    });
  report();
  const dumped = new Map<number, DumpedTable>();
  await mapConcurrent(
    tables,
    options.concurrency,
    async ([tableIndex, table], _i, tableSignal) => {
      const result = await dumpTable({
        connect: () => daemon.connect(),
        lend: options.sessions ? () => options.sessions!.lend() : undefined,
        database,
        table,
        tableIndex,
        workDir: options.workDir,
        split: options.split,
        handles,
        compression: options.compression,
        maxFileBytes: options.maxFileBytes,
        signal: AbortSignal.any([tableSignal, signal]),
        logger,
        onRows: (rows) => {
          rowsDone += rows;
          report();
        },
      });
      dumped.set(tableIndex, result);
      tablesDone++;
      report();
      logger.debug(`dumped ${table.name}`, { rows: result.rows });
    },
    { signal, logger },
  );
  return dumped;
}
