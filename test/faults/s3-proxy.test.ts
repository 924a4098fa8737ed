import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3rverCredentials, startS3, type TestS3 } from '../support/s3.ts';
import { type S3FaultProxy, startS3FaultProxy } from '../support/s3-faults.ts';

let s3: TestS3;
let proxy: S3FaultProxy;
const object = randomBytes(256 * 1024);

beforeAll(async () => {
  s3 = await startS3();
  proxy = await startS3FaultProxy(s3.endpoint);
  await direct().send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'proxy/object', Body: object }));
});

afterAll(async () => {
  await proxy?.stop();
  await s3?.stop();
});

function client(endpoint: string, maxAttempts: number): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: s3rverCredentials,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts,
  });
}

const direct = () => client(s3.endpoint, 1);

interface RawAnswer {
  status: number | undefined;
  headers: http.IncomingHttpHeaders;
  /** Each body chunk as it arrived. */
  chunks: Buffer[];
  /** How the exchange ended: 'end' (whole body), or the error code seen. */
  ending: string;
}

/** One plain GET through the proxy (s3rver serves unsigned reads), recording exactly what arrived. */
function rawGet(key: string): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const answer: RawAnswer = { status: undefined, headers: {}, chunks: [], ending: '' };
    const request = http.get(`${proxy.endpoint}/${s3.bucket}/${key}`, { agent: false }, (response) => {
      answer.status = response.statusCode;
      answer.headers = response.headers;
      response.on('data', (chunk: Buffer) => answer.chunks.push(chunk));
      response.once('end', () => resolve({ ...answer, ending: 'end' }));
      response.once('error', (error: NodeJS.ErrnoException) =>
        resolve({ ...answer, ending: error.code ?? error.message }),
      );
    });
    request.once('error', (error: NodeJS.ErrnoException) =>
      resolve({ ...answer, ending: error.code ?? error.message }),
    );
  });
}

async function exists(key: string): Promise<boolean> {
  try {
    await direct().send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
    return true;
  } catch {
    return false;
  }
}

