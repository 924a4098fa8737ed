import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import type { TestS3 } from './s3.ts';

/**
 * What the proxy does to a request it picks:
 * - `slowDown`: 503 with S3's SlowDown XML body, the request never reaches the server;
 * - `internalError`: 500 with S3's InternalError XML body, likewise;
 * - `resetBeforeBody`: the connection is reset before the request body is read;
 * - `resetAfterBody`: the whole request body is read, then the connection is reset (not forwarded);
 * - `truncate`: forwarded; the response's headers (Content-Length included) go out, then only part of
 *   its body, then the socket closes;
 * - `slowBody`: forwarded; the response body goes out in small pieces with pauses between them.
 */
export type S3FaultKind =
  | 'slowDown'
  | 'internalError'
  | 'resetBeforeBody'
  | 'resetAfterBody'
  | 'truncate'
  | 'slowBody';

export const S3_FAULT_KINDS: readonly S3FaultKind[] = [
  'slowDown',
  'internalError',
  'resetBeforeBody',
  'resetAfterBody',
  'truncate',
  'slowBody',
];

export interface S3FaultRule {
  kind: S3FaultKind;
  /** Only requests of this HTTP method. */
  method?: string;
  /** Only requests whose object key (bucket excluded) matches. */
  key?: RegExp;
  /** Only UploadPart requests of this part number. */
  partNumber?: number;
  /** Only requests that carry a Range header (true) or none (false). */
  ranged?: boolean;
  /** Only the nth matching requests (1-based, counted in arrival order). */
  nth?: readonly number[];
  /** Fraction of matching requests hit, drawn from the seed (default 1). */
  rate?: number;
  /** At most this many hits in all (default unlimited). */
  times?: number;
  /** `truncate`: response body bytes sent before the close (default half of Content-Length). */
  bytes?: number;
  /** `slowBody`: bytes per piece (default 16 KiB) and pause after each (default 2 ms). */
  pieceBytes?: number;
  pauseMs?: number;
}

/** One request as the proxy saw it, in arrival order. */
export interface S3ProxyRequest {
  method: string;
  /** The object key, bucket excluded ('' for bucket-level requests). */
  key: string;
  query: URLSearchParams;
  range: string | undefined;
  fault: S3FaultKind | undefined;
  /** Request body bytes the proxy read (undefined when it never read the body). */
  bodyBytes: number | undefined;
  /** `slowBody`: the pieces the response body went out in, a pause after each. */
  pieces?: number;
}

export interface S3FaultProxy {
  /** Point the SDK client here (`endpoint`, path style). */
  endpoint: string;
  readonly requests: readonly S3ProxyRequest[];
  /** Replaces the rules (and their counters) and the seed; past requests stay recorded. */
  setFaults(rules: readonly S3FaultRule[], seed?: number): void;
  /** Calls `hook` with each request before its fault is picked; the request waits for its promise. */
  onRequest(hook: ((request: S3ProxyRequest) => Promise<void> | void) | undefined): void;
  /** Requests that were hit, by kind. */
  hits(): Partial<Record<S3FaultKind, number>>;
  stop(): Promise<void>;
}

/** A number in [0, 1) from the seed and a request's identity: the same on every run and interleaving. */
function draw(seed: number, identity: string): number {
  return createHash('sha256').update(`${seed}\0${identity}`).digest().readUInt32BE(0) / 2 ** 32;
}

