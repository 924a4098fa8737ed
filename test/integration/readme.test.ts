import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../agent/cli/main.ts';
import { selectEnvironment } from '../../cdk/config.ts';
import { parseAgentRequest } from '../../core/agent-request.ts';
import { parseBinlogManifest } from '../../core/binlogs/manifest.ts';
import { parseManifest } from '../../core/manifest.ts';
import { FileBackupStorage } from '../../core/storage/file.ts';
import { machineInputs } from '../../functions/inputs.ts';
import { runLocalCli } from '../../local/main.ts';
import { projectRoot } from '../support/cli.ts';
import { physicalManifest } from '../support/manifests.ts';
import { type Block, codeBlocks, readDocs, sections, shellCommands } from '../support/markdown.ts';
import { tempDir } from '../support/root.ts';

/**
 * The documentation cannot rot: every command in the shell blocks of the README and of docs/*.md is
 * run by CI or a test, or checked against the real command's flags; every JSON block passes the
 * schema it shows; every flag of every `stepback` and `stepback-local` command is documented in its
 * section of docs/cli.md.
 */

const run = promisify(execFile);
const read = (file: string) => fs.readFileSync(path.join(projectRoot, file), 'utf8');
const docs = readDocs();
const cliReference = read('docs/cli.md');
const ciScript = read('.ci/run');
const packageJson = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
const cdkJson = JSON.parse(read('cdk.json')) as { context: { environments: unknown } };

interface FlagSpec {
  takesValue: boolean;
}

interface CommandHelp {
  flags: Map<string, FlagSpec>;
  subcommands: string[];
}

/** Flags (`--x <v>` takes a value) and subcommands from a commander help text. */
function parseHelp(text: string): CommandHelp {
  const flags = new Map<string, FlagSpec>();
  const subcommands: string[] = [];
  let section = '';
  for (const line of text.split('\n')) {
    if (/^\S/.test(line)) section = line.replace(/:.*$/, '');
    const spec = /^ {2}((?:-\w, )?--[a-z0-9-]+)( <[^>]+>| \[[^\]]+\])?/.exec(line);
    if (section === 'Options' && spec) {
      for (const flag of spec[1]!.split(', ')) flags.set(flag, { takesValue: Boolean(spec[2]) });
    }
    const command = /^ {2}([a-z][a-z0-9-]*)[ [<]/.exec(line);
    if (section === 'Commands' && command && command[1] !== 'help') subcommands.push(command[1]!);
  }
  return { flags, subcommands };
}

type Cli = (argv: string[]) => Promise<string>;

function capture(): { text: string; write: (t: string) => boolean } {
  const out = {
    text: '',
    write: (t: string) => {
      out.text += t;
      return true;
    },
  };
  return out;
}

const stepbackHelp: Cli = async (argv) => {
  const stdout = capture();
  await runCli([...argv, '--help'], { stdout: stdout as never, stderr: capture() as never, env: {} });
  return stdout.text;
};

const localHelp: Cli = async (argv) => {
  const stdout = capture();
  await runLocalCli([...argv, '--help'], {
    stdout: stdout as never,
    stderr: capture() as never,
    env: {},
    cwd: projectRoot,
  });
  return stdout.text;
};

/** Every command path of a CLI with its help, walking the subcommands. */
async function commandTree(help: Cli, prefix: string[] = []): Promise<Map<string, CommandHelp>> {
  const tree = new Map<string, CommandHelp>();
  const parsed = parseHelp(await help(prefix));
  tree.set(prefix.join(' '), parsed);
  for (const name of parsed.subcommands) {
    for (const [key, value] of await commandTree(help, [...prefix, name])) tree.set(key, value);
  }
  return tree;
}

let stepbackCommands: Map<string, CommandHelp>;
let localCommands: Map<string, CommandHelp>;

beforeAll(async () => {
  [stepbackCommands, localCommands] = await Promise.all([commandTree(stepbackHelp), commandTree(localHelp)]);
});

