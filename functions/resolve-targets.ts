import { z } from 'zod';
import type { BackupRequest, DiffRequest, MultirestoreRequest } from '../core/agent-request.ts';
import { UsageError } from '../core/errors.ts';
import { KeyRange } from '../core/keyrange.ts';
import { defineFunction, lambdaHandler } from './runtime.ts';

/**
 * Which host does what: for a backup, one host per shard (explicit targets; the topology store's
 * healthy replica per shard once it exists); for a reshard, what each destination restores (the
 * snapshots inside its key range) and how its copy is diffed against the source.
 */

const Target = z.object({
  keyspace: z.string(),
  shard: z.string(),
  host: z.string(),
  defaultsFile: z.string(),
});

const BackupPlan = z.object({
  storage: z.string(),
  targets: z.array(Target),
  keyspaces: z.array(z.string()),
  backup: z.object({
    engine: z.enum(['physical']),
    compression: z.enum(['zstd', 'gzip', 'none']),
    concurrency: z.number(),
  }),
});

const Nullable = <T extends z.ZodType>(schema: T) => schema.nullable();

const ReshardPlan = z.object({
  storage: z.string(),
  plan: z.object({
    database: z.string(),
    keyColumn: Nullable(z.string()),
    keyType: Nullable(z.enum(['uint64', 'bytes'])),
    tables: Nullable(z.array(z.string())),
    source: z.object({ uri: z.string(), passwordEnv: Nullable(z.string()) }),
    destinations: z.array(
      z.object({
        host: z.string(),
        defaultsFile: z.string(),
        keyRange: Nullable(z.string()),
        uri: z.string(),
        passwordEnv: Nullable(z.string()),
      }),
    ),
  }),
  /** The snapshot command's result. */
  snapshot: z.object({
    snapshots: z
      .array(z.object({ keyRange: z.string().nullish(), dir: z.string(), name: z.string() }))
      .min(1),
  }),
});

export const ResolveTargetsEvent = z.discriminatedUnion('machine', [
  z.object({ machine: z.literal('backup'), backup: BackupPlan }),
  z.object({ machine: z.literal('reshard'), reshard: ReshardPlan }),
]);

export function backupTargets(plan: z.infer<typeof BackupPlan>) {
  if (plan.keyspaces.length > 0) {
    throw new UsageError('resolving keyspaces through the topology store is not available in this version', {
      hint: 'list the shards as targets: [{ keyspace, shard, host }]',
    });
  }
  const seen = new Set<string>();
  return plan.targets.map((target) => {
    const dir = `${target.keyspace}/${target.shard}`;
    if (seen.has(dir)) throw new UsageError(`input.targets: shard ${dir} is listed twice`);
    seen.add(dir);
    const request: BackupRequest = {
      operation: 'backup',
      storage: plan.storage,
      dir,
      defaultsFile: target.defaultsFile,
      engine: plan.backup.engine,
      compression: plan.backup.compression,
      concurrency: plan.backup.concurrency,
    };
    return { keyspace: target.keyspace, shard: target.shard, host: target.host, dir, request };
  });
}

/** Whether every key of `inner` falls inside `outer`. */
function within(inner: KeyRange, outer: KeyRange): boolean {
  const startInside =
    outer.start.length === 0 || (inner.start.length > 0 && Buffer.compare(outer.start, inner.start) <= 0);
  const endInside =
    outer.end.length === 0 || (inner.end.length > 0 && Buffer.compare(inner.end, outer.end) <= 0);
  return startInside && endInside;
}

export function reshardDestinations(event: z.infer<typeof ReshardPlan>) {
  const { plan, storage } = event;
  return plan.destinations.map((destination) => {
    const range = destination.keyRange === null ? undefined : KeyRange.parse(destination.keyRange);
    const sources = event.snapshot.snapshots
      .filter(
        (snapshot) =>
          !range || (snapshot.keyRange != null && within(KeyRange.parse(snapshot.keyRange), range)),
      )
      .map((snapshot) => `${snapshot.dir}@${snapshot.name}`);
    if (sources.length === 0) {
      throw new UsageError(
        `no snapshot covers destination ${destination.host} (key range ${destination.keyRange})`,
      );
    }
    const multirestore: MultirestoreRequest = {
      operation: 'multirestore',
      storage,
      defaultsFile: destination.defaultsFile,
      sources,
      database: plan.database,
    };
    const diff: DiffRequest = {
      operation: 'diff',
      left: plan.source.uri,
      right: destination.uri,
      tables: plan.tables,
      leftKeyRange: range ? destination.keyRange : null,
      keyColumn: range ? plan.keyColumn : null,
      keyType: range ? plan.keyType : null,
      leftPasswordEnv: plan.source.passwordEnv,
      rightPasswordEnv: destination.passwordEnv,
    };
    return { host: destination.host, keyRange: destination.keyRange, multirestore, diff };
  });
}

export const resolveTargets = defineFunction({
  name: 'resolve-targets',
  event: ResolveTargetsEvent,
  async run(event) {
    if (event.machine === 'backup') return { targets: backupTargets(event.backup) };
    return { destinations: reshardDestinations(event.reshard) };
  },
});

export const handler = lambdaHandler(resolveTargets);
