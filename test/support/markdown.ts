import fs from 'node:fs';
import path from 'node:path';
import { projectRoot } from './cli.ts';

/**
 * Reading the project's documentation the way its tests check it: the README and every page under
 * docs/, their fenced blocks, their sections and the shell commands in them.
 */

export interface Doc {
  /** Relative to the project root: `README.md`, `docs/cli.md`. */
  file: string;
  text: string;
}

/** The README and every `docs/*.md`, README first. */
export function readDocs(): Doc[] {
  const pages = fs
    .readdirSync(path.join(projectRoot, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`);
  return ['README.md', ...pages].map((file) => ({
    file,
    text: fs.readFileSync(path.join(projectRoot, file), 'utf8'),
  }));
}

export interface Block {
  lang: string;
  body: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** `<!-- check: NAME -->` on the line before the block. */
  check: string | undefined;
  /** `<!-- check: NAME = examples/x.json -->`: the block shows that file's content. */
  sameAs: string | undefined;
}

export function codeBlocks(markdown: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    // Fences may be indented (a block inside a list item).
    const open = /^(\s*)```(\w*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    const indent = open[1]!.length;
    const body: string[] = [];
    while (++i < lines.length && !/^\s*```\s*$/.test(lines[i]!)) body.push(lines[i]!.slice(indent));
    const marker = /^\s*<!-- check: ([\w-]+)(?: = (\S+))? -->$/.exec(lines[start - 1] ?? '');
    blocks.push({
      lang: open[2] ?? '',
      body: body.join('\n'),
      line: start + 1,
      check: marker?.[1],
      sameAs: marker?.[2],
    });
  }
  return blocks;
}

/** The one block marked `<!-- check: NAME -->` in `markdown`; throws when there is not exactly one. */
export function markedBlock(markdown: string, check: string): Block {
  const found = codeBlocks(markdown).filter((block) => block.check === check);
  if (found.length !== 1) throw new Error(`expected one block marked check: ${check}, found ${found.length}`);
  return found[0]!;
}

export interface Section {
  heading: string;
  text: string;
}

/** Each heading with its text up to the next heading of the same or a higher level (code blocks skipped). */
export function sections(markdown: string): Section[] {
  const lines = markdown.split('\n');
  const headings: { index: number; level: number; text: string }[] = [];
  let code = false;
  lines.forEach((line, index) => {
    if (/^\s*```/.test(line)) code = !code;
    const match = !code && /^(#+) (.*)$/.exec(line);
    if (match) headings.push({ index, level: match[1]!.length, text: match[2]! });
  });
  return headings.map((heading, n) => {
    const next = headings.slice(n + 1).find((h) => h.level <= heading.level);
    return {
      heading: heading.text,
      text: lines.slice(heading.index, next?.index ?? lines.length).join('\n'),
    };
  });
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes. */
export function anchorOf(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

/** Shell words of one line: quotes removed, `'a b'` one word. */
export function words(line: string): string[] {
  const result: string[] = [];
  const pattern = /'([^']*)'|"([^"]*)"|(\S+)/g;
  for (const match of line.matchAll(pattern)) result.push(match[1] ?? match[2] ?? match[3]!);
  return result;
}

export interface ShellCommand {
  text: string;
  argv: string[];
}

/** The commands of a shell block: continuations joined, comments and `VAR=value` prefixes dropped. */
export function shellCommands(body: string): ShellCommand[] {
  const joined = body.replace(/\\\n\s*/g, ' ');
  return joined
    .split('\n')
    .map((line) => line.replace(/(^|\s)#.*$/, '').trim())
    .filter(Boolean)
    .map((text) => {
      const argv = words(text);
      while (argv[0] && /^[A-Z_][A-Z0-9_]*=/.test(argv[0])) argv.shift();
      return { text, argv };
    });
}
