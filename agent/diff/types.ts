/** The result of a diff, as `stepback diff --json` prints it. */

export type JsonValue =
  | null
  | boolean
  | number
  | string
  | { hex: string }
  | JsonValue[]
  | { [key: string]: JsonValue };

export type SampleRow = Record<string, JsonValue>;

export interface MismatchedSample {
  key: SampleRow;
  /** The columns whose values differ. */
  columns: string[];
  left: SampleRow | null;
  right: SampleRow | null;
}

export interface ExtraSample {
  /** The primary key; null for a table without one. */
  key: SampleRow | null;
  row: SampleRow | null;
}

export interface DiffSamples {
  mismatched: MismatchedSample[];
  extraLeft: ExtraSample[];
  extraRight: ExtraSample[];
}

export interface DiffCounts {
  /** Keys compared: matching + mismatched + extraLeft + extraRight. */
  processed: number;
  matching: number;
  mismatched: number;
  extraLeft: number;
  extraRight: number;
  /**
   * With a key range only: left rows whose keyspace id is NULL, so that they belong to no range
   * and would be in no destination of a split. Any is a difference.
   */
  withoutKeyspaceId?: number;
}

export interface TableDiff extends DiffCounts {
  table: string;
  samples: DiffSamples;
  seconds: number;
}

export interface DiffResult {
  tables: TableDiff[];
  total: DiffCounts;
}

/** What a table's report says besides the counts (shown to people, not in the JSON). */
export interface TableNotes {
  table: string;
  /** `primary key`, or `row digest` for a table without one (compared by full-row order). */
  orderedBy: 'primary key' | 'row digest';
  /** Chunks whose checksums matched without streaming rows, and all chunks. */
  chunksConfirmed: number;
  chunks: number;
}

export interface DiffOutcome {
  result: DiffResult;
  notes: TableNotes[];
  /** Rows only on the left are allowed (--subset). */
  subset: boolean;
}

/** Whether a diff found anything that makes the copy wrong. */
export function hasDifferences(result: DiffResult, subset: boolean): boolean {
  const { mismatched, extraLeft, extraRight, withoutKeyspaceId = 0 } = result.total;
  return mismatched > 0 || extraRight > 0 || withoutKeyspaceId > 0 || (!subset && extraLeft > 0);
}
