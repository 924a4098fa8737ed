import fs from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../core/log.ts';
import { VSchemaSchema } from '../../core/topology/index.ts';
import type { FunctionSettings } from '../../functions/environment.ts';
import { invokeFunction } from '../../functions/runtime.ts';
import { validateInput } from '../../functions/validate-input.ts';
import { projectRoot } from '../support/cli.ts';
import { anchorOf, codeBlocks, readDocs, sections, shellCommands } from '../support/markdown.ts';

/**
 * What the documentation names exists: every file a documented command reads is in examples/ and
 * passes what reads it (the validate-input Lambda, the vschema schema), and every relative link,
 * anchor and repository path in the README and docs/*.md leads somewhere.
 */

const docs = readDocs();
const exists = (relative: string) => fs.existsSync(path.join(projectRoot, relative));

/** A documented command that reads a file, and what it reads it as. */
interface FileUse {
  where: string;
  file: string;
  reader: 'backup' | 'restore' | 'reshard' | 'drill' | 'binlogArchive' | 'vschema';
  /** Flag values of the command (--storage, --topology). */
  flags: Map<string, string>;
}

function fileUses(): FileUse[] {
  const uses: FileUse[] = [];
  for (const doc of docs) {
    for (const block of codeBlocks(doc.text).filter((b) => b.lang === 'sh')) {
      for (const { argv } of shellCommands(block.body)) {
        const words = argv[0] === 'npx' ? argv.slice(1) : argv;
        const flags = new Map<string, string>();
        for (let i = 1; i < words.length; i++) {
          if (words[i]!.startsWith('--') && words[i + 1] && !words[i + 1]!.startsWith('--'))
            flags.set(words[i]!, words[i + 1]!);
        }
        const where = `${doc.file}:${block.line}`;
        const [program, command, sub] = words;
        if (program === 'stepback-local' && flags.has('--input') && flags.get('--input') !== '-') {
          // The command names the machine in the operator's words: binlog-archive is binlogArchive.
          const reader = command === 'binlog-archive' ? 'binlogArchive' : (command as FileUse['reader']);
          uses.push({ where, file: flags.get('--input')!, reader, flags });
        }
        if (program === 'stepback' && command === 'topo' && sub === 'set-vschema' && flags.has('--file')) {
          uses.push({ where, file: flags.get('--file')!, reader: 'vschema', flags });
        }
      }
    }
  }
  return uses;
}

/** The settings stepback-local gives the Lambdas for a command's --storage and --topology. */
function localSettings(flags: Map<string, string>): FunctionSettings {
  return {
    storageUrl: flags.get('--storage') ?? 'file:///var/tmp/stepback-backups',
    topologyUrl: flags.get('--topology'),
    defaults: {
      defaultsFile: '/etc/mysql/my.cnf',
      retention: { keepCount: 7, keepDays: 7 },
      backup: { engine: 'physical', compression: 'zstd', concurrency: 4, shardsPerExecution: 400 },
    },
    region: undefined,
    hostsAreDefaultsFiles: true,
  };
}

const readJson = (relative: string): unknown =>
  JSON.parse(fs.readFileSync(path.join(projectRoot, relative), 'utf8'));

