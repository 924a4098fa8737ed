import { Readable } from 'node:stream';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../core/log.ts';
import { FileBackupStorage } from '../../core/storage/file.ts';
import { functionDefinitions, functionNamed } from '../../functions/index.ts';
import { type FunctionContext, invokeFunction } from '../../functions/runtime.ts';
import { checkProperty, runs } from '../support/faults.ts';
import { physicalManifest } from '../support/manifests.ts';
import { applyMutation, type Mutation, mutationOf, onOneBranch } from '../support/mutations.ts';
import { tempDir } from '../support/root.ts';

/**
 * Hostile Lambda events: each function's event, mutated (junk of another type, a field removed, an
 * extra field, huge and odd strings, nested junk), either runs or fails with a stable error code —
 * USAGE naming the field when the event is malformed — and never with anything else.
 */

const backupName = '2026-11-24.101500.db1';

/** A valid event for every function, as the state machines send them. */
const validEvents: Record<string, unknown[]> = {
  'validate-input': [
    {
      machine: 'backup',
      input: {
        targets: [{ keyspace: 'ks', shard: '0', host: 'i-1' }],
        retention: { keepCount: 2, keepDays: 3 },
      },
    },
    {
      machine: 'restore',
      input: {
        keyspace: 'ks',
        shard: '0',
        host: 'i-1',
        backup: backupName,
        localMetadata: { role: 'replica' },
      },
    },
    { machine: 'drill', input: { host: 'i-9', keyspaces: ['ks'], maxAgeDays: 8 } },
    {
      machine: 'reshard',
      input: {
        keyspace: 'ks',
        shard: '0',
        sourceHost: 'i-1',
        sourceUri: 'mysql://root@h1:3306/db',
        database: 'db',
        keyColumn: 'k',
        keyType: 'uint64',
        destinations: [
          { host: 'i-2', keyRange: '-80', uri: 'mysql://root@h2/db' },
          { host: 'i-3', keyRange: '80-', uri: 'mysql://root@h3/db' },
        ],
      },
    },
  ],
  'resolve-targets': [
    {
      machine: 'backup',
      backup: {
        storage: 'file:///backups',
        targets: [{ keyspace: 'ks', shard: '0', host: 'i-1', defaultsFile: '/etc/my.cnf' }],
        keyspaces: [],
        backup: { engine: 'physical', compression: 'zstd', concurrency: 4, shardsPerExecution: 400 },
      },
    },
    {
      machine: 'reshard',
      reshard: {
        storage: 'file:///backups',
        keyspace: 'ks',
        shard: '0',
        plan: {
          database: 'db',
          keyColumn: 'k',
          keyType: 'uint64',
          tables: null,
          source: { uri: 'mysql://root@h1/db', passwordEnv: null },
          destinations: [
            {
              host: 'i-2',
              defaultsFile: '/etc/my.cnf',
              keyRange: '-80',
              uri: 'mysql://root@h2/db',
              passwordEnv: null,
            },
          ],
        },
        snapshot: { snapshots: [{ keyRange: '-80', dir: 'ks/0/-80', name: backupName }] },
      },
    },
  ],
  'list-backups': [{ dir: 'ks/0' }],
  'choose-backup': [{ dir: 'ks/0', name: backupName, atOrBefore: null }],
  'validate-manifest': [
    { dir: 'ks/0', name: backupName, deep: true },
    { backups: [{ dir: 'ks/0', name: backupName }] },
  ],
  'prune-backups': [{ dir: 'ks/0', retention: { keepCount: 2, keepDays: 3 }, dryRun: true }],
  'summarize-shards': [
    {
      shards: [
        {
          keyspace: 'ks',
          shard: '0',
          host: 'i-1',
          ok: true,
          backup: backupName,
          bytes: { raw: 1, stored: 1 },
        },
        { keyspace: 'ks', shard: '1', host: 'i-2', ok: false, error: 'NO_BACKUP', cause: 'none' },
      ],
      unresolved: [{ keyspace: 'ks', shard: '2', error: 'USAGE', cause: 'no host' }],
    },
  ],
  'rebuild-vschema': [{ cells: ['zone1'] }],
  'plan-drills': [
    {
      host: 'i-1',
      keyspaces: ['ks'],
      request: { operation: 'drill', storage: 'file:///x', defaultsFile: '/etc/mysql/my.cnf' },
    },
    {
      host: 'i-1',
      keyspaces: null,
      request: { operation: 'drill', storage: 'file:///x', defaultsFile: '/x' },
    },
  ],
  'drill-age': [
    { maxAgeDays: 8 },
    {
      drills: [
        { dir: 'ks/0', backup: backupName, ok: false, error: 'VERIFICATION_FAILED', cause: 'differs' },
      ],
    },
  ],
  'switch-topology': [
    {
      keyspace: 'ks',
      shard: '0',
      destinations: [
        { shard: '-80', host: 'i-2', defaultsFile: '/etc/mysql/my.cnf' },
        { shard: '80-', host: 'i-3' },
      ],
      frozenAt: '2026-12-01T10:00:00.000Z',
      freezeTimeoutSeconds: 30,
    },
  ],
  notify: [
    { machine: 'backup', execution: 'arn:x', error: { Error: 'USAGE', Cause: '{"errorMessage":"bad"}' } },
  ],
  'command-failed': [
    {
      source: 'aws.ssm',
      'detail-type': 'EC2 Command Invocation Status-change Notification',
      detail: { 'command-id': 'c-1', 'instance-id': 'i-1', status: 'Failed' },
    },
    {
      source: 'aws.ssm',
      'detail-type': 'EC2 Command Invocation Status-change Notification',
      detail: { 'command-id': 'c-2', 'instance-id': 'i-1', status: 'Success' },
    },
  ],
};