/** Problems with one `stepback …` or `stepback-local …` command line. */
function checkCli(program: string, argv: string[], tree: Map<string, CommandHelp>): string[] {
  const path: string[] = [];
  let i = 0;
  while (i < argv.length && !argv[i]!.startsWith('-')) path.push(argv[i++]!);
  const command = tree.get(path.join(' '));
  if (!command || command.subcommands.length > 0) return [`${program} ${path.join(' ')} is not a command`];
  const globals = tree.get('')!.flags;
  const problems: string[] = [];
  for (; i < argv.length; i++) {
    const token = argv[i]!;
    if (!token.startsWith('-')) continue;
    const flag = token.split('=')[0]!;
    const spec = command.flags.get(flag) ?? globals.get(flag);
    if (!spec) {
      problems.push(`${program} ${path.join(' ')} has no flag ${flag}`);
      continue;
    }
    if (spec.takesValue && !token.includes('=')) i++;
  }
  return problems;
}

/** Scripts a test runs, by the test file that runs the script's file. */
const scriptsRunByTests: Record<string, string> = {
  'bundle-agent': 'test/integration/agent-bundle.test.ts',
  demo: 'test/integration/demo.test.ts',
};

/** Commands a test runs word for word, by the test file. */
const commandsRunByTests: Record<string, string> = {
  'npx cdk synth -c env=dev': 'test/integration/cdk-synth.test.ts',
};

async function checkCommand(argv: string[], text: string): Promise<string[]> {
  const [program, ...rest] = argv[0] === 'npx' ? argv.slice(1) : argv;
  const inCi = ciScript.split('\n').some((line) => line.trim().startsWith(text.replace(/\s+/g, ' ')));
  switch (program) {
    case 'export':
      return [];
    case 'stepback':
      return checkCli('stepback', rest, stepbackCommands);
    case 'stepback-local':
      return checkCli('stepback-local', rest, localCommands);
    case 'npm': {
      if (rest[0] === 'test') return inCi ? [] : [`${text}: not run by .ci/run`];
      if (rest[0] !== 'run') return [`${text}: an npm command the README test does not know`];
      const script = rest[1]!;
      const command = packageJson.scripts[script];
      if (!command) return [`${text}: package.json has no script ${script}`];
      const args = rest.slice(2);
      if (args[0] === '--') args.shift();
      const problems: string[] = [];
      const local = /bin\/stepback-local\.js (\S+)$/.exec(command);
      if (local) problems.push(...checkCli('stepback-local', [local[1]!, ...args], localCommands));
      const base = `npm run ${script}`;
      const runByCi = ciScript.split('\n').some((line) => line.trim() === base);
      const testFile = scriptsRunByTests[script];
      const scriptFile = /scripts\/[\w-]+\.js/.exec(command)?.[0];
      const testText = testFile ? read(testFile) : '';
      const runByTest =
        testText.includes(`'npm', ['run', '--silent', '${script}'`) ||
        (scriptFile !== undefined && script !== 'demo' && testText.includes(path.basename(scriptFile)));
      if (!runByCi && !runByTest) problems.push(`${base} is run neither by .ci/run nor by a test`);
      return problems;
    }
    case 'cdk': {
      const problems: string[] = [];
      const env = /(?:^|\s)-c env=(\S+)/.exec(text)?.[1];
      try {
        selectEnvironment(cdkJson.context.environments, env);
      } catch (error) {
        problems.push(`${text}: ${(error as Error).message}`);
      }
      const sub = rest[0]!;
      if (sub === 'synth') {
        const testFile = commandsRunByTests[text.replace(/\s+/g, ' ').replace(/ --quiet$/, '')];
        const runByTest = testFile && read(testFile).includes("'cdk', 'synth', '-c', 'env=dev'");
        if (!inCi && !runByTest) problems.push(`${text}: run neither by .ci/run nor by a test`);
        return problems;
      }
      // Commands that need an AWS account are checked against the CLI's own help.
      const { stdout } = await run(path.join(projectRoot, 'node_modules', '.bin', 'cdk'), [sub, '--help'], {
        cwd: projectRoot,
      });
      const known = new Set([...stdout.matchAll(/(?:^|\s|,\s)(--?[a-z][a-z-]*)/gm)].map((m) => m[1]!));
      if (!/^cdk \w+/m.test(stdout) || !stdout.includes(`cdk ${sub}`))
        problems.push(`cdk has no command ${sub}`);
      for (const token of rest.slice(1)) {
        if (token.startsWith('-') && !known.has(token.split('=')[0]!))
          problems.push(`cdk ${sub} has no flag ${token}`);
      }
      return problems;
    }
    default:
      return [
        `${text}: ${program} is neither run nor checked by any test; keep shell blocks to stepback, npm and cdk`,
      ];
  }
}

