import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../support/cli.ts';
import { tempDir } from '../support/root.ts';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the README's `npm run demo` (set-up included) with a small data set, in its own temp directory. */
function npmRunDemo(parent: string, args = ['--', '--rows', '1000']): Promise<Run> {
  return run('npm', ['run', '--silent', 'demo', ...args], parent);
}

/** A command as an operator types it, from the project directory. */
function shell(line: string, parent: string): Promise<Run> {
  return run('sh', ['-c', line], parent);
}

function run(command: string, args: string[], parent: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: projectRoot,
      env: { ...process.env, TMPDIR: parent },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (data: Buffer) => {
      stdout += data.toString();
    });
    child.stderr.on('data', (data: Buffer) => {
      stderr += data.toString();
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('npm run demo', () => {
  it('runs the state machines on private instances, verifies them and leaves nothing behind', async () => {
    const parent = await tempDir('demo');
    const { code, stdout: out, stderr: err } = await npmRunDemo(parent);
    const stdout = { text: out };
    const stderr = { text: err };

    expect(code, stderr.text).toBe(0);
    const summary = stdout.text.split('\n');
    for (const machine of ['Backup', 'Drill', 'Point in time', 'Restore', 'Reshard']) {
      expect(summary.some((line) => line.startsWith(machine) && line.includes('SUCCEEDED'))).toBe(true);
    }
    expect(stdout.text).not.toContain('FAIL');
    expect(stdout.text).toMatch(/PASS binary logs replayed: 1 transaction\(s\) after the backup/);
    expect(stdout.text).toMatch(/PASS deleted row brought back: commerce.corder id 1/);
    expect(stdout.text).toMatch(/PASS diff source\/restored: 1,001 rows match, 0 differ/);
    expect(stdout.text).toMatch(/PASS drill: \S+ passed: restored, started, CHECK TABLE, checksums equal/);
    // The Reshard ran with a writer, cut over, and each copy matched at the position cut over at.
    expect(stdout.text).toMatch(
      /PASS every acknowledged write in one range: [\d,]+ transactions written during the reshard; ([\d,]+) rows in the copies of \1 at \d+-\d+-\d+/,
    );
    expect(stdout.text).toMatch(
      /PASS freeze window: writes frozen for \d+\.\d\ds; the writer was stopped by it/,
    );
    expect(stdout.text).toMatch(/PASS serving shards switched: serving -80, 80-/);
    expect(stdout.text).toMatch(/every verification passed in /);
    for (const state of [
      'AgentBackup[0]',
      'AgentDrill[0]',
      'AgentRestore',
      'AgentSnapshot',
      'AgentDiffAtFreeze[1]',
      'AgentFreezeSource',
      'SwitchTopology',
      'RebuildVSchema',
    ]) {
      expect(stderr.text).toContain(`▶ ${state}`);
      expect(stderr.text).toMatch(new RegExp(`✓ ${state.replace(/[[\]]/g, '\\$&')} \\d+\\.\\ds`));
    }
    expect(stdout.text).toMatch(
      /Removed the instances, the topology and the backups \(they were in \S+stepback-demo-\w+\)/,
    );
    expect(stdout.text).toContain('run: npm run demo -- --keep');
    // Node keeps its compile cache in TMPDIR; the demo's own directory must be gone.
    expect(await demoDirectories(parent)).toEqual([]);
  });

  it('says how to write --keep when npm took it for itself, before starting anything', async () => {
    const parent = await tempDir('demo-npm-keep');
    const run = await npmRunDemo(parent, ['--keep']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('npm took --keep as its own setting (npm_config_keep)');
    expect(run.stderr).toContain("what to do: put the demo's flags after --: npm run demo -- --keep");
    expect(await demoDirectories(parent)).toEqual([]);
  });

  it('refuses a bad --storage before starting anything', async () => {
    const parent = await tempDir('demo-bad-storage');
    const run = await shell('node bin/stepback-local.js demo --storage s3:/bucket/demo', parent);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--storage: storage URL s3:/bucket/demo names no bucket');
    expect(run.stdout).toBe('');
    expect(await demoDirectories(parent)).toEqual([]);
  });

  it('with --keep, keeps the instances, backups and topology, and the commands it suggests work on them', async () => {
    const parent = await tempDir('demo-keep');
    const demo = await shell('node bin/stepback-local.js demo --keep --rows 1000', parent);
    const [root] = await demoDirectories(parent);
    try {
      expect(demo.code, demo.stderr).toBe(0);
      expect(demo.stdout).toContain(`Kept everything in ${parent}/${root}:`);
      expect(demo.stdout).toContain(`backups   file://${parent}/${root}/backups`);
      expect(demo.stdout).toContain(`topology  file://${parent}/${root}/topology`);
      const tryNext = section(demo.stdout, 'Try next:');
      expect(tryNext).toHaveLength(3);

      const [list, snapshots, restore] = await Promise.all(
        tryNext.slice(0, 2).map((line) => shell(line, parent)),
      ).then(async (runs) => [...runs, await shell(tryNext[2]!, parent)]);
      expect(list!.code, list!.stderr).toBe(0);
      expect(list!.stdout).toMatch(/1 backup\(s\) in commerce\/0: 1 complete, 0 incomplete/);
      expect(snapshots!.code, snapshots!.stderr).toBe(0);
      expect(snapshots!.stdout).toContain('2 snapshot(s) of commerce/0');
      expect(restore!.code, restore!.stderr).toBe(0);
      expect(restore!.stderr).toContain('✓ AgentRestore');
    } finally {
      for (const line of section(demo.stdout, 'Stop the instances and remove everything with:')) {
        await shell(line, parent);
      }
    }
    expect(await demoDirectories(parent)).toEqual([]);
  }, 300_000);
});

async function demoDirectories(parent: string): Promise<string[]> {
  return (await fs.readdir(parent)).filter((entry) => entry.startsWith('stepback-demo-'));
}

/** The indented command lines under a heading of the demo's last words. */
function section(text: string, heading: string): string[] {
  const lines = text.split('\n');
  const start = lines.indexOf(heading);
  if (start < 0) return [];
  const body: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (!line.startsWith('  ')) break;
    body.push(line.trim());
  }
  return body;
}
