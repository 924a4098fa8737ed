import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeRequest } from '../../agent/run/request.ts';
import { type AgentRequest, type ParsedRequest, parseAgentRequest } from '../../core/agent-request.ts';
import { UsageError } from '../../core/errors.ts';
import { checkProperty, runs } from '../support/faults.ts';
import { applyMutation, mutationOf, onOneBranch } from '../support/mutations.ts';

/**
 * Hostile agent requests (`stepback run --request-b64`), through the exported decode function only:
 * a malformed request fails with USAGE naming the field, and nothing else ever comes out.
 */

const valid: AgentRequest[] = [
  {
    operation: 'backup',
    storage: 's3://b/p',
    dir: 'ks/0',
    defaultsFile: '/etc/my.cnf',
    compression: 'zstd',
    concurrency: 4,
  },
  {
    operation: 'restore',
    storage: 'file:///backups',
    dir: 'ks/0',
    defaultsFile: '/etc/my.cnf',
    backup: '2026-11-24.101500.db1',
    localMetadata: { role: 'replica' },
    replicateFrom: { host: 'db1', port: 3306, user: 'repl', passwordEnv: 'REPL_PASSWORD' },
  },
  {
    operation: 'snapshot',
    storage: 's3://b/p',
    dir: 'ks/src',
    defaultsFile: '/etc/my.cnf',
    database: 'db',
    keyColumn: 'k',
    keyType: 'uint64',
    keyRanges: ['-80', '80-'],
    maxFileSize: '64MiB',
  },
  {
    operation: 'multirestore',
    storage: 's3://b/p',
    defaultsFile: '/etc/my.cnf',
    sources: ['ks/src/-80@2026-11-24.101500.db1'],
    database: 'db',
  },
  {
    operation: 'diff',
    left: 'mysql://root@h1/db',
    right: 'mysql://root@h2/db',
    tables: ['t'],
    leftKeyRange: '-80',
    keyColumn: 'k',
  },
];

const encode = (value: unknown) => Buffer.from(JSON.stringify(value) ?? 'null', 'utf8').toString('base64');

/** Whether the decoded JSON is a valid request. */
function isValid(json: unknown): boolean {
  try {
    parseAgentRequest(json);
    return true;
  } catch {
    return false;
  }
}

/** The request or the UsageError; anything else fails the test. */
function decode(base64: string): ParsedRequest | UsageError {
  try {
    return decodeRequest(base64);
  } catch (error) {
    if (error instanceof UsageError) return error;
    throw error;
  }
}

describe('agent requests under fuzzing', () => {
  it('decodes every valid request as it was', async () => {
    for (const request of valid) {
      const { operation, ...fields } = request;
      expect(decode(encode(request))).toEqual({ operation, request: expect.objectContaining({}) });
      expect(Object.keys((decode(encode(request)) as ParsedRequest).request)).toEqual(
        expect.arrayContaining(Object.keys(fields)),
      );
    }
  });

  it('refuses a mutated request with USAGE naming the field, or decodes a valid one', async () => {
    const arbitrary = fc
      .constantFrom(...valid)
      .chain((request) =>
        mutationOf(request).map((mutation) => ({ mutation, value: applyMutation(request, mutation) })),
      );
    const numRuns = runs(300, 5_000);
    await checkProperty(
      'hostile agent request',
      fc.property(arbitrary, ({ mutation, value }) => {
        const text = encode(value);
        const result = decode(text);
        if (result instanceof UsageError) {
          expect(result.code).toBe('USAGE');
          expect(result.message.length).toBeLessThan(2_000);
          const match = /^request((?:\.(?:[\w$-]+|"(?:[^"\\]|\\.)*"…?))*): /.exec(result.message);
          if (text.length <= 65_536) {
            expect(match, result.message).not.toBeNull();
            if (mutation.kind === 'replace' && match![1]) {
              const named = [...match![1].matchAll(/\.([\w$-]+|"(?:[^"\\]|\\.)*")/g)].map((m) =>
                m[1]!.startsWith('"') ? (JSON.parse(m[1]!) as string) : m[1]!,
              );
              expect(
                onOneBranch(named, mutation.path.map(String)),
                `${result.message} / ${mutation.path.join('.')}`,
              ).toBe(true);
            }
          }
        } else {
          expect(isValid(JSON.parse(Buffer.from(text, 'base64').toString('utf8')))).toBe(true);
        }
      }),
      { numRuns, seed: 20261220 },
    );
  });

  it('refuses text that is not base64 JSON with USAGE', async () => {
    const arbitrary = fc.oneof(
      fc.string({ unit: 'binary' }),
      fc.base64String(),
      fc.string({ unit: 'binary' }).map((s) => Buffer.from(s).toString('base64')),
      fc.jsonValue().map(encode),
    );
    const numRuns = runs(300, 5_000);
    await checkProperty(
      'junk agent request text',
      fc.property(arbitrary, (text) => {
        const result = decode(text);
        if (!(result instanceof UsageError))
          expect(result.operation).toMatch(/^(backup|restore|snapshot|multirestore|diff)$/);
      }),
      { numRuns, seed: 20261221 },
    );
  });
});