/** Every fenced block of every page, with the page it is on. */
const blocks: (Block & { file: string })[] = docs.flatMap((doc) =>
  codeBlocks(doc.text).map((block) => ({ ...block, file: doc.file })),
);

/** The key sets of the entries `backups list --json` prints for a complete and an incomplete backup. */
async function backupListKeys(): Promise<{
  complete: string[];
  incomplete: string[];
  /** What the real command says of an incomplete backup `name` in `dir`. */
  problem: (dir: string, name: string) => string;
}> {
  const root = await tempDir('docs-backups-list');
  const storage = new FileBackupStorage(root);
  const complete = await storage.startBackup('commerce/-80', '2026-11-24.101500.db1');
  const stored = await complete.writeFile('0000', () => Readable.from([Buffer.from('data')]));
  await complete.endBackup(
    physicalManifest({
      name: '2026-11-24.101500.db1',
      files: [
        {
          name: '0000',
          base: 'data',
          path: 'ibdata1',
          rawSize: 4,
          storedSize: stored.size,
          sha256: stored.sha256,
        },
      ],
    }),
  );
  const incomplete = await storage.startBackup('commerce/-80', '2026-11-25.101500.db1');
  await incomplete.writeFile('0000', () => Readable.from([Buffer.from('partial')]));
  const stdout = capture();
  const code = await runCli(
    ['backups', 'list', '--storage', `file://${root}`, '--dir', 'commerce/-80', '--json'],
    { stdout: stdout as never, stderr: capture() as never, env: {} },
  );
  expect(code).toBe(0);
  const lines = stdout.text.trimEnd().split('\n');
  expect(lines, 'backups list --json prints one line').toHaveLength(1);
  const printed = JSON.parse(lines[0]!) as Record<string, unknown>[];
  expect(Array.isArray(printed)).toBe(true);
  expect(printed.map((entry) => entry.complete)).toEqual([true, false]);
  return {
    complete: Object.keys(printed[0]!).sort(),
    incomplete: Object.keys(printed[1]!).sort(),
    problem: (dir, name) =>
      String(printed[1]!.problem).replace('commerce/-80/2026-11-25.101500.db1', `${dir}/${name}`),
  };
}

