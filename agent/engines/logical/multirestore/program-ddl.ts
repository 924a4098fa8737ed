import type { StoredProgramDefinition } from '../../../../core/manifest.ts';
import { ENGINES, lexStatement, refuse, refuseOtherDatabases } from './ddl.ts';
import { type Account, definerClause, readDefiner } from './definers.ts';
import { isName, isPunct, isWord, type ServerRelease, type Token } from './sql-tokens.ts';

/**
 * The checker for a manifest's triggers, routines and events. Their bodies are procedural SQL, too
 * rich to allow statement by statement, so a body is checked by what it must never do (each rule
 * below names what it keeps out), on top of the rules views have: no name in another database of
 * this server, no three-part name. Everything outside the body (CREATE, DEFINER, kind, name, a
 * trigger's timing and table) is checked exactly. The body is lexed under the program's own
 * sql_mode (ANSI_QUOTES, NO_BACKSLASH_ESCAPES change where strings end), as the server will.
 */

/** Words a body must not hold at all, with why. */
const FORBIDDEN_WORDS = new Map<string, string>([
  ...['OUTFILE', 'DUMPFILE', 'INFILE', 'LOAD_FILE', 'LOAD', 'IMPORT', 'DIRECTORY', 'TABLESPACE'].map(
    (word) => [word, 'it reads or writes files of the server'] as const,
  ),
  ...['PREPARE', 'EXECUTE', 'DEALLOCATE'].map(
    (word) => [word, 'dynamic SQL cannot be checked before it runs'] as const,
  ),
  ...['GRANT', 'REVOKE', 'IDENTIFIED'].map((word) => [word, 'it changes accounts or privileges'] as const),
  ...[
    'SHUTDOWN',
    'RESTART',
    'KILL',
    'INSTALL',
    'UNINSTALL',
    'FLUSH',
    'RESET',
    'PURGE',
    'CLONE',
    'BINLOG',
    'SONAME',
    'CONNECTION',
  ].map((word) => [word, 'it acts on the whole server'] as const),
  ...['GLOBAL', 'PERSIST', 'PERSIST_ONLY'].map((word) => [word, 'it changes server settings'] as const),
]);

/** Statements a body must not hold: a word followed (after the listed fillers) by one of these. */
const FORBIDDEN_STATEMENTS: [first: string[], second: string[], reason: string][] = [
  [
    ['CREATE', 'ALTER', 'DROP', 'RENAME'],
    ['USER', 'ROLE', 'DATABASE', 'SCHEMA', 'SERVER', 'LOGFILE', 'RESOURCE', 'INSTANCE', 'UNDO', 'SPATIAL'],
    'it acts outside the database',
  ],
  [['CHANGE'], ['MASTER', 'REPLICATION'], 'it changes replication'],
  [['START', 'STOP'], ['SLAVE', 'REPLICA', 'GROUP_REPLICATION', 'ALL'], 'it changes replication'],
];
const FILLERS = new Set(['OR', 'REPLACE', 'TEMPORARY', 'IF', 'NOT', 'EXISTS', 'DEFAULT']);

export interface ProgramContext {
  release: ServerRelease;
  /** Databases of the destination server a body must not name. */
  otherDatabases: ReadonlySet<string>;
  /** Tables of the snapshot: a trigger's table must be one. */
  tables: ReadonlySet<string>;
}

export interface CheckedProgram {
  program: StoredProgramDefinition;
  definer: Account | undefined;
  /** The statement to run: with its DEFINER when `keepDefiner`, else the loading user defines it. */
  statement(keepDefiner: boolean): string;
}

export function describeProgram(program: StoredProgramDefinition): string {
  return `${program.kind} ${JSON.stringify(program.name)}`;
}

/** Checks one manifest trigger, procedure, function or event; throws a ManifestError naming it. */
export function checkStoredProgram(
  program: StoredProgramDefinition,
  context: ProgramContext,
): CheckedProgram {
  const kind = program.kind.toUpperCase();
  const refuseProgram: (reason: string) => never = (reason) =>
    refuse(
      kind,
      program.name,
      reason,
      'see what routine bodies may hold in docs/cli.md; pass --skip-stored-programs to load the tables and views without the triggers, routines and events',
    );
  const modes = new Set(program.sqlMode.split(','));
  if (modes.has('ORACLE') || modes.has('MSSQL'))
    refuseProgram(`its sql_mode ${program.sqlMode} parses another dialect`);
  const { text, tokens } = lexStatement(kind, program.name, program.create, {
    release: context.release,
    semicolons: true,
    ansiQuotes: modes.has('ANSI_QUOTES'),
    noBackslashEscapes: modes.has('NO_BACKSLASH_ESCAPES'),
  });
  if (!isWord(tokens[0], 'CREATE')) refuseProgram(`it is not a CREATE ${kind} statement`);
  let i = 1;
  let definer: Account | undefined;
  if (isWord(tokens[i], 'DEFINER')) {
    const read = readDefiner(text, tokens, i + 1, refuseProgram);
    definer = read.account;
    i = read.next;
  }
  const from = i;
  if (program.kind === 'function' && isWord(tokens[i], 'AGGREGATE')) i++;
  if (!isWord(tokens[i], kind)) refuseProgram(`it is not a CREATE ${kind} statement`);
  const name = tokens[i + 1];
  if (
    !isName(name) ||
    (name.kind === 'word' ? text.slice(name.start, name.end) : name.value) !== program.name
  )
    refuseProgram(
      `it creates ${name ? JSON.stringify(name.value) : 'nothing'}, not the ${program.kind} the manifest lists`,
    );
  if (isPunct(tokens[i + 2], '.')) refuseProgram('its name must not be qualified');
  i += 2;
  if (program.kind === 'trigger') i = checkTriggerHead(text, tokens, i, program, context, refuseProgram);
  else if (program.kind === 'event' && !(isWord(tokens[i], 'ON') && isWord(tokens[i + 1], 'SCHEDULE')))
    refuseProgram('ON SCHEDULE must follow the event name');
  else if ((program.kind === 'procedure' || program.kind === 'function') && !isPunct(tokens[i], '('))
    refuseProgram('its parameter list must follow its name');
  checkBody(tokens.slice(i), context, refuseProgram);
  const rest = text.slice(tokens[from]!.start);
  return {
    program,
    definer,
    statement: (keepDefiner) => `CREATE ${keepDefiner && definer ? `${definerClause(definer)} ` : ''}${rest}`,
  };
}

