import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../core/errors.ts';
import { S3BackupStorage } from '../../core/storage/s3.ts';
import { ObjectChangedError } from '../../core/storage/s3-download.ts';
import { s3rverCredentials, startS3, type TestS3 } from '../support/s3.ts';
import { moderateFaults, type S3FaultProxy, startS3FaultProxy, storedObject } from '../support/s3-faults.ts';

const MiB = 1024 * 1024;
let s3: TestS3;
let proxy: S3FaultProxy;

beforeAll(async () => {
  s3 = await startS3();
  proxy = await startS3FaultProxy(s3.endpoint);
});

afterAll(async () => {
  await proxy?.stop();
  await s3?.stop();
});

/** Storage whose every request goes through the fault proxy. */
function proxied(prefix: string, options: { minPartSize?: number } = {}): S3BackupStorage {
  return new S3BackupStorage({
    bucket: s3.bucket,
    prefix,
    endpoint: proxy.endpoint,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: s3rverCredentials,
    ...options,
  });
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/**
 * A 15 MiB source in 1 MiB chunks that holds back its last 3 MiB until part 2 has failed for good (the
 * SDK gave up on it), so that failure lands while the file is still being read.
 */
function sourceAfterPartTwoFails(storage: S3BackupStorage, data: Buffer) {
  let partTwoFailed!: () => void;
  const failure = new Promise<void>((resolve) => {
    partTwoFailed = resolve;
  });
  storage.client.middlewareStack.add(
    (next, context) => async (args) => {
      try {
        return await next(args);
      } catch (error) {
        const input = args.input as { PartNumber?: number };
        if (context.commandName === 'UploadPartCommand' && input.PartNumber === 2) partTwoFailed();
        throw error;
      }
    },
    { step: 'initialize', name: 'watchPartTwo' },
  );
  const source = async function* () {
    for (let i = 0; i < 15; i++) {
      if (i === 12) {
        await failure;
        await new Promise(setImmediate);
      }
      yield data.subarray(i * MiB, (i + 1) * MiB);
    }
  };
  return () => Readable.from(source());
}

describe('S3 storage under faults', () => {
  it('never completes an upload without a part that failed past the retries', async () => {
    const storage = proxied('part-lost', { minPartSize: 5 * MiB });
    const key = 'part-lost/ks/0/2026-11-24.100000.db1/big';
    // Five attempts (the client's maxAttempts) of part 2 fail; the SDK gives up on it.
    proxy.setFaults([
      { kind: 'internalError', method: 'PUT', key: /part-lost\/.*\/big$/, partNumber: 2, times: 5 },
    ]);
    const data = randomBytes(15 * MiB);
    const handle = await storage.startBackup('ks/0', '2026-11-24.100000.db1');
    const source = sourceAfterPartTwoFails(storage, data);
    let sourceCalls = 0;
    const stored = await handle.writeFile('big', () => {
      sourceCalls++;
      return source();
    });
    proxy.setFaults([]);
    // Before, part 3 took the failed part's number and the upload completed 5 MiB short, reported
    // with the hash and size of the whole source. Now the file fails and its one retry stores it whole.
    const back = await storedObject(s3, key);
    expect(back?.length).toBe(data.length);
    expect(back?.equals(data)).toBe(true);
    expect(stored).toEqual({ name: 'big', size: data.length, sha256: sha256(data) });
    expect(sourceCalls).toBe(2);
    await storage.close();
  });

  it('fails a file whose part fails on every attempt, naming it, and aborts its upload', async () => {
    const storage = proxied('part-fails', { minPartSize: 5 * MiB });
    const key = 'part-fails/ks/0/2026-11-24.100000.db1/big';
    proxy.setFaults([{ kind: 'internalError', method: 'PUT', key: /part-fails\/.*\/big$/, partNumber: 2 }]);
    const data = randomBytes(15 * MiB);
    const handle = await storage.startBackup('ks/0', '2026-11-24.100000.db1');
    const error = await handle
      .writeFile('big', sourceAfterPartTwoFails(storage, data))
      .catch((e: unknown) => e);
    proxy.setFaults([]);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as Error).message).toContain(key);
    expect(await storedObject(s3, key)).toBeUndefined();
    // The multipart upload was aborted (s3rver cannot list open uploads; the proxy saw the abort).
    const aborts = proxy.requests.filter(
      (r) => r.method === 'DELETE' && r.key === key && r.query.has('uploadId'),
    );
    expect(aborts.length).toBeGreaterThanOrEqual(1);
    await storage.close();
  });
});