function errorBody(code: string, message: string, key: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><Resource>${key}</Resource><RequestId>fault-${code}</RequestId></Error>`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * An HTTP proxy in front of an S3 server (s3rver) that injects faults by seeded rules. A request's
 * draw depends on the seed, its method, key, part number, range and how many times that same request
 * was seen before, so retries draw anew and concurrent requests do not change each other's fate.
 * The Host header is passed on unchanged, so SigV4 signatures made for the proxy still verify.
 */
export async function startS3FaultProxy(
  upstream: string,
  options: { rules?: readonly S3FaultRule[]; seed?: number } = {},
): Promise<S3FaultProxy> {
  const target = new URL(upstream);
  const requests: S3ProxyRequest[] = [];
  let rules: readonly S3FaultRule[] = options.rules ?? [];
  let seed = options.seed ?? 1;
  let matched = new Map<S3FaultRule, number>();
  let hitCount = new Map<S3FaultRule, number>();
  const seen = new Map<string, number>();
  const sockets = new Set<import('node:net').Socket>();
  let hook: ((request: S3ProxyRequest) => Promise<void> | void) | undefined;

  const pick = (record: S3ProxyRequest): S3FaultRule | undefined => {
    const part = record.query.get('partNumber');
    const identity = `${record.method} ${record.key} ${[...record.query.keys()].sort().join('&')} ${part ?? ''} ${record.range ?? ''}`;
    const attempt = (seen.get(identity) ?? 0) + 1;
    seen.set(identity, attempt);
    for (const [index, rule] of rules.entries()) {
      if (rule.method && rule.method !== record.method) continue;
      if (rule.key && !rule.key.test(record.key)) continue;
      if (rule.partNumber !== undefined && Number(part) !== rule.partNumber) continue;
      if (rule.ranged !== undefined && rule.ranged !== (record.range !== undefined)) continue;
      const n = (matched.get(rule) ?? 0) + 1;
      matched.set(rule, n);
      if (rule.nth && !rule.nth.includes(n)) continue;
      if ((hitCount.get(rule) ?? 0) >= (rule.times ?? Number.POSITIVE_INFINITY)) continue;
      if (rule.rate !== undefined && draw(seed, `${index} ${identity} #${attempt}`) >= rule.rate) continue;
      hitCount.set(rule, (hitCount.get(rule) ?? 0) + 1);
      return rule;
    }
    return undefined;
  };

  const readBody = (req: http.IncomingMessage, record: S3ProxyRequest) =>
    new Promise<void>((resolve, reject) => {
      record.bodyBytes = 0;
      req.on('data', (chunk: Buffer) => {
        record.bodyBytes = (record.bodyBytes ?? 0) + chunk.length;
      });
      req.once('end', resolve);
      req.once('error', reject);
    });

  const forward = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    record: S3ProxyRequest,
    rule?: S3FaultRule,
  ) => {
    record.bodyBytes = 0;
    const outgoing = http.request({
      host: target.hostname,
      port: target.port,
      method: req.method,
      path: req.url,
      headers: req.headers,
    });
    req.on('data', (chunk: Buffer) => {
      record.bodyBytes = (record.bodyBytes ?? 0) + chunk.length;
    });
    req.pipe(outgoing);
    outgoing.once('error', () => res.socket?.destroy());
    outgoing.once('response', (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, answer.rawHeaders);
      if (rule?.kind === 'truncate') {
        res.flushHeaders();
        const length = Number(answer.headers['content-length'] ?? 0);
        let left = rule.bytes ?? Math.floor(length / 2);
        answer.on('data', (chunk: Buffer) => {
          if (left <= 0) return;
          const piece = chunk.subarray(0, left);
          left -= piece.length;
          if (left > 0) {
            res.write(piece);
            return;
          }
          answer.destroy();
          // Closed once the partial body has been handed to the socket.
          res.write(piece, () => res.socket?.destroy());
        });
        answer.once('end', () => res.socket?.destroy());
        return;
      }
      if (rule?.kind === 'slowBody') {
        const pieceBytes = rule.pieceBytes ?? 16 * 1024;
        const pauseMs = rule.pauseMs ?? 2;
        void (async () => {
          try {
            for await (const chunk of answer as AsyncIterable<Buffer>) {
              for (let at = 0; at < chunk.length; at += pieceBytes) {
                record.pieces = (record.pieces ?? 0) + 1;
                if (!res.write(chunk.subarray(at, at + pieceBytes)))
                  await new Promise((resolve) => res.once('drain', resolve));
                await sleep(pauseMs);
              }
            }
            res.end();
          } catch {
            res.socket?.destroy();
          }
        })();
        return;
      }
      answer.pipe(res);
    });
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const [, , ...keyParts] = url.pathname.split('/');
    const range = req.headers.range;
    const record: S3ProxyRequest = {
      method: req.method ?? 'GET',
      key: decodeURIComponent(keyParts.join('/')),
      query: url.searchParams,
      range: typeof range === 'string' ? range : undefined,
      fault: undefined,
      bodyBytes: undefined,
    };
    requests.push(record);
    if (hook) {
      Promise.resolve(hook(record)).then(
        () => handle(req, res, record),
        () => req.socket.destroy(),
      );
      return;
    }
    handle(req, res, record);
  });

  const handle = (req: http.IncomingMessage, res: http.ServerResponse, record: S3ProxyRequest) => {
    const rule = pick(record);
    record.fault = rule?.kind;
    switch (rule?.kind) {
      case 'slowDown':
      case 'internalError': {
        const [status, code, message] =
          rule.kind === 'slowDown'
            ? [503, 'SlowDown', 'Please reduce your request rate.']
            : [500, 'InternalError', 'We encountered an internal error. Please try again.'];
        readBody(req, record).then(
          () => {
            res.writeHead(status, { 'content-type': 'application/xml' });
            res.end(errorBody(code, message, record.key));
          },
          () => res.socket?.destroy(),
        );
        return;
      }
      case 'resetBeforeBody':
        req.socket.resetAndDestroy();
        return;
      case 'resetAfterBody':
        readBody(req, record).then(
          () => req.socket.resetAndDestroy(),
          () => req.socket.destroy(),
        );
        return;
      default:
        forward(req, res, record, rule);
    }
  };
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    setFaults(next, nextSeed) {
      rules = next;
      if (nextSeed !== undefined) seed = nextSeed;
      matched = new Map();
      hitCount = new Map();
      seen.clear();
    },
    onRequest(next) {
      hook = next;
    },
    hits() {
      const counts: Partial<Record<S3FaultKind, number>> = {};
      for (const request of requests) {
        if (request.fault) counts[request.fault] = (counts[request.fault] ?? 0) + 1;
      }
      return counts;
    },
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * A moderate fault rate: about one request in ten fails or stalls in some way, all kinds mixed.
 * Truncation is kept to GETs: a truncated answer to a forwarded CompleteMultipartUpload would leave
 * s3rver's upload completed and its retry refused, where S3 answers the retry with success.
 */
export function moderateFaults(rate = 0.02): S3FaultRule[] {
  return [
    { kind: 'slowDown', rate },
    { kind: 'internalError', rate },
    { kind: 'resetBeforeBody', rate },
    { kind: 'resetAfterBody', rate },
    { kind: 'truncate', method: 'GET', rate: rate * 2 },
    { kind: 'slowBody', rate, pieceBytes: 64 * 1024, pauseMs: 1 },
  ];
}

/** An object's bytes read straight from the server (around the proxy), or undefined when there is none. */
export async function storedObject(s3: TestS3, key: string): Promise<Buffer | undefined> {
  const storage = s3.storage('');
  try {
    const result = await storage.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
    return Buffer.from(await result.Body!.transformToByteArray());
  } catch {
    return undefined;
  } finally {
    await storage.close();
  }
}
