import fs from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { runDemo } from '../../local/demo/demo.ts';
import { tempDir } from '../support/root.ts';

function collector() {
  const out = {
    text: '',
    isTTY: false,
    write: (t: string) => {
      out.text += t;
    },
  };
  return out;
}

describe('npm run demo', () => {
  it('runs the three state machines on private instances, verifies them and leaves nothing behind', async () => {
    const parent = await tempDir('demo');
    const stdout = collector();
    const stderr = collector();
    const code = await runDemo({ rows: 1000, keep: false, parent, stdout, stderr, env: process.env });

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
    expect(await fs.readdir(parent)).toEqual([]);
  });
});
