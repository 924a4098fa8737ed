/**
 * A tokenizer for the DDL a snapshot manifest carries: enough of MySQL's lexical rules to know
 * where identifiers, strings, numbers and punctuation are, so a CREATE statement from an untrusted
 * manifest can be checked token by token. Anything it does not know (comments, `;`, stray bytes)
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

export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const char = text[i]!;
    if (/\s/.test(char)) {
      i++;
      continue;
    }
    if (char === '#' || (char === '/' && text[i + 1] === '*') || (char === '-' && text[i + 1] === '-')) {
      throw new SqlTokenError(`comments are not allowed (offset ${i})`);
    }
    if (char === ';') throw new SqlTokenError(`only one statement is allowed (";" at offset ${i})`);
    if (char === '`') {
      const { value, end } = quoted(text, i, '`', false);
      tokens.push({ kind: 'identifier', value, start: i, end });
      i = end;
      continue;
    }
    if (char === "'" || char === '"') {
      const { value, end } = quoted(text, i, char, true);
      tokens.push({ kind: 'string', value, start: i, end });
      i = end;
      continue;
    }
    const number = /^(?:0x[0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)/.exec(
      text.slice(i, i + 400),
    );
    if (number && !wordChar.test(text[i + number[0].length] ?? ' ')) {
      tokens.push({ kind: 'number', value: number[0], start: i, end: i + number[0].length });
      i += number[0].length;
      continue;
    }
    if (wordChar.test(char)) {
      let end = i + 1;
      while (end < text.length && wordChar.test(text[end]!)) end++;
      tokens.push({ kind: 'word', value: text.slice(i, end).toUpperCase(), start: i, end });
      i = end;
      continue;
    }
    if (punctuation.has(char)) {
      tokens.push({ kind: 'punct', value: char, start: i, end: i + 1 });
      i++;
      continue;
    }
    throw new SqlTokenError(`unexpected character ${JSON.stringify(char)} at offset ${i}`);
  }
  return tokens;
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
