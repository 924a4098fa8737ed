import type { StoredProgramDefinition, TableDefinition, ViewDefinition } from '../../../../core/manifest.ts';
import { type CheckedTable, type CheckedView, checkCreateTable, checkCreateView } from './ddl.ts';
import {
  INDEXES_AFTER_LOAD_ROWS,
  referencedTables,
  type SecondaryIndex,
  splitSecondaryIndexes,
} from './indexes.ts';
import type { FileJob } from './load.ts';
import { type CheckedProgram, checkStoredProgram } from './program-ddl.ts';
import { checkSameSchema, type RestoreSource } from './sources.ts';
import type { ServerRelease } from './sql-tokens.ts';

/** What a multirestore will do, worked out from the manifests before anything is created. */
export interface RestorePlan {
  sources: RestoreSource[];
  tables: TableDefinition[];
  views: ViewDefinition[];
  /**
   * Each table's checked CREATE statement (from the first source: all agree); for a table in
   * `indexesAfterLoad`, without those indexes.
   */
  checked: Map<string, CheckedTable>;
  /** Secondary indexes built after the table's last file (big InnoDB tables: see indexes.ts). */
  indexesAfterLoad: Map<string, SecondaryIndex[]>;
  /** Each view's checked CREATE statement. */
  checkedViews: Map<string, CheckedView>;
  /** Triggers, routines and events, checked, in the order the source had them. */
  programs: CheckedProgram[];
  /** Triggers, routines and events the snapshot holds but this run leaves out (--skip-stored-programs). */
  skippedPrograms: number;
  /** The database's default character set and collation, when the snapshot carries them. */
  charset: string | undefined;
  collation: string | undefined;
  /** The largest AUTO_INCREMENT=N any source had, per table, put back after its last file. */
  autoIncrement: Map<string, bigint>;
  /** Every data file of every source. */
  files: FileJob[];
}

/** The destination server, against which every statement is checked. */
export interface DestinationServer {
  release: ServerRelease;
  /** The databases of the destination server other than the destination one. */
  otherDatabases: ReadonlySet<string>;
}

/** Checks that the sources agree and that every CREATE statement is acceptable; throws otherwise. */
export function planRestore(
  sources: RestoreSource[],
  destination: DestinationServer,
  options: { skipStoredPrograms: boolean } = { skipStoredPrograms: false },
): RestorePlan {
  checkSameSchema(sources);
  const { release, otherDatabases } = destination;
  const first = sources[0]!.manifest;
  const tables = first.tables.filter((t): t is TableDefinition => t.type === 'table');
  const views = first.tables.filter((t): t is ViewDefinition => t.type === 'view');
  const checked = new Map(tables.map((table) => [table.name, checkCreateTable(table, release)]));
  const checkedViews = new Map(
    views.map((view) => [view.name, checkCreateView(view, otherDatabases, release)]),
  );
  const tableNames = new Set(tables.map((table) => table.name));
  const carried = first.storedPrograms ?? [];
  // Left out unchecked: nothing of them is run.
  const programs = (options.skipStoredPrograms ? [] : carried).map((program: StoredProgramDefinition) =>
    checkStoredProgram(program, { release, otherDatabases, tables: tableNames }),
  );
  const autoIncrement = new Map<string, bigint>();
  for (const source of sources) {
    for (const table of source.manifest.tables) {
      if (table.type !== 'table') continue;
      const value = checkCreateTable(table, release).autoIncrement;
      const known = autoIncrement.get(table.name);
      if (value !== undefined && (known === undefined || value > known)) autoIncrement.set(table.name, value);
    }
  }
  const byName = new Map(tables.map((table) => [table.name, table]));
  const files = sources.flatMap((source) =>
    source.manifest.files.map((file) => ({ source, file, table: byName.get(file.table)! })),
  );
  const rows = new Map<string, number>();
  for (const job of files) rows.set(job.table.name, (rows.get(job.table.name) ?? 0) + job.file.rows);
  const referenced = referencedTables(tables, checked);
  const indexesAfterLoad = new Map<string, SecondaryIndex[]>();
  for (const table of tables) {
    if ((rows.get(table.name) ?? 0) < INDEXES_AFTER_LOAD_ROWS) continue;
    const split = splitSecondaryIndexes(checked.get(table.name)!, referenced, table.name);
    if (!split) continue;
    checked.set(table.name, { ...checked.get(table.name)!, create: split.create });
    indexesAfterLoad.set(table.name, split.indexes);
  }
  return {
    sources,
    tables,
    views,
    checked,
    indexesAfterLoad,
    checkedViews,
    programs,
    skippedPrograms: options.skipStoredPrograms ? carried.length : 0,
    charset: first.charset,
    collation: first.collation,
    autoIncrement,
    files,
  };
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