/** The field an error message names: `event.a.0.b: …` or `input.a[0].b: …` → ['a', '0', 'b']. */
function namedField(message: string): string[] | undefined {
  const match = /^(event|input)((?:\.[\w$-]+|\[\d+\]|\["(?:[^"\\]|\\.)*"…?\])*): /.exec(message);
  if (!match) return undefined;
  return [...match[2]!.matchAll(/\.([\w$-]+)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")…?\]/g)].map(
    (m) => m[1] ?? m[2] ?? (JSON.parse(m[3]!) as string),
  );
}

let context: FunctionContext;

beforeAll(async () => {
  const root = await tempDir('faults-inputs');
  const storage = new FileBackupStorage(root);
  const handle = await storage.startBackup('ks/0', backupName);
  const content = Buffer.from('ibdata');
  const stored = await handle.writeFile('0000', () => Readable.from([content]));
  await handle.endBackup(
    physicalManifest({
      dir: 'ks/0',
      files: [
        {
          name: '0000',
          base: 'innodb-data',
          path: 'ibdata1',
          rawSize: content.length,
          storedSize: stored.size,
          sha256: stored.sha256,
        },
      ],
      bytes: { raw: content.length, stored: stored.size },
    }),
  );
  context = {
    settings: {
      storageUrl: `file://${root}`,
      topologyUrl: undefined,
      defaults: {
        defaultsFile: '/etc/mysql/my.cnf',
        retention: { keepCount: 2, keepDays: 3 },
        backup: { engine: 'physical', compression: 'zstd', concurrency: 4, shardsPerExecution: 400 },
      },
      region: 'us-east-1',
      hostsAreDefaultsFiles: false,
    },
    logger: silentLogger,
    now: () => new Date('2026-11-30T00:00:00Z'),
    // SSM's API has no local server: a stand-in that knows no command (so no token to report to).
    runCommand: {
      commandParameters: async () => undefined,
      invocationOutput: async () => ({ stdout: '', stderr: '', details: '' }),
      sendTaskFailure: async () => false,
    },
  };
});

describe('Lambda events under fuzzing', () => {
  it('runs every valid event without an INTERNAL error', async () => {
    for (const [name, events] of Object.entries(validEvents)) {
      for (const event of events) {
        const outcome = await invokeFunction(functionNamed(name)!, event, context).catch((e: Error) => e);
        if (outcome instanceof Error)
          expect(outcome.name, `${name}: ${outcome.message}`).not.toBe('INTERNAL');
      }
    }
    expect(Object.keys(validEvents).sort()).toEqual(Object.keys(functionDefinitions).sort());
  });

  for (const name of Object.keys(validEvents)) {
    it(`${name}: a mutated event fails with USAGE naming the field, or runs`, async () => {
      const definition = functionNamed(name)!;
      const arbitrary = fc
        .constantFrom(...validEvents[name]!)
        .chain((event) =>
          mutationOf(event).map((mutation) => ({ mutation, event: applyMutation(event, mutation) })),
        );
      const numRuns = runs(60, 1_000);
      await checkProperty(
        'hostile Lambda event',
        fc.asyncProperty(arbitrary, async ({ mutation, event }: { mutation: Mutation; event: unknown }) => {
          const outcome = await invokeFunction(definition, event, context).then(
            () => undefined,
            (error: unknown) => error,
          );
          const refusedBySchema = !definition.event.safeParse(event).success;
          if (outcome === undefined) {
            expect(refusedBySchema).toBe(false);
          } else {
            expect(outcome).toBeInstanceOf(Error);
            const error = outcome as Error;
            expect(error.name, error.message).not.toBe('INTERNAL');
            expect(error.message.length).toBeLessThan(10_000);
            if (refusedBySchema) {
              expect(error.name, error.message).toBe('USAGE');
              const field = namedField(error.message);
              expect(field, `${error.message} names no field`).toBeDefined();
              // The field on the mutated branch; a removal may also break a rule between fields.
              if (mutation.kind !== 'remove' && !(mutation.kind === 'extra' && mutation.path.length === 0)) {
                const mutated = mutation.path.map(String);
                const named =
                  name === 'validate-input' && !error.message.startsWith('event')
                    ? ['input', ...field!]
                    : field!;
                expect(onOneBranch(named, mutated), `${error.message} / ${mutated.join('.')}`).toBe(true);
              }
            }
          }
        }),
        { numRuns, seed: 20261210 },
      );
    });
  }
});
