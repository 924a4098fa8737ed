import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../support/cli.ts';
import { tempDir } from '../support/root.ts';

const run = promisify(execFile);

describe('npx cdk synth -c env=dev', () => {
  it('synthesizes the dev stack with the cdk CLI, bundling every Lambda with the local esbuild', async () => {
    const out = await tempDir('cdk-out');
    await run('npx', ['cdk', 'synth', '-c', 'env=dev', '--quiet', '-o', out], { cwd: projectRoot });
    const templates = (await fs.readdir(out)).filter((file) => file.endsWith('.template.json'));
    expect(templates).toHaveLength(1);
    const template = JSON.parse(await fs.readFile(path.join(out, templates[0]!), 'utf8'));
    const types = Object.values(template.Resources as Record<string, { Type: string }>).map((r) => r.Type);
    expect(types.filter((type) => type === 'AWS::StepFunctions::StateMachine')).toHaveLength(6);
    expect(types).toContain('AWS::SSM::Document');
    const assets = (await fs.readdir(out)).filter((file) => file.startsWith('asset.'));
    expect(assets.length).toBeGreaterThanOrEqual(12);
  });
});
