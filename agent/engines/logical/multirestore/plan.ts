import type { TableDefinition, ViewDefinition } from '../../../../core/manifest.ts';
import { type CheckedTable, checkCreateTable } from './ddl.ts';
import type { FileJob } from './load.ts';
import { checkSameSchema, type RestoreSource } from './sources.ts';

/** What a multirestore will do, worked out from the manifests alone, before the instance is touched. */
export interface RestorePlan {
  sources: RestoreSource[];
  tables: TableDefinition[];
  views: ViewDefinition[];
  /** Each table's checked CREATE statement (from the first source: all agree). */
  checked: Map<string, CheckedTable>;
  /** The largest AUTO_INCREMENT=N any source had, per table, put back after its last file. */
  autoIncrement: Map<string, bigint>;
  /** Every data file of every source. */
  files: FileJob[];
}

/** Checks that the sources agree and that every CREATE statement is acceptable; throws otherwise. */
export function planRestore(sources: RestoreSource[]): RestorePlan {
  checkSameSchema(sources);
  const first = sources[0]!.manifest;
  const tables = first.tables.filter((t): t is TableDefinition => t.type === 'table');
  const views = first.tables.filter((t): t is ViewDefinition => t.type === 'view');
  const checked = new Map(tables.map((table) => [table.name, checkCreateTable(table)]));
  const autoIncrement = new Map<string, bigint>();
  for (const source of sources) {
    for (const table of source.manifest.tables) {
      if (table.type !== 'table') continue;
      const value = checkCreateTable(table).autoIncrement;
      const known = autoIncrement.get(table.name);
      if (value !== undefined && (known === undefined || value > known)) autoIncrement.set(table.name, value);
    }
  }
  const byName = new Map(tables.map((table) => [table.name, table]));
  const files = sources.flatMap((source) =>
    source.manifest.files.map((file) => ({ source, file, table: byName.get(file.table)! })),
  );
  return { sources, tables, views, checked, autoIncrement, files };
}

/** `dir@name`: how a source is named in the ledger, the checkpoints and `--sources`. */
export function sourceKey(source: RestoreSource): string {
  return `${source.dir}@${source.handle.name}`;
}

/** Files interleaved table by table, so per-table limits never hold every worker on one table. */
export function interleave(jobs: readonly FileJob[]): FileJob[] {
  const byTable = new Map<string, FileJob[]>();
  for (const job of jobs) {
    const list = byTable.get(job.table.name) ?? [];
    list.push(job);
    byTable.set(job.table.name, list);
  }
  const queues = [...byTable.values()];
  const out: FileJob[] = [];
  for (let round = 0; out.length < jobs.length; round++) {
    for (const queue of queues) if (round < queue.length) out.push(queue[round]!);
  }
  return out;
}
