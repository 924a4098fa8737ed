import { ManifestError } from '../../../../core/errors.ts';
import type { TableDefinition, ViewDefinition } from '../../../../core/manifest.ts';
import { quoteIdentifier } from '../../../mysql/connection.ts';
import { type Account, definerClause, readDefiner } from './definers.ts';
import {
  isPunct,
  isWord,
  type Lexed,
  type LexOptions,
  lex,
  matchingParen,
  qualifiedNames,
  type ServerRelease,
  SqlTokenError,
  type Token,
} from './sql-tokens.ts';

/**
 * CREATE statements come from a manifest, which is untrusted: each is checked to be exactly one
 * CREATE TABLE or CREATE VIEW of the name the manifest lists, unqualified (so it lands in the
 * destination database, the connection's current one), touching no other database, with no
 * clause that reads or writes outside it (AS SELECT, DATA DIRECTORY, CONNECTION, foreign engines).
 */

/** Storage engines a restored table may use; others (CONNECT, FEDERATED, …) reach outside the server. */
export const ENGINES = new Set(['INNODB', 'MYISAM', 'ARIA', 'MEMORY']);

/** Table options SHOW CREATE TABLE prints that are safe to replay. */
const TABLE_OPTIONS = new Set([
  'ENGINE',
  'AUTO_INCREMENT',
  'CHARSET',
  'COLLATE',
  'ROW_FORMAT',
  'KEY_BLOCK_SIZE',
  'COMMENT',
  'STATS_PERSISTENT',
  'STATS_AUTO_RECALC',
  'STATS_SAMPLE_PAGES',
  'PACK_KEYS',
  'CHECKSUM',
  'TABLE_CHECKSUM',
  'PAGE_CHECKSUM',
  'PAGE_COMPRESSED',
  'PAGE_COMPRESSION_LEVEL',
  'TRANSACTIONAL',
  'AVG_ROW_LENGTH',
  'MAX_ROWS',
  'MIN_ROWS',
  'DELAY_KEY_WRITE',
  'ENCRYPTED',
  'ENCRYPTION_KEY_ID',
  'INSERT_METHOD',
  'ENCRYPTION',
  'AUTOEXTEND_SIZE',
]);

/** Words that must not appear anywhere in a table definition. */
const FORBIDDEN_IN_TABLE = new Set(['SELECT', 'DIRECTORY', 'CONNECTION', 'UNION']);

export interface CheckedTable {
  /** The statement to run, without its AUTO_INCREMENT=N table option. */
  create: string;
  /** The AUTO_INCREMENT=N value the source had, put back after the data is loaded. */
  autoIncrement: bigint | undefined;
  engine: string | undefined;
}

export function refuse(
  kind: string,
  name: string,
  reason: string,
  hint = 'the manifest was changed or made by something else; take a new snapshot',
): never {
  throw new ManifestError(`the CREATE ${kind} of ${JSON.stringify(name)} is refused: ${reason}`, undefined, {
    hint,
  });
}

export function lexStatement(kind: string, name: string, statement: string, options: LexOptions): Lexed {
  try {
    return lex(statement, options);
  } catch (error) {
    if (error instanceof SqlTokenError) refuse(kind, name, error.message);
    throw error;
  }
}

/** Checks a manifest table's CREATE TABLE and takes its AUTO_INCREMENT=N option out. */
export function checkCreateTable(table: TableDefinition, release: ServerRelease): CheckedTable {
  const refuseTable: (reason: string) => never = (reason) => refuse('TABLE', table.name, reason);
  const { text, tokens: list } = lexStatement('TABLE', table.name, table.create, { release });
  if (!isWord(list[0], 'CREATE') || !isWord(list[1], 'TABLE'))
    refuseTable('it is not a CREATE TABLE statement');
  const name = list[2];
  if (name?.kind !== 'identifier' || name.value !== table.name) {
    refuseTable(
      `it creates ${name ? JSON.stringify(name.value) : 'nothing'}, not the table the manifest lists`,
    );
  }
  if (!isPunct(list[3], '(')) refuseTable('the table name must be followed by its column list');
  const close = matchingParen(list, 3);
  if (close < 0) refuseTable('its column list is not closed');
  for (const token of list) {
    if (token.kind === 'word' && FORBIDDEN_IN_TABLE.has(token.value))
      refuseTable(`${token.value} is not allowed`);
  }
  const qualified = qualifiedNames(list);
  if (qualified.length > 0) {
    refuseTable(
      `it names ${qualified[0]!.parts.join('.')} in another database (only unqualified names are allowed)`,
    );
  }

  let autoIncrement: bigint | undefined;
  let engine: string | undefined;
  let cut: [number, number] | undefined;
  let i = close + 1;
  while (i < list.length) {
    const token = list[i]!;
    if (isPunct(token, ',')) {
      i++;
      continue;
    }
    if (isWord(token, 'PARTITION')) {
      // Partition clauses are checked by the scans above (no DIRECTORY, no qualified names); their
      // engines must still be ours.
      for (let j = i; j < list.length; j++) {
        if (isWord(list[j], 'ENGINE')) {
          const value = isPunct(list[j + 1], '=') ? list[j + 2] : list[j + 1];
          if (!value || !ENGINES.has(value.value.toUpperCase()))
            refuseTable(`engine ${value?.value ?? '?'} is not allowed`);
        }
      }
      break;
    }
    if (token.kind !== 'word')
      refuseTable(`unexpected ${JSON.stringify(token.value)} among the table options`);
    const optionStart = i;
    let option = token.value;
    if (option === 'DEFAULT') option = list[++i]?.value ?? '';
    if (option === 'CHARACTER' && isWord(list[i + 1], 'SET')) {
      i++;
      option = 'CHARSET';
    }
    if (!TABLE_OPTIONS.has(option)) refuseTable(`table option ${option} is not allowed`);
    i++;
    if (isPunct(list[i], '=')) i++;
    const value = list[i];
    if (!value || value.kind === 'punct') refuseTable(`table option ${option} has no value`);
    if (option === 'ENGINE') {
      engine = text.slice(value.start, value.end);
      if (!ENGINES.has(engine.toUpperCase())) refuseTable(`engine ${engine} is not allowed`);
    }
    if (option === 'AUTO_INCREMENT') {
      if (value.kind !== 'number' || !/^\d+$/.test(value.value))
        refuseTable('AUTO_INCREMENT must be a number');
      autoIncrement = BigInt(value.value);
      cut = [list[optionStart]!.start, value.end];
    }
    i++;
  }
  const create = cut ? text.slice(0, cut[0]) + text.slice(cut[1]).replace(/^ +/, '') : text;
  return { create, autoIncrement, engine };
}