describe('the documentation', () => {
  it('has only commands that CI runs or that match the real commands and their flags', async () => {
    const commands = blocks
      .filter((block) => block.lang === 'sh')
      .flatMap((block) =>
        shellCommands(block.body).map((command) => ({ ...command, where: `${block.file}:${block.line}` })),
      );
    expect(commands.length).toBeGreaterThan(15);
    const problems: string[] = [];
    for (const command of commands) {
      for (const problem of await checkCommand(command.argv, command.text)) {
        problems.push(`${command.where}: ${problem}`);
      }
    }
    expect(problems).toEqual([]);
    const readmeCommands = commands.filter((c) => c.where.startsWith('README.md:')).map((c) => c.text);
    expect(readmeCommands).toEqual(expect.arrayContaining(['npm run demo', 'npm test']));
  });

  it('shows JSON that passes the schema each block stands for', async () => {
    const listKeys = await backupListKeys();
    const validators: Record<string, (value: unknown, text: string) => void> = {
      'backup-input': (value) => machineInputs.backup.parse(value),
      'restore-input': (value) => machineInputs.restore.parse(value),
      'drill-input': (value) => machineInputs.drill.parse(value),
      'reshard-input': (value) => machineInputs.reshard.parse(value),
      'binlog-archive-input': (value) => machineInputs.binlogArchive.parse(value),
      'cdk-environment': (value) => selectEnvironment({ readme: value }, 'readme'),
      'agent-request': (value) => parseAgentRequest(value),
      manifest: (_value, text) => parseManifest(text),
      'binlog-manifest': (value, text) =>
        parseBinlogManifest(text, String((value as { entry: unknown }).entry)),
      'diff-result': (value) => {
        const result = value as { tables: Record<string, number>[]; total: Record<string, number> };
        const kinds = ['matching', 'mismatched', 'extraLeft', 'extraRight'];
        for (const counts of [...result.tables, result.total]) {
          expect(kinds.reduce((sum, kind) => sum + counts[kind]!, 0)).toBe(counts.processed);
        }
      },
      // What `backups list --json` prints: one array, entries with the fields the real command prints.
      'backups-list': (value) => {
        expect(Array.isArray(value), 'an array').toBe(true);
        for (const entry of value as Record<string, unknown>[]) {
          const keys = Object.keys(entry).sort();
          expect(keys).toEqual(entry.complete ? listKeys.complete : listKeys.incomplete);
          if (!entry.complete)
            expect(entry.problem).toBe(listKeys.problem(String(entry.dir), String(entry.name)));
        }
      },
    };
    const json = blocks.filter((block) => block.lang === 'json');
    expect(json.length).toBeGreaterThanOrEqual(8);
    for (const block of json) {
      const where = `${block.file}:${block.line}`;
      expect(block.check, `${where}: a JSON block needs <!-- check: NAME --> before it`).toBeDefined();
      const validate = validators[block.check!];
      expect(validate, `${where}: unknown check ${block.check}`).toBeDefined();
      let value: unknown;
      expect(() => {
        value = JSON.parse(block.body);
      }, where).not.toThrow();
      try {
        validate!(value, block.body);
      } catch (error) {
        throw new Error(`${where} (${block.check}): ${(error as Error).message}`);
      }
    }
    const checks = new Set(json.map((block) => block.check));
    for (const name of Object.keys(validators)) expect(checks, name).toContain(name);
  });

  it('documents every command and every flag in its section of docs/cli.md', () => {
    const all = sections(cliReference);
    const shared = all
      .filter((s) => ['Global flags', 'Storage flags', 'Instance flags'].includes(s.heading))
      .map((s) => s.text)
      .join('\n');
    expect(shared).not.toBe('');
    /** `stepback backups list|validate|prune` in a heading covers each of the three. */
    const covers = (heading: string, command: string) =>
      [...heading.replace(/`/g, '').matchAll(/stepback ([a-z-]+(?: [a-z-]+)*(?:\|[a-z-]+)*)/g)].some(
        (match) => {
          const parts = match[1]!.split(' ');
          const last = parts.pop()!;
          return last.split('|').some((alternative) => [...parts, alternative].join(' ') === command);
        },
      );
    const documented = (text: string, flag: string) =>
      new RegExp(`(?<![\\w-])${flag.replace(/-/g, '\\-')}(?![\\w-])`).test(text);
    const problems: string[] = [];
    for (const [command, help] of stepbackCommands) {
      if (command === '' || help.subcommands.length > 0) continue;
      const own = all.filter((s) => covers(s.heading, command));
      if (own.length === 0) {
        problems.push(`no section for stepback ${command}`);
        continue;
      }
      const text = own.map((s) => s.text).join('\n') + shared;
      for (const flag of help.flags.keys()) {
        if (flag.startsWith('--') && flag !== '--help' && !documented(text, flag)) {
          problems.push(`stepback ${command} ${flag} is not documented in its section`);
        }
      }
    }
    const local = all.find((s) => s.heading === 'Running the state machines locally')?.text ?? '';
    expect(local, 'docs/cli.md has a section "Running the state machines locally"').not.toBe('');
    for (const [command, help] of localCommands) {
      if (command === '') continue;
      if (!local.includes(command)) problems.push(`stepback-local ${command} is not documented`);
      for (const flag of help.flags.keys()) {
        if (flag.startsWith('--') && flag !== '--help' && !documented(local, flag)) {
          problems.push(`stepback-local ${command} ${flag} is not documented`);
        }
      }
    }
    expect(problems).toEqual([]);
  });
});
