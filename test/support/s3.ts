import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { S3BackupStorage } from '../../core/storage/s3.ts';
import { tempDir } from './root.ts';

const require = createRequire(import.meta.url);

/** s3rver's built-in credentials; requests are SigV4-signed and checked with them. */
export const s3rverCredentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface TestS3 {
  endpoint: string;
  bucket: string;
  /** Environment for child processes (the CLI) to reach this server. */
  env: Record<string, string>;
  /** `s3://bucket/prefix?endpoint=…&pathStyle=true` */
  url(prefix: string): string;
  storage(prefix: string, options?: { minPartSize?: number }): S3BackupStorage;
  stop(): Promise<void>;
}

/**
 * An S3 protocol server (s3rver) on a free port with one bucket. It runs in its own Node with
 * --openssl-legacy-provider, without which its ListObjectsV2 continuation tokens fail.
 */
export async function startS3(bucket = 'stepback'): Promise<TestS3> {
  const dir = await tempDir('s3rver');
  const bin = path.join(path.dirname(require.resolve('s3rver/package.json')), 'bin', 's3rver.js');
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '--openssl-legacy-provider',
      bin,
      '-d',
      path.join(dir, 'data'),
      '-a',
      '127.0.0.1',
      '-p',
      '0',
      '--configure-bucket',
      bucket,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  await fs.writeFile(path.join(dir, 's3rver.pid'), String(child.pid));
  const port = await new Promise<number>((resolve, reject) => {
    let seen = '';
    const onData = (data: Buffer) => {
      seen += data.toString();
      const match = /listening on [\d.]+:(\d+)/.exec(seen);
      if (match) {
        child.stdout?.off('data', onData);
        child.stdout?.resume();
        resolve(Number(match[1]));
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (data: Buffer) => {
      seen += data.toString();
    });
    child.once('exit', (code) => reject(new Error(`s3rver exited with ${code}: ${seen}`)));
  });
  child.stderr?.resume();
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    bucket,
    env: {
      AWS_ACCESS_KEY_ID: s3rverCredentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3rverCredentials.secretAccessKey,
      AWS_REGION: 'us-east-1',
      AWS_ENDPOINT_URL_S3: endpoint,
      STEPBACK_S3_PATH_STYLE: '1',
    },
    url: (prefix) => `s3://${bucket}/${prefix}?endpoint=${encodeURIComponent(endpoint)}&pathStyle=true`,
    storage: (prefix, options = {}) =>
      new S3BackupStorage({
        bucket,
        prefix,
        endpoint,
        forcePathStyle: true,
        region: 'us-east-1',
        credentials: s3rverCredentials,
        ...options,
      }),
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