/** `BEFORE|AFTER INSERT|UPDATE|DELETE ON <table> FOR EACH ROW [FOLLOWS|PRECEDES <trigger>]`. */
function checkTriggerHead(
  text: string,
  tokens: readonly Token[],
  i: number,
  program: StoredProgramDefinition,
  context: ProgramContext,
  refuseProgram: (reason: string) => never,
): number {
  if (!isWord(tokens[i], 'BEFORE', 'AFTER')) refuseProgram('BEFORE or AFTER must follow the trigger name');
  // MariaDB allows several events in one trigger: INSERT OR UPDATE.
  i++;
  while (isWord(tokens[i], 'INSERT', 'UPDATE', 'DELETE')) i += isWord(tokens[i + 1], 'OR') ? 2 : 1;
  if (!isWord(tokens[i], 'ON')) refuseProgram('it names no INSERT, UPDATE or DELETE ON a table');
  const table = tokens[i + 1];
  const tableName = table && (table.kind === 'word' ? text.slice(table.start, table.end) : table.value);
  if (!isName(table) || tableName !== program.table || isPunct(tokens[i + 2], '.'))
    refuseProgram(
      `it fires on ${tableName ? JSON.stringify(tableName) : 'nothing'}, not the table the manifest lists`,
    );
  if (!context.tables.has(tableName!))
    refuseProgram(`its table ${JSON.stringify(tableName)} is not in the snapshot`);
  i += 2;
  if (!(isWord(tokens[i], 'FOR') && isWord(tokens[i + 1], 'EACH') && isWord(tokens[i + 2], 'ROW')))
    refuseProgram('FOR EACH ROW must follow its table');
  i += 3;
  if (isWord(tokens[i], 'FOLLOWS', 'PRECEDES')) {
    if (!isName(tokens[i + 1]) || isPunct(tokens[i + 2], '.'))
      refuseProgram(`${tokens[i]!.value} names no trigger`);
    i += 2;
  }
  return i;
}

/** The rules a routine, trigger or event body is held to (see the top of this file). */
function checkBody(
  body: readonly Token[],
  context: ProgramContext,
  refuseProgram: (reason: string) => never,
): void {
  // `SET password = …` is a column of an UPDATE or INSERT … SET, or else the SET PASSWORD statement.
  let inDml = false;
  for (const [index, token] of body.entries()) {
    if (isPunct(token, ';') || isWord(token, 'BEGIN', 'THEN', 'ELSE', 'DO', 'LOOP', 'REPEAT')) inDml = false;
    if (isWord(token, 'UPDATE', 'INSERT', 'REPLACE')) inDml = true;
    if (token.kind !== 'word') continue;
    if (token.value === 'SET' && !inDml && isWord(body[index + 1], 'PASSWORD', 'ROLE', 'DEFAULT'))
      refuseProgram(`SET ${body[index + 1]!.value} is not allowed: it changes accounts or privileges`);
    const reason = FORBIDDEN_WORDS.get(token.value);
    if (reason) refuseProgram(`${token.value} is not allowed: ${reason}`);
    for (const [first, second, why] of FORBIDDEN_STATEMENTS) {
      if (!first.includes(token.value)) continue;
      let next = index + 1;
      while (body[next]?.kind === 'word' && FILLERS.has(body[next]!.value)) next++;
      if (isWord(body[next], ...second))
        refuseProgram(`${token.value} ${body[next]!.value} is not allowed: ${why}`);
    }
    if (token.value === 'DEFINER' && isPunct(body[index + 1], '='))
      refuseProgram('a DEFINER inside its body is not allowed: it would create something as another account');
    if (token.value === 'LANGUAGE' && !isWord(body[index + 1], 'SQL'))
      refuseProgram('only LANGUAGE SQL is allowed');
    if (token.value === 'ENGINE') {
      const value = isPunct(body[index + 1], '=') ? body[index + 2] : body[index + 1];
      if (!value || !ENGINES.has(value.value.toUpperCase()))
        refuseProgram(`engine ${value?.value ?? '?'} is not allowed`);
    }
  }
  refuseOtherDatabases(body, context.otherDatabases, refuseProgram);
  // The connection runs one statement per query, so a `;` cannot start another; still, `;` is only
  // where a compound body puts it: after its BEGIN, before its last END.
  const firstSemicolon = body.findIndex((token) => isPunct(token, ';'));
  if (firstSemicolon >= 0) {
    const begin = body.findIndex((token) => isWord(token, 'BEGIN'));
    const last = body.length - 1;
    const endsWithEnd = isWord(body[last], 'END') || (isWord(body[last - 1], 'END') && isName(body[last]));
    if (begin < 0 || begin > firstSemicolon || !endsWithEnd)
      refuseProgram('";" is only allowed inside a BEGIN … END body');
  }
}
