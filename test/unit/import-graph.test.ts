import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../support/cli.ts';

/** The project's own source folders (tests may import anything; nothing imports them). */
const sourceFolders = ['agent', 'core', 'functions', 'cdk', 'local', 'bench', 'bin', 'scripts'];

function sourceFiles(folder: string): string[] {
  const dir = path.join(projectRoot, folder);
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && /\.(ts|js)$/.test(entry.name))
    .map((entry) => path.join(entry.parentPath, entry.name));
}

/** Relative specifiers a file imports: static imports, re-exports and dynamic `import()`, type-only included. */
function importsOf(text: string): string[] {
  const found = new Set<string>();
  const patterns = [
    /\bfrom\s+['"](\.{1,2}\/[^'"]+)['"]/g,
    /\bimport\s*\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g,
    /^\s*import\s+['"](\.{1,2}\/[^'"]+)['"]/gm,
  ];
  for (const pattern of patterns) for (const match of text.matchAll(pattern)) found.add(match[1]!);
  return [...found];
}

/** Every cycle's files, as found by a depth-first walk (one cycle per back edge). */
function findCycles(graph: Map<string, string[]>): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string) => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  return cycles;
}

describe('the import graph', () => {
  it('finds a cycle through several files, and none in a tree', () => {
    const graph = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a']],
      ['d', ['a']],
    ]);
    expect(findCycles(graph)).toEqual([['a', 'b', 'c', 'a']]);
    expect(
      findCycles(
        new Map([
          ['a', ['b', 'c']],
          ['b', ['c']],
          ['c', []],
        ]),
      ),
    ).toEqual([]);
    expect(
      importsOf(
        "import type { X } from './x.ts';\nconst y = await import('../y.ts');\nexport { z } from './z.ts';",
      ),
    ).toEqual(['./x.ts', './z.ts', '../y.ts']);
  });

  it('has no cycle: no source file imports one that imports it back, directly or through others', () => {
    const graph = new Map<string, string[]>();
    const files = sourceFolders.flatMap(sourceFiles);
    expect(files.length).toBeGreaterThan(100);
    for (const file of files) {
      const text = fs.readFileSync(file, 'utf8');
      const targets = importsOf(text).map((specifier) => path.resolve(path.dirname(file), specifier));
      graph.set(
        file,
        targets.filter((target) => fs.existsSync(target)),
      );
    }
    const cycles = findCycles(graph).map((cycle) =>
      cycle.map((file) => path.relative(projectRoot, file)).join(' → '),
    );
    expect(cycles).toEqual([]);
  });
});
