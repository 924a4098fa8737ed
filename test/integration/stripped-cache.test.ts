import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import module from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { projectRoot, runStepback } from '../support/cli.ts';

describe('bin/ start-up', () => {
  it('loads the TypeScript sources stripped once, from a cache keyed by their text, without a warning', async () => {
    const run = await runStepback(['--help']);
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
    expect(run.stdout).toContain('  diff ');
    const source = readFileSync(path.join(projectRoot, 'agent', 'cli', 'main.ts'), 'utf8');
    const cached = path.join(
      projectRoot,
      'node_modules',
      '.cache',
      'stepback-stripped',
      `${createHash('sha256').update(source).digest('hex')}.js`,
    );
    // What Node itself would run: the same stripper, types blanked out in place.
    const stripped = module.stripTypeScriptTypes(source, { mode: 'strip' });
    expect(readFileSync(cached, 'utf8')).toBe(stripped);
    expect(stripped.split('\n')).toHaveLength(source.split('\n').length);
  });
});
