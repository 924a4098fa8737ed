import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/**
 * The temp directory of this test run (set by the global setup, so its teardown can stop every
 * process the tests started and remove everything, even after a test crashed).
 */
export async function testRoot(): Promise<string> {
  const root = process.env.STEPBACK_TEST_ROOT ?? path.join(os.tmpdir(), 'stepback-test');
  await fs.mkdir(root, { recursive: true });
  return root;
}

/** A fresh directory under the run's root. */
export async function tempDir(name: string): Promise<string> {
  return fs.mkdtemp(path.join(await testRoot(), `${name}-`));
}
