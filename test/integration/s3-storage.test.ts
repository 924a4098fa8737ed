import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../core/errors.ts';
import { openStorage } from '../../core/storage/index.ts';
import { S3BackupStorage } from '../../core/storage/s3.ts';
import { freePort } from '../support/ports.ts';
import { s3rverCredentials, startS3, type TestS3 } from '../support/s3.ts';

const MiB = 1024 * 1024;
let s3: TestS3;

beforeAll(async () => {
  s3 = await startS3();
});

afterAll(async () => {
  await s3?.stop();
});

/** Records the input of every command the client sends; optionally fails chosen ones first. */
function instrument(
  client: S3Client,
  failOnce?: (command: string, input: Record<string, unknown>) => boolean,
) {
  const seen: { command: string; input: Record<string, unknown> }[] = [];
  let failed = false;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const command = String(context.commandName);
      const input = args.input as Record<string, unknown>;
      seen.push({ command, input });
      if (!failed && failOnce?.(command, input)) {
        failed = true;
        throw Object.assign(new Error('socket hang up'), { name: 'TimeoutError' });
      }
      return next(args);
    },
    { step: 'initialize', name: 'instrument' },
  );
  return seen;
}

describe('S3 backup storage', () => {
  it('retries a whole file once after a failed part, re-reading and re-hashing it', async () => {
    const storage = s3.storage('retry', { minPartSize: 5 * MiB });
    const seen = instrument(storage.client, (command) => command === 'UploadPartCommand');
    const data = randomBytes(11 * MiB);
    let sourceCalls = 0;
    const handle = await storage.startBackup('ks/0', '2026-11-24.100000.db1');
    const stored = await handle.writeFile('big', () => {
      sourceCalls++;
      return Readable.from([data.subarray(0, 3 * MiB), data.subarray(3 * MiB)]);
    });
    expect(sourceCalls).toBe(2);
    expect(stored.sha256).toBe(createHash('sha256').update(data).digest('hex'));
    expect(seen.filter((c) => c.command === 'AbortMultipartUploadCommand')).toHaveLength(1);
    const back: Buffer[] = [];
    for await (const chunk of await handle.readFile('big')) back.push(chunk as Buffer);
    expect(Buffer.concat(back).equals(data)).toBe(true);
    await storage.close();
  });

  it('does not retry a source that cannot be replayed', async () => {
    const storage = s3.storage('noreplay');
    instrument(storage.client, (command) => command === 'PutObjectCommand');
    const handle = await storage.startBackup('ks/0', '2026-11-24.100000.db1');
    await expect(
      handle.writeFile('small', () => Readable.from([Buffer.from('x')]), { replayable: false }),
    ).rejects.toBeInstanceOf(StorageError);
    await storage.close();
  });

  it('asks for server-side encryption with the KMS key on single and multipart uploads', async () => {
    const storage = new S3BackupStorage({
      bucket: s3.bucket,
      prefix: 'sse',
      endpoint: s3.endpoint,
      forcePathStyle: true,
      credentials: s3rverCredentials,
      serverSideEncryption: 'aws:kms',
      kmsKeyId: 'alias/stepback',
      minPartSize: 5 * MiB,
    });
    const seen = instrument(storage.client);
    const handle = await storage.startBackup('ks/0', '2026-11-24.100000.db1');
    await handle.writeFile('small', () => Readable.from([Buffer.from('x')]));
    await handle.writeFile('large', () => Readable.from([randomBytes(6 * MiB)]));
    const writes = seen.filter(
      (c) => c.command === 'PutObjectCommand' || c.command === 'CreateMultipartUploadCommand',
    );
    expect(writes.map((c) => c.command)).toEqual(['PutObjectCommand', 'CreateMultipartUploadCommand']);
    for (const write of writes) {
      expect(write.input).toMatchObject({ ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'alias/stepback' });
    }
    await storage.close();
  });

  it('reads the endpoint, path style and encryption from the storage URL', async () => {
    const storage = (await openStorage(
      `s3://bucket/some/prefix?endpoint=${encodeURIComponent(s3.endpoint)}&pathStyle=true&sse=AES256`,
    )) as S3BackupStorage;
    expect(storage.options).toMatchObject({
      bucket: 'bucket',
      endpoint: s3.endpoint,
      forcePathStyle: true,
      serverSideEncryption: 'AES256',
    });
    expect(storage.key('ks/0', 'b', 'f')).toBe('some/prefix/ks/0/b/f');
    await expect(openStorage('s3://bucket/x?sse=rot13')).rejects.toThrow(/AES256 or aws:kms/);
    await expect(openStorage('ftp://host/x')).rejects.toThrow(/unknown scheme/);
  });

  it('fails with a storage error that names the storage when the endpoint is dead', async () => {
    const port = await freePort();
    const storage = new S3BackupStorage({
      bucket: 'b',
      prefix: 'p',
      endpoint: `http://127.0.0.1:${port}`,
      forcePathStyle: true,
      credentials: s3rverCredentials,
    });
    const error = await storage.listBackups('ks/0').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as Error).message).toContain('s3://b/p');
    await storage.close();
  });
});