/** A checked CREATE VIEW, written with or without its DEFINER. */
export interface CheckedView {
  definer: Account | undefined;
  /** The statement: with the DEFINER when `keepDefiner`, else the loading user defines the view. */
  statement(keepDefiner: boolean): string;
}

/**
 * Rebuilds a manifest view's CREATE VIEW: its ALGORITHM, DEFINER and SQL SECURITY kept, its SELECT
 * checked to name nothing in another database: `otherDatabases` are the databases of this server it
 * must not reach (any two-part name whose first part is one of them is refused, as are three-part
 * names).
 */
export function checkCreateView(
  view: ViewDefinition,
  otherDatabases: ReadonlySet<string>,
  release: ServerRelease,
): CheckedView {
  const refuseView: (reason: string) => never = (reason) => refuse('VIEW', view.name, reason);
  const { text, tokens: list } = lexStatement('VIEW', view.name, view.create, { release });
  if (!isWord(list[0], 'CREATE')) refuseView('it is not a CREATE VIEW statement');
  let i = 1;
  let algorithm = 'UNDEFINED';
  let security = 'DEFINER';
  let definer: Account | undefined;
  for (;;) {
    if (
      isWord(list[i], 'ALGORITHM') &&
      isPunct(list[i + 1], '=') &&
      isWord(list[i + 2], 'UNDEFINED', 'MERGE', 'TEMPTABLE')
    ) {
      algorithm = list[i + 2]!.value;
      i += 3;
    } else if (isWord(list[i], 'DEFINER')) {
      const read = readDefiner(text, list, i + 1, refuseView);
      definer = read.account;
      i = read.next;
    } else if (
      isWord(list[i], 'SQL') &&
      isWord(list[i + 1], 'SECURITY') &&
      isWord(list[i + 2], 'DEFINER', 'INVOKER')
    ) {
      security = list[i + 2]!.value;
      i += 3;
    } else break;
  }
  if (!isWord(list[i], 'VIEW')) refuseView('it is not a CREATE VIEW statement');
  const name = list[i + 1];
  if (name?.kind !== 'identifier' || name.value !== view.name) {
    refuseView(
      `it creates ${name ? JSON.stringify(name.value) : 'nothing'}, not the view the manifest lists`,
    );
  }
  i += 2;
  let columns = '';
  if (isPunct(list[i], '(')) {
    const close = matchingParen(list, i);
    if (close < 0) refuseView('its column list is not closed');
    for (let j = i + 1; j < close; j++) {
      if (!(list[j]!.kind === 'identifier' || isPunct(list[j], ',')))
        refuseView('its column list holds more than names');
    }
    columns = ` ${text.slice(list[i]!.start, list[close]!.end)}`;
    i = close + 1;
  }
  if (!isWord(list[i], 'AS')) refuseView('AS SELECT must follow the view name');
  const body = list.slice(i + 1);
  if (!(isWord(body[0], 'SELECT', 'WITH') || isPunct(body[0], '('))) refuseView('its body is not a SELECT');
  for (const token of body) {
    if (isWord(token, 'INTO', 'LOAD_FILE')) refuseView(`${token.value} is not allowed`);
  }
  refuseOtherDatabases(body, otherDatabases, refuseView);
  const bodyText = text.slice(body[0]!.start);
  return {
    definer,
    statement: (keepDefiner) =>
      `CREATE ALGORITHM=${algorithm} ${keepDefiner && definer ? `${definerClause(definer)} ` : ''}SQL SECURITY ${security} VIEW ${quoteIdentifier(view.name)}${columns} AS ${bodyText}`,
  };
}

/** Refuses three-part names and two-part names whose first part is one of `otherDatabases`. */
export function refuseOtherDatabases(
  tokens: readonly Token[],
  otherDatabases: ReadonlySet<string>,
  refuseObject: (reason: string) => never,
): void {
  const lowered = new Set([...otherDatabases].map((database) => database.toLowerCase()));
  for (const { parts } of qualifiedNames(tokens)) {
    if (parts.length > 2 || lowered.has(parts[0]!.toLowerCase())) {
      refuseObject(`it reads ${parts.join('.')}, outside the destination database`);
    }
  }
}

/** Databases a view in `destination` must never read: the system ones and every other one here. */
export function otherDatabasesThan(destination: string, databases: readonly string[]): Set<string> {
  const others = new Set(['mysql', 'information_schema', 'performance_schema', 'sys', '_stepback']);
  for (const database of databases) if (database !== destination) others.add(database);
  others.delete(destination);
  return others;
}