/** Everything a stream gives, or the error it ends with. */
async function drain(stream: Readable): Promise<{ data: Buffer; error?: unknown }> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
    return { data: Buffer.concat(chunks) };
  } catch (error) {
    return { data: Buffer.concat(chunks), error };
  }
}

describe('S3 transfers stopped by their signal', () => {
  it('stops an upload mid-way, rejects with the abort and aborts the multipart upload', async () => {
    const storage = proxied('signal-up', { minPartSize: 5 * MiB });
    const key = 'signal-up/ks/0/2026-11-24.100000.db1/big';
    const controller = new AbortController();
    // Part 2 is held at the proxy until the operation is stopped.
    proxy.onRequest((request) => {
      if (request.key === key && request.query.get('partNumber') === '2') controller.abort();
    });
    const data = randomBytes(20 * MiB);
    const handle = await storage.startBackup('ks/0', '2026-11-24.100000.db1');
    const error = await handle
      .writeFile('big', () => Readable.from([data.subarray(0, 10 * MiB), data.subarray(10 * MiB)]), {
        signal: controller.signal,
      })
      .catch((e: unknown) => e);
    proxy.onRequest(undefined);
    expect((error as Error).name).toBe('AbortError');
    expect(await storedObject(s3, key)).toBeUndefined();
    expect(
      proxy.requests.some((r) => r.method === 'DELETE' && r.key === key && r.query.has('uploadId')),
    ).toBe(true);
    await storage.close();
  });

  it('stops a download mid-way with the abort, asking for nothing more', async () => {
    const writer = s3.storage('signal-down');
    const written = await writer.startBackup('ks/0', '2026-11-24.100000.db1');
    await written.writeFile('data', () => Readable.from([randomBytes(4 * MiB)]));
    await writer.close();
    const storage = proxied('signal-down');
    const controller = new AbortController();
    proxy.setFaults([{ kind: 'slowBody', method: 'GET', key: /signal-down\//, pauseMs: 1 }]);
    const from = proxy.requests.length;
    const stream = await storage
      .openBackup('ks/0', '2026-11-24.100000.db1')
      .readFile('data', { signal: controller.signal });
    let received = 0;
    const error = await (async () => {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        received += chunk.length;
        controller.abort();
      }
    })().catch((e: unknown) => e);
    proxy.setFaults([]);
    expect((error as Error).name).toBe('AbortError');
    expect(received).toBeLessThan(4 * MiB);
    expect(proxy.requests.slice(from).filter((r) => r.method === 'GET')).toHaveLength(1);
    await storage.close();
  });
});

describe('S3 downloads under faults', () => {
  const name = '2026-11-24.100000.db1';
  const data = randomBytes(3 * MiB + 17);

  beforeAll(async () => {
    const storage = s3.storage('resume');
    const handle = await storage.startBackup('ks/0', name);
    await handle.writeFile('data', () => Readable.from([data]));
    await storage.close();
  });

  const gets = (from: number) =>
    proxy.requests.slice(from).filter((r) => r.method === 'GET' && r.key === `resume/ks/0/${name}/data`);

  it('resumes a body that breaks off with a ranged GET from the first byte not passed on', async () => {
    const storage = proxied('resume');
    const from = proxy.requests.length;
    proxy.setFaults([{ kind: 'truncate', method: 'GET', key: /resume\/.*\/data$/, nth: [1, 2] }]);
    const read = await drain(await storage.openBackup('ks/0', name).readFile('data'));
    proxy.setFaults([]);
    expect(read.error).toBeUndefined();
    expect(read.data.length).toBe(data.length);
    expect(sha256(read.data)).toBe(sha256(data));
    const requests = gets(from);
    expect(requests.map((r) => r.fault)).toEqual(['truncate', 'truncate', undefined]);
    expect(requests[0]?.range).toBeUndefined();
    const starts = requests.slice(1).map((r) => Number(/^bytes=(\d+)-$/.exec(r.range ?? '')?.[1]));
    // Each resumption starts past the previous one, never at byte 0.
    expect(starts[0]).toBeGreaterThan(0);
    expect(starts[1]).toBeGreaterThan(starts[0]!);
    expect(starts[1]).toBeLessThan(data.length);
    await storage.close();
  });

  it('refuses to join the bytes of an object that changed between two requests', async () => {
    const storage = proxied('resume-changed');
    const writer = s3.storage('resume-changed');
    const handle = await writer.startBackup('ks/0', name);
    await handle.writeFile('data', () => Readable.from([data]));
    const key = `resume-changed/ks/0/${name}/data`;
    proxy.setFaults([{ kind: 'truncate', method: 'GET', key: /resume-changed\//, nth: [1] }]);
    proxy.onRequest(async (request) => {
      if (request.key !== key || !request.range) return;
      // Another writer replaces the object before the resumed request reaches the server.
      await writer.client.send(
        new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: Buffer.alloc(data.length, 1) }),
      );
    });
    const read = await drain(await storage.openBackup('ks/0', name).readFile('data'));
    proxy.onRequest(undefined);
    proxy.setFaults([]);
    expect(read.error).toBeInstanceOf(ObjectChangedError);
    expect((read.error as Error).message).toContain(key);
    expect(read.data.length).toBeLessThan(data.length);
    expect(data.subarray(0, read.data.length).equals(read.data)).toBe(true);
    await writer.close();
    await storage.close();
  });

  it('gives up after five attempts in a row that pass on nothing, naming the object', async () => {
    const storage = proxied('resume');
    const from = proxy.requests.length;
    proxy.setFaults([{ kind: 'truncate', method: 'GET', key: /resume\/.*\/data$/, bytes: 0 }]);
    const read = await drain(await storage.openBackup('ks/0', name).readFile('data'));
    proxy.setFaults([]);
    expect(read.error).toBeInstanceOf(StorageError);
    expect((read.error as Error).message).toContain(`resume/ks/0/${name}/data`);
    expect(read.data.length).toBe(0);
    expect(gets(from)).toHaveLength(5);
    await storage.close();
  });
});

/** Seeded rounds of the fault-rate tests: a few in `npm test`, more with FAULTS_FULL=1. */
const rounds = process.env.FAULTS_FULL === '1' ? 12 : 2;

describe('S3 storage round-trips under a moderate fault rate', () => {
  for (let round = 1; round <= rounds; round++) {
    it(`writes and reads back files of one and several parts byte-identical (seed ${round})`, async () => {
      const storage = proxied(`rate-${round}`, { minPartSize: 5 * MiB });
      const files = new Map<string, Buffer>([
        ['empty', Buffer.alloc(0)],
        ['small', randomBytes(100 * 1024)],
        ['parts', randomBytes(12 * MiB + 5)],
      ]);
      const name = '2026-11-24.100000.db1';
      proxy.setFaults(moderateFaults(0.05), round);
      const handle = await storage.startBackup('ks/0', name);
      for (const [file, data] of files) {
        const stored = await handle.writeFile(file, () => Readable.from([data]), { sizeHint: data.length });
        expect(stored).toEqual({ name: file, size: data.length, sha256: sha256(data) });
      }
      const reader = storage.openBackup('ks/0', name);
      for (const [file, data] of files) {
        const read = await drain(await reader.readFile(file));
        expect(read.error).toBeUndefined();
        expect(sha256(read.data)).toBe(sha256(data));
      }
      proxy.setFaults([]);
      for (const [file, data] of files) {
        expect((await storedObject(s3, `rate-${round}/ks/0/${name}/${file}`))?.equals(data)).toBe(true);
      }
      await storage.close();
    });
  }
});