describe('the files the documentation names', () => {
  it('keeps every file a documented command reads in examples/, and each passes what reads it', async () => {
    const uses = fileUses();
    expect(uses.map((u) => u.reader)).toEqual(
      expect.arrayContaining(['backup', 'restore', 'reshard', 'drill', 'binlogArchive', 'vschema']),
    );
    const problems: string[] = [];
    for (const use of uses) {
      if (!use.file.startsWith('examples/') || !exists(use.file)) {
        problems.push(`${use.where}: ${use.file} is not a file in examples/`);
        continue;
      }
      try {
        const value = readJson(use.file);
        if (use.reader === 'vschema') VSchemaSchema.parse(value);
        else
          await invokeFunction(
            validateInput,
            { machine: use.reader, input: value },
            { settings: localSettings(use.flags), logger: silentLogger, now: () => new Date() },
          );
      } catch (error) {
        problems.push(`${use.where}: ${use.file}: ${(error as Error).message}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('validates every example, and every example is used by the documentation', async () => {
    const examples = fs
      .readdirSync(path.join(projectRoot, 'examples'), { recursive: true, encoding: 'utf8' })
      .filter((name) => name.endsWith('.json'))
      .map((name) => `examples/${name}`);
    expect(examples.length).toBeGreaterThan(0);
    const used = new Set(fileUses().map((u) => u.file));
    // A console input shown in a page stands for the example named in its marker (`= examples/…`).
    const shown = new Map<string, { where: string; body: string; check: string }>();
    for (const doc of docs) {
      for (const block of codeBlocks(doc.text)) {
        if (block.sameAs)
          shown.set(block.sameAs, {
            where: `${doc.file}:${block.line}`,
            body: block.body,
            check: block.check!,
          });
      }
    }
    const problems: string[] = [];
    for (const example of examples) {
      const view = shown.get(example);
      if (!used.has(example) && !view) {
        problems.push(`${example} is neither read by a documented command nor shown in a page`);
        continue;
      }
      if (view) {
        const machine = /^(backup|restore|reshard)-input$/.exec(view.check)?.[1];
        if (!machine) problems.push(`${view.where}: ${view.check} blocks do not stand for an example`);
        if (!isDeepStrictEqual(JSON.parse(view.body), readJson(example)))
          problems.push(`${view.where} differs from ${example}`);
        if (machine) {
          const settings = { ...localSettings(new Map()), hostsAreDefaultsFiles: false };
          await invokeFunction(
            validateInput,
            { machine, input: readJson(example) },
            { settings, logger: silentLogger, now: () => new Date() },
          ).catch((error: Error) => problems.push(`${example}: ${error.message}`));
        }
      }
    }
    for (const [example, view] of shown) {
      if (!exists(example)) problems.push(`${view.where}: ${example} does not exist`);
    }
    expect(problems).toEqual([]);
  });

  it('links only to files and headings that exist', () => {
    const anchors = new Map(
      docs.map((doc) => [doc.file, new Set(sections(doc.text).map((s) => anchorOf(s.heading)))]),
    );
    const problems: string[] = [];
    let links = 0;
    for (const doc of docs) {
      const text = doc.text.replace(/^\s*```[\s\S]*?^\s*```/gm, '');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue;
        links++;
        const [file, anchor] = target!.split('#') as [string, string | undefined];
        const resolved = file
          ? path.posix.normalize(path.posix.join(path.posix.dirname(doc.file), file))
          : doc.file;
        if (!exists(resolved)) {
          problems.push(`${doc.file}: link to ${target}: ${resolved} does not exist`);
          continue;
        }
        if (anchor !== undefined && !anchors.get(resolved)?.has(anchor)) {
          problems.push(`${doc.file}: link to ${target}: ${resolved} has no heading #${anchor}`);
        }
      }
    }
    expect(links).toBeGreaterThan(20);
    expect(problems).toEqual([]);
  });

  it('names only repository paths that exist', () => {
    const top = fs
      .readdirSync(projectRoot)
      .filter((name) => !['node_modules', 'dist', '.git'].includes(name));
    const pattern = new RegExp(
      `^(?:${top.map((name) => name.replace(/\./g, '\\.')).join('|')})(?:/[\\w.-]*)*$`,
    );
    const problems: string[] = [];
    let paths = 0;
    for (const doc of docs) {
      for (const [, span] of doc.text.matchAll(/`([^`\s]+)`/g)) {
        if (!pattern.test(span!)) continue;
        paths++;
        if (!exists(span!)) problems.push(`${doc.file}: \`${span}\` does not exist`);
      }
    }
    expect(paths).toBeGreaterThan(20);
    expect(problems).toEqual([]);
  });
});
