import { lex, SqlTokenError } from '../multirestore/sql-tokens.ts';

/**
 * Whether a statement the source logged as text may change one of the copied tables: it names the
 * source database (or runs in it) and names one of the tables. Errs on the side of yes: a statement
 * the tokenizer cannot read is matched by the table names as words.
 */
export function touchesCopiedTable(
  query: string,
  schema: string,
  sourceDatabase: string,
  tables: readonly string[],
): boolean {
  let names: string[];
  try {
    names = lex(query, { semicolons: true })
      .tokens.filter((token) => token.kind === 'word' || token.kind === 'identifier')
      .map((token) => token.value.toLowerCase());
  } catch (error) {
    if (!(error instanceof SqlTokenError)) throw error;
    names = query.toLowerCase().split(/[^\p{L}\p{N}_$]+/u);
  }
  const words = new Set(names);
  const inDatabase = schema === sourceDatabase || words.has(sourceDatabase.toLowerCase());
  return inDatabase && tables.some((table) => words.has(table.toLowerCase()));
}

/** The statement as an error shows it: one line, cut at 300 characters. */
export function statementText(query: string): string {
  const line = query.replace(/\s+/g, ' ').trim();
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}
