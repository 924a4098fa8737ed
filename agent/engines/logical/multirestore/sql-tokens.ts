/**
 * A tokenizer for the DDL a snapshot manifest carries: enough of MySQL's lexical rules to know
 * where identifiers, strings, numbers, punctuation and comments are, so a CREATE statement from an
 * untrusted manifest can be checked token by token. It also writes the text to run: version
 * comments (`/*!80023 INVISIBLE * /`) are resolved for the destination server — the content of one
 * that applies is kept without its markers (so it is checked like the rest), one that does not is
 * dropped — so the server never has to interpret a comment differently from how it was checked.
 * Anything ambiguous (a comment inside a comment, `--` before a control character, NUL, stray bytes)
 * is refused rather than guessed at.
 */

export type TokenKind = 'word' | 'identifier' | 'string' | 'number' | 'punct';

export interface Token {
  kind: TokenKind;
  /** Words upper-cased; identifiers and strings unquoted; punctuation as is. */
  value: string;
  /** Offsets in the statement text: `[start, end)`. */
  start: number;
  end: number;
}

export class SqlTokenError extends Error {
  override name = 'SqlTokenError';
}

const wordChar = /[A-Za-z0-9_$\u0080-\uffff]/;
/** The server's whitespace: ASCII only (a non-ASCII space is part of a name to it). */
const space = /[ \t\n\r\f\v]/;
const punctuation = new Set([
  '(',
  ')',
  ',',
  '.',
  '=',
  '@',
  '+',
  '-',
  '*',
  '/',
  '<',
  '>',
  '!',
  '%',
  '&',
  '|',
  '^',
  '~',
  ':',
  '?',
  '{',
  '}',
]);

function quoted(
  text: string,
  start: number,
  quote: string,
  backslashes: boolean,
): { value: string; end: number } {
  let value = '';
  let i = start + 1;
  for (;;) {
    if (i >= text.length) throw new SqlTokenError(`unterminated ${quote}…${quote} at offset ${start}`);
    const char = text[i]!;
    if (backslashes && char === '\\') {
      if (i + 1 >= text.length) throw new SqlTokenError(`unterminated ${quote}…${quote} at offset ${start}`);
      value += text[i + 1];
      i += 2;
      continue;
    }
    if (char === quote) {
      if (text[i + 1] === quote) {
        value += quote;
        i += 2;
        continue;
      }
      return { value, end: i + 1 };
    }
    value += char;
    i++;
  }
}

/** The destination server, whose version decides which version comments apply. */
export interface ServerRelease {
  flavor: 'mariadb' | 'mysql';
  /** major * 10000 + minor * 100 + patch: `9.7.4` is 90704, as version comments write it. */
  version: number;
}

/** `10.11.6-MariaDB-0+deb12u1` → 101106. */
export function releaseNumber(serverVersion: string): number {
  const [major = 0, minor = 0, patch = 0] = serverVersion.split(/[.-]/).map(Number);
  return major * 10000 + minor * 100 + patch;
}

export interface LexOptions {
  /** Version comments are refused without it. */
  release?: ServerRelease | undefined;
  /** `;` between the statements of a BEGIN … END body (routines, triggers, events). */
  semicolons?: boolean;
  /** The statement's sql_mode has ANSI_QUOTES: `"…"` is an identifier. */
  ansiQuotes?: boolean;
  /** The statement's sql_mode has NO_BACKSLASH_ESCAPES: `\` is an ordinary character in strings. */
  noBackslashEscapes?: boolean;
}

export interface Lexed {
  /** The statement to run: version comments resolved, offsets of `tokens` are into this text. */
  text: string;
  tokens: Token[];
}

/** Where an ordinary comment starting at `i` ends (exclusive), or -1 when none starts there. */
function commentEnd(text: string, i: number): number {
  const char = text[i];
  const next = text[i + 1] ?? '';
  if (char === '#' || (char === '-' && next === '-' && /[ \t\n]/.test(text[i + 2] ?? ''))) {
    const newline = text.indexOf('\n', i);
    return newline < 0 ? text.length : newline;
  }
  if (char === '-' && next === '-' && i + 2 < text.length && /[\0-\x1f\x7f]/.test(text[i + 2]!)) {
    throw new SqlTokenError(`"--" before a control character at offset ${i}`);
  }
  if (char === '/' && next === '*') {
    const close = text.indexOf('*/', i + 2);
    if (close < 0) throw new SqlTokenError(`unterminated comment at offset ${i}`);
    if (text.slice(i + 2, close).includes('/*'))
      throw new SqlTokenError(`a comment inside a comment at offset ${i}`);
    return close + 2;
  }
  return -1;
}

/**
 * `/*!NNNNN …` (5 digits) or `/*M!NNNNNN …` (MariaDB only, 6 digits) at `i`: whether it applies to
 * `release`, and where its content starts. Other digit counts are refused: servers read them
 * differently.
 */
