import fs from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { App, Stack } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUNCTION_NAMES, StepbackFunctions } from '../../cdk/functions.ts';
import { tempDir } from '../support/root.ts';

/**
 * The one test that bundles: every Lambda built by NodejsFunction with the local esbuild (no
 * Docker), then bundles loaded from the cloud assembly alone and invoked, as Lambda would.
 */

let outdir: string;
const bundles = new Map<string, string>();
const savedEnv = { ...process.env };

beforeAll(async () => {
  outdir = await tempDir('cdk-bundled');
  const app = new App({ outdir });
  const stack = new Stack(app, 'Bundled', { env: { account: '111111111111', region: 'eu-west-1' } });
  new StepbackFunctions(stack, 'Functions', { environment: {}, logRetention: logs.RetentionDays.ONE_DAY });
  const template = app.synth().getStackByName('Bundled').template as {
    Resources: Record<string, { Type: string; Properties: any }>;
  };
  for (const resource of Object.values(template.Resources)) {
    if (resource.Type !== 'AWS::Lambda::Function') continue;
    const hash = String(resource.Properties.Code.S3Key).replace(/\.zip$/, '');
    bundles.set(
      resource.Properties.Environment.Variables.STEPBACK_FUNCTION,
      path.join(outdir, `asset.${hash}`),
    );
  }
}, 240_000);

afterAll(() => {
  process.env = savedEnv;
});

/** Loads a bundled handler from outside the project, so nothing resolves from node_modules. */
async function bundledHandler(name: string): Promise<(event: unknown) => Promise<any>> {
  const dir = bundles.get(name)!;
  const copy = await tempDir(`lambda-${name}`);
  await fs.cp(dir, copy, { recursive: true });
  const module = (await import(pathToFileURL(path.join(copy, 'index.mjs')).href)) as {
    handler: (event: unknown) => Promise<any>;
  };
  return module.handler;
}

describe('Lambda bundling', () => {
  it('builds one self-contained ESM bundle per function with the local esbuild', async () => {
    expect([...bundles.keys()].sort()).toEqual([...FUNCTION_NAMES].sort());
    for (const dir of bundles.values()) {
      const files = await fs.readdir(dir);
      expect(files.sort()).toEqual(['index.mjs', 'index.mjs.map']);
    }
  });

  it('runs the bundled handlers against storage and the topology store', async () => {
    const storage = await tempDir('bundled-storage');
    const topology = await tempDir('bundled-topology');
    Object.assign(process.env, {
      STEPBACK_STORAGE_URL: `file://${storage}`,
      STEPBACK_TOPOLOGY_URL: `file://${topology}`,
      STEPBACK_DEFAULTS: JSON.stringify({
        defaultsFile: '/etc/mysql/my.cnf',
        retention: { keepCount: 2, keepDays: 3 },
        backup: { engine: 'physical', compression: 'zstd', concurrency: 4 },
      }),
    });
    const validate = await bundledHandler('validate-input');
    await expect(
      validate({ machine: 'backup', input: { targets: [{ keyspace: 'ks', shard: '0', host: 'i-1' }] } }),
    ).resolves.toMatchObject({
      targets: [{ keyspace: 'ks', shard: '0', defaultsFile: '/etc/mysql/my.cnf' }],
    });
    await expect(validate({ machine: 'backup', input: {} })).rejects.toMatchObject({ name: 'USAGE' });

    const list = await bundledHandler('list-backups');
    await expect(list({ dir: 'ks/0' })).resolves.toMatchObject({ dir: 'ks/0', total: 0, newest: null });

    await fs.mkdir(path.join(topology, 'cells', 'zone1'), { recursive: true });
    await fs.writeFile(path.join(topology, 'cells', 'zone1', 'CellInfo.json'), '{"name":"zone1"}');
    const rebuild = await bundledHandler('rebuild-vschema');
    await expect(rebuild({ cells: null })).resolves.toEqual({
      keyspaces: [],
      cells: [{ cell: 'zone1', ok: true }],
    });
  });
});
