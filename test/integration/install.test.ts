import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../support/cli.ts';
import { tempDir } from '../support/root.ts';

/**
 * The project runs on Node 22 (its npm dependency `node`), which aws-local-stepfunctions requires;
 * the set-up installs with it, so an older system Node installs without an EBADENGINE warning.
 */

/** PATH without the project's node_modules/.bin, whose `node` is the project's Node 22. */
function systemPath(): string {
  return (process.env.PATH ?? '')
    .split(path.delimiter)
    .filter((dir) => !dir.includes('node_modules'))
    .join(path.delimiter);
}

describe('installing the project', () => {
  it('says Node 22 in package.json, as the Node it pins and every dependency asks for', async () => {
    const pkg = JSON.parse(await fs.readFile(path.join(projectRoot, 'package.json'), 'utf8'));
    expect(pkg.engines.node).toBe('>=22');
    expect(pkg.dependencies.node).toMatch(/^22\./);
    const lock = JSON.parse(await fs.readFile(path.join(projectRoot, 'package-lock.json'), 'utf8'));
    expect(lock.packages['node_modules/aws-local-stepfunctions'].engines.node).toBe('>=22.0.0');
    const readme = await fs.readFile(path.join(projectRoot, 'README.md'), 'utf8');
    expect(readme).not.toMatch(/Node\.js 20 or newer/);
  });

  it('runs npm ci without an engine warning when the system Node is older than 22', async () => {
    const dir = await tempDir('install');
    for (const file of ['package.json', 'package-lock.json']) {
      await fs.copyFile(path.join(projectRoot, file), path.join(dir, file));
    }
    const env = { ...process.env, PATH: systemPath() };
    const script = `
      import { spawnSync } from 'node:child_process';
      const { npmEnvironment } = await import(${JSON.stringify(path.join(projectRoot, 'scripts/setup.js'))});
      const run = (env) => spawnSync('npm', ['ci', '--dry-run', '--no-audit', '--no-fund'], { cwd: ${JSON.stringify(dir)}, env, encoding: 'utf8' });
      const plain = run(process.env);
      const setup = run(npmEnvironment());
      const versionOf = (env) => spawnSync('node', ['--version'], { env, encoding: 'utf8' }).stdout.trim();
      console.log(JSON.stringify({
        system: process.version,
        plain: plain.stdout + plain.stderr,
        setup: setup.stdout + setup.stderr,
        setupStatus: setup.status,
        setupNode: versionOf(npmEnvironment()),
      }));
    `;
    const child = spawnSync('node', ['--input-type=module', '-e', script], {
      cwd: projectRoot,
      env,
      encoding: 'utf8',
      timeout: 110_000,
    });
    expect(child.status, child.stderr).toBe(0);
    const result = JSON.parse(child.stdout.trim().split('\n').pop()!);
    expect(result.setupStatus, result.setup).toBe(0);
    expect(result.setup).not.toContain('EBADENGINE');
    expect(result.setupNode).toMatch(/^v22\./);
    // What the set-up avoids: npm run by an older Node warns about the dependency that needs 22.
    if (Number(result.system.slice(1).split('.')[0]) < 22) expect(result.plain).toContain('EBADENGINE');
  });
});
