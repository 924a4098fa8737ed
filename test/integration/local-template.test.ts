import { mkdtemp, readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stateMachineDefinitions, synthesizeTemplate } from '../../local/template.ts';
import { testRoot } from '../support/root.ts';

describe('synthesizeTemplate', () => {
  const tmpdir = process.env.TMPDIR;
  afterEach(() => {
    if (tmpdir === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = tmpdir;
  });

  it('returns the state machines and leaves no cloud assembly behind in the temp directory', async () => {
    const temp = await mkdtemp(path.join(await testRoot(), 'tmpdir-'));
    process.env.TMPDIR = temp;
    const template = synthesizeTemplate();
    expect(Object.keys(stateMachineDefinitions(template)).sort()).toEqual([
      'backup',
      'backupBatch',
      'binlogArchive',
      'drill',
      'reshard',
      'restore',
    ]);
    expect(await readdir(temp)).toEqual([]);
  });
});