describe('S3 fault proxy', () => {
  it('passes requests through untouched when no rule matches', async () => {
    proxy.setFaults([{ kind: 'internalError', method: 'PUT' }]);
    const answer = await rawGet('proxy/object');
    expect(answer.status).toBe(200);
    expect(answer.ending).toBe('end');
    expect(Buffer.concat(answer.chunks).equals(object)).toBe(true);
    expect(proxy.requests.at(-1)).toMatchObject({ method: 'GET', key: 'proxy/object', fault: undefined });
  });

  it('answers 503 SlowDown and 500 InternalError with S3 error bodies', async () => {
    proxy.setFaults([{ kind: 'slowDown', nth: [1] }, { kind: 'internalError' }]);
    const slow = await rawGet('proxy/object');
    expect(slow.status).toBe(503);
    expect(Buffer.concat(slow.chunks).toString()).toMatch(/<Error><Code>SlowDown<\/Code>/);
    const internal = await rawGet('proxy/object');
    expect(internal.status).toBe(500);
    expect(Buffer.concat(internal.chunks).toString()).toMatch(/<Error><Code>InternalError<\/Code>/);
    // The SDK reads them as the S3 errors they stand for.
    proxy.setFaults([{ kind: 'slowDown' }]);
    const error = await client(proxy.endpoint, 1)
      .send(new GetObjectCommand({ Bucket: s3.bucket, Key: 'proxy/object' }))
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'SlowDown', $metadata: { httpStatusCode: 503 } });
  });

  it('resets the connection before reading the body, and nothing reaches the server', async () => {
    proxy.setFaults([{ kind: 'resetBeforeBody', method: 'PUT' }]);
    const body = randomBytes(2 * 1024 * 1024);
    const error = await client(proxy.endpoint, 1)
      .send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'proxy/reset-before', Body: body }))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(proxy.requests.at(-1)).toMatchObject({ fault: 'resetBeforeBody', bodyBytes: undefined });
    expect(await exists('proxy/reset-before')).toBe(false);
  });

  it('resets the connection after reading the whole body, and nothing reaches the server', async () => {
    proxy.setFaults([{ kind: 'resetAfterBody', method: 'PUT' }]);
    const body = randomBytes(300 * 1024);
    const error = await client(proxy.endpoint, 1)
      .send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'proxy/reset-after', Body: body }))
      .catch((e: unknown) => e);
    expect((error as NodeJS.ErrnoException).code ?? (error as Error).name).toMatch(/ECONNRESET|hang up/i);
    expect(proxy.requests.at(-1)).toMatchObject({ fault: 'resetAfterBody', bodyBytes: body.length });
    expect(await exists('proxy/reset-after')).toBe(false);
  });

  it('truncates a response body below its Content-Length, then closes the socket', async () => {
    proxy.setFaults([{ kind: 'truncate', method: 'GET', bytes: 1000 }]);
    const answer = await rawGet('proxy/object');
    expect(answer.status).toBe(200);
    expect(Number(answer.headers['content-length'])).toBe(object.length);
    const got = Buffer.concat(answer.chunks);
    expect(got.length).toBe(1000);
    expect(got.equals(object.subarray(0, 1000))).toBe(true);
    expect(answer.ending).not.toBe('end');
  });

  it('sends a slow body in small pieces, whole', async () => {
    proxy.setFaults([{ kind: 'slowBody', method: 'GET', pieceBytes: 8 * 1024, pauseMs: 1 }]);
    const answer = await rawGet('proxy/object');
    expect(answer.ending).toBe('end');
    expect(Buffer.concat(answer.chunks).equals(object)).toBe(true);
    // Pieces of at most 8 KiB with a pause after each (how the client's reads group them is up to its load).
    const record = proxy.requests.at(-1);
    expect(record?.fault).toBe('slowBody');
    expect(record?.pieces).toBeGreaterThanOrEqual(object.length / (8 * 1024));
    expect(answer.chunks.length).toBeGreaterThan(1);
  });

  it('picks requests by method, key pattern, part number and nth match', async () => {
    proxy.setFaults([
      { kind: 'internalError', method: 'GET', key: /^proxy\/obj/, nth: [2, 3] },
      { kind: 'slowDown', partNumber: 2 },
    ]);
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await rawGet('proxy/object')).status);
    expect(statuses).toEqual([200, 500, 500, 200]);
    expect((await rawGet('proxy/missing')).status).toBe(404);
    const part = await new Promise<number | undefined>((resolve) => {
      const request = http.request(
        `${proxy.endpoint}/${s3.bucket}/proxy/x?partNumber=2&uploadId=u`,
        { method: 'PUT', agent: false },
        (response) => {
          response.resume();
          resolve(response.statusCode);
        },
      );
      request.end('x');
    });
    expect(part).toBe(503);
  });

  it('draws rate faults from the seed: the same seed hits the same requests, another seed others', async () => {
    const pattern = async (seed: number) => {
      proxy.setFaults([{ kind: 'internalError', method: 'GET', rate: 0.3 }], seed);
      const from = proxy.requests.length;
      for (let i = 0; i < 40; i++) await rawGet(`proxy/rate-${i}`);
      return proxy.requests.slice(from).map((r) => (r.fault ? 1 : 0));
    };
    const first = await pattern(7);
    expect(await pattern(7)).toEqual(first);
    expect(await pattern(8)).not.toEqual(first);
    const hit = first.reduce((a: number, b) => a + b, 0);
    expect(hit).toBeGreaterThan(0);
    expect(hit).toBeLessThan(40);
  });

  it('limits a rule to a number of hits', async () => {
    proxy.setFaults([{ kind: 'internalError', times: 2 }]);
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await rawGet('proxy/object')).status);
    expect(statuses).toEqual([500, 500, 200]);
    expect(proxy.hits().internalError).toBeGreaterThanOrEqual(2);
  });
});