function versionComment(
  text: string,
  i: number,
  release: ServerRelease | undefined,
): { applies: boolean; contentStart: number } | undefined {
  const match = /^\/\*(M?)!(\d*)/.exec(text.slice(i, i + 16));
  if (!match) return undefined;
  if (!release) throw new SqlTokenError(`version comments are not allowed here (offset ${i})`);
  const [whole, mariadbOnly, digits = ''] = match;
  const after = text[i + whole.length] ?? '';
  const wanted = mariadbOnly ? 6 : 5;
  if ((digits.length !== 0 && digits.length !== wanted) || (digits.length > 0 && !space.test(after))) {
    throw new SqlTokenError(`version comment ${JSON.stringify(whole)} is not of a known form (offset ${i})`);
  }
  const flavorApplies = !mariadbOnly || release.flavor === 'mariadb';
  const versionApplies = digits.length === 0 || Number(digits) <= release.version;
  return { applies: flavorApplies && versionApplies, contentStart: i + whole.length };
}

/** Splits `source` into tokens and writes the text to run (see the top of this file). */
export function lex(source: string, options: LexOptions = {}): Lexed {
  const tokens: Token[] = [];
  let text = '';
  let inVersionComment = false;
  let i = 0;
  const copy = (from: number, to: number) => {
    text += source.slice(from, to);
  };
  while (i < source.length) {
    const char = source[i]!;
    if (char === '\0') throw new SqlTokenError(`a NUL byte at offset ${i}`);
    if (space.test(char)) {
      copy(i, i + 1);
      i++;
      continue;
    }
    if (inVersionComment && char === '*' && source[i + 1] === '/') {
      inVersionComment = false;
      text += ' ';
      i += 2;
      continue;
    }
    const version = char === '/' ? versionComment(source, i, options.release) : undefined;
    if (version) {
      if (inVersionComment) throw new SqlTokenError(`a comment inside a comment at offset ${i}`);
      if (version.applies) {
        inVersionComment = true;
        text += ' ';
        i = version.contentStart;
      } else {
        const close = source.indexOf('*/', version.contentStart);
        if (close < 0) throw new SqlTokenError(`unterminated comment at offset ${i}`);
        if (source.slice(version.contentStart, close).includes('/*'))
          throw new SqlTokenError(`a comment inside a comment at offset ${i}`);
        text += ' ';
        i = close + 2;
      }
      continue;
    }
    const comment = commentEnd(source, i);
    if (comment >= 0) {
      if (inVersionComment) throw new SqlTokenError(`a comment inside a comment at offset ${i}`);
      copy(i, comment);
      i = comment;
      continue;
    }
    if (char === ';' && !options.semicolons)
      throw new SqlTokenError(`only one statement is allowed (";" at offset ${i})`);
    const start = text.length;
    const push = (kind: TokenKind, value: string, end: number) => {
      copy(i, end);
      tokens.push({ kind, value, start, end: text.length });
      i = end;
    };
    if (char === '`' || (char === '"' && options.ansiQuotes)) {
      const { value, end } = quoted(source, i, char, false);
      push('identifier', value, end);
      continue;
    }
    if (char === "'" || char === '"') {
      const { value, end } = quoted(source, i, char, !options.noBackslashEscapes);
      push('string', value, end);
      continue;
    }
    const number = /^(?:0x[0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)/.exec(
      source.slice(i, i + 400),
    );
    if (number && !wordChar.test(source[i + number[0].length] ?? ' ')) {
      push('number', number[0], i + number[0].length);
      continue;
    }
    if (wordChar.test(char)) {
      let end = i + 1;
      while (end < source.length && wordChar.test(source[end]!)) end++;
      push('word', source.slice(i, end).toUpperCase(), end);
      continue;
    }
    if (punctuation.has(char) || char === ';') {
      push('punct', char, i + 1);
      continue;
    }
    throw new SqlTokenError(`unexpected character ${JSON.stringify(char)} at offset ${i}`);
  }
  if (inVersionComment) throw new SqlTokenError('a version comment is not closed');
  return { text, tokens };
}

/** True for a word or identifier token (a name, quoted or not). */
export function isName(token: Token | undefined): token is Token {
  return token !== undefined && (token.kind === 'word' || token.kind === 'identifier');
}

export function isWord(token: Token | undefined, ...words: string[]): boolean {
  return token !== undefined && token.kind === 'word' && words.includes(token.value);
}

export function isPunct(token: Token | undefined, value: string): boolean {
  return token !== undefined && token.kind === 'punct' && token.value === value;
}

/** The index of the `)` matching the `(` at `open`, or -1. */
export function matchingParen(tokens: readonly Token[], open: number): number {
  let depth = 0;
  for (let i = open; i < tokens.length; i++) {
    if (isPunct(tokens[i], '(')) depth++;
    else if (isPunct(tokens[i], ')')) {
      depth--;
      if (depth === 0) return i;
    }
  }
  return -1;
}

/** Qualified names in `tokens[from, to)`: `a.b` (two parts) and `a.b.c` (three). */
export function qualifiedNames(
  tokens: readonly Token[],
  from = 0,
  to = tokens.length,
): { parts: string[]; at: number }[] {
  const names: { parts: string[]; at: number }[] = [];
  for (let i = from; i < to; i++) {
    if (!isName(tokens[i]) || !isPunct(tokens[i + 1], '.') || !isName(tokens[i + 2])) continue;
    if (i > from && isPunct(tokens[i - 1], '.')) continue;
    const parts = [tokens[i]!.value, tokens[i + 2]!.value];
    let j = i + 2;
    while (isPunct(tokens[j + 1], '.') && isName(tokens[j + 2])) {
      parts.push(tokens[j + 2]!.value);
      j += 2;
    }
    names.push({ parts, at: i });
  }
  return names;
}
