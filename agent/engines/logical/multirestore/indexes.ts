import type { TableDefinition } from '../../../../core/manifest.ts';
import { type Connection, qualifiedName, queryRows } from '../../../mysql/connection.ts';
import type { CheckedTable } from './ddl.ts';
import { isPunct, isWord, lex, matchingParen, type Token } from './sql-tokens.ts';

/**
 * Secondary indexes built after the load instead of during it. Measured with `bench/index-build.ts`
 * (bench/README.md): InnoDB builds an index over loaded rows by sorting, faster than it maintains one
 * row by row from about 100,000 rows; below that the gain is within the noise or the extra ALTER
 * TABLE costs more than it saves.
 */
export const INDEXES_AFTER_LOAD_ROWS = 100_000;

export interface SecondaryIndex {
  name: string;
  /** `KEY \`k_1\` (\`k\`)`, as the checked CREATE TABLE wrote it. */
  definition: string;
}

export interface SplitTable {
  /** The CREATE TABLE without its secondary indexes. */
  create: string;
  indexes: SecondaryIndex[];
}

/** Splits the checked statement's column list into its entries: `[first, end)` token ranges. */
function entries(tokens: readonly Token[], open: number, close: number): [number, number][] {
  const ranges: [number, number][] = [];
  let start = open + 1;
  let depth = 0;
  for (let i = open + 1; i < close; i++) {
    if (isPunct(tokens[i], '(')) depth++;
    else if (isPunct(tokens[i], ')')) depth--;
    else if (depth === 0 && isPunct(tokens[i], ',')) {
      ranges.push([start, i]);
      start = i + 1;
    }
  }
  ranges.push([start, close]);
  return ranges;
}

/**
 * The plain (non-unique) secondary indexes of an InnoDB table, split off its checked CREATE TABLE,
 * or undefined when it has none or must keep them: other engines, and tables with a foreign key or
 * referenced by one (a foreign key needs its index from the start). Unique keys stay: they are what
 * refuses a row a merge of sources would duplicate.
 */
export function splitSecondaryIndexes(
  checked: CheckedTable,
  referenced: ReadonlySet<string>,
  table: string,
): SplitTable | undefined {
  if (checked.engine?.toLowerCase() !== 'innodb' || referenced.has(table)) return undefined;
  const { text, tokens } = lex(checked.create);
  if (tokens.some((token) => isWord(token, 'REFERENCES'))) return undefined;
  const close = matchingParen(tokens, 3);
  const indexes: SecondaryIndex[] = [];
  let create = '';
  let copied = 0;
  for (const [first, end] of entries(tokens, 3, close)) {
    if (!isWord(tokens[first], 'KEY', 'INDEX') || first === 4) continue;
    const name = tokens[first + 1];
    if (name?.kind !== 'identifier') continue;
    indexes.push({ name: name.value, definition: text.slice(tokens[first]!.start, tokens[end - 1]!.end) });
    // From the comma before the entry to its end.
    create += text.slice(copied, tokens[first - 1]!.start);
    copied = tokens[end - 1]!.end;
  }
  if (indexes.length === 0) return undefined;
  return { create: create + text.slice(copied), indexes };
}

/** Tables a foreign key of any table references. */
export function referencedTables(
  tables: readonly TableDefinition[],
  checked: ReadonlyMap<string, CheckedTable>,
): Set<string> {
  const referenced = new Set<string>();
  for (const table of tables) {
    const { tokens } = lex(checked.get(table.name)!.create);
    tokens.forEach((token, i) => {
      if (isWord(token, 'REFERENCES') && tokens[i + 1]?.kind === 'identifier')
        referenced.add(tokens[i + 1]!.value);
    });
  }
  return referenced;
}

/** Adds the indexes `table` does not have yet (a resumed run may have added some). */
export async function addMissingIndexes(
  connection: Connection,
  database: string,
  table: string,
  indexes: readonly SecondaryIndex[],
): Promise<void> {
  const present = new Set(
    (
      await queryRows<{ name: string }>(
        connection,
        'SELECT DISTINCT INDEX_NAME AS name FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
        [database, table],
      )
    ).map((row) => row.name),
  );
  const missing = indexes.filter((index) => !present.has(index.name));
  if (missing.length === 0) return;
  await connection.query(
    `ALTER TABLE ${qualifiedName(database, table)} ${missing.map((index) => `ADD ${index.definition}`).join(', ')}`,
  );
}
