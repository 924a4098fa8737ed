import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../support/cli.ts';
import { tempDir } from '../support/root.ts';

/** Runs the README's `npm run demo` (set-up included) with a small data set, in its own temp directory. */
function npmRunDemo(parent: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', '--silent', 'demo', '--', '--rows', '1000'], {
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
  it('runs the three state machines on private instances, verifies them and leaves nothing behind', async () => {
    const parent = await tempDir('demo');
    const { code, stdout: out, stderr: err } = await npmRunDemo(parent);
    const stdout = { text: out };
    const stderr = { text: err };

    expect(code, stderr.text).toBe(0);
    const summary = stdout.text.split('\n');
    for (const machine of ['Backup', 'Restore', 'Reshard']) {
      expect(summary.some((line) => line.startsWith(machine) && line.includes('SUCCEEDED'))).toBe(true);
    }
    expect(stdout.text).not.toContain('FAIL');
    expect(stdout.text).toMatch(/PASS diff source\/restored: 1,001 rows match, 0 differ/);
    expect(stdout.text).toMatch(/PASS every row in one range: 1,001 rows copied of 1,001/);
    expect(stdout.text).toMatch(/every verification passed in /);
    for (const state of [
      'AgentBackup[0]',
      'AgentRestore',
      'AgentSnapshot',
      'AgentDiff[1]',
      'RebuildVSchema',
    ]) {
      expect(stderr.text).toContain(`▶ ${state}`);
      expect(stderr.text).toMatch(new RegExp(`✓ ${state.replace(/[[\]]/g, '\\$&')} \\d+\\.\\ds`));
    }
    // Node keeps its compile cache in TMPDIR; the demo's own directory must be gone.
    expect((await fs.readdir(parent)).filter((entry) => entry.startsWith('stepback-demo-'))).toEqual([]);
  });
});
