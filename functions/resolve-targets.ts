import { z } from 'zod';
import type { AgentRequestFor } from '../core/agent-request.ts';
import { UsageError } from '../core/errors.ts';
import { KeyRange } from '../core/keyrange.ts';
import { KeyRangeText } from '../core/manifest.ts';
import type { HostRecord, TopologyStore } from '../core/topology/index.ts';
import { systemdServiceFor } from './environment.ts';
import { assertRequestFits } from './request-size.ts';
import { defineFunction, type FunctionContext, lambdaHandler, withTopology } from './runtime.ts';

/**
 * Which host does what: for a backup, one host per shard (explicit targets, and for keyspaces the
 * topology store's healthy replica of each shard); for a reshard, what each destination restores
 * (the snapshots inside its key range) and how its copy is diffed against the source.
 */

const Target = z.object({
  keyspace: z.string(),
  shard: z.string(),
  host: z.string(),
  defaultsFile: z.string(),
  systemdService: z.string().nullish(),
  /** This shard's own engine; default the plan's. */
  engine: z.enum(['physical', 'online']).nullish(),
});

const BackupPlan = z.object({
  storage: z.string(),
  targets: z.array(Target),
  keyspaces: z.array(z.string()),
  backup: z.object({
    engine: z.enum(['physical', 'online']),
    compression: z.enum(['zstd', 'gzip', 'none']),
    concurrency: z.number(),
  }),
});

const Nullable = <T extends z.ZodType>(schema: T) => schema.nullable();

const ReshardPlan = z.object({
  storage: z.string(),
  keyspace: z.string(),
  shard: z.string(),
  plan: z.object({
    cutover: z.boolean().nullish(),
    dryRun: z.boolean().nullish(),
    sourcePrimary: z
      .object({ host: z.string(), defaultsFile: z.string(), systemdService: z.string().nullish() })
      .nullish(),
    database: z.string(),
    keyColumn: Nullable(z.string()),
    keyType: Nullable(z.enum(['uint64', 'bytes'])),
    tables: Nullable(z.array(z.string())),
    maxLagSeconds: z.number().nullish(),
    writeBinlogs: z.boolean().nullish(),
    source: z.object({ uri: z.string(), passwordEnv: Nullable(z.string()) }),
    destinations: z.array(
      z.object({
        host: z.string(),
        defaultsFile: z.string(),
        systemdService: z.string().nullish(),
        keyRange: Nullable(KeyRangeText),
        uri: z.string(),
        passwordEnv: Nullable(z.string()),
      }),
    ),
  }),
  /** The snapshot command's result. */
  snapshot: z.object({
    snapshots: z
      .array(z.object({ keyRange: KeyRangeText.nullish(), dir: z.string(), name: z.string() }))
      .min(1),
  }),
});

const BinlogArchivePlan = z.object({
  storage: z.string(),
  targets: z.array(Target),
  keyspaces: z.array(z.string()),
  maxAge: z.number(),
  compression: z.enum(['zstd', 'gzip', 'none']),
});

export const ResolveTargetsEvent = z.discriminatedUnion('machine', [
  z.object({ machine: z.literal('backup'), backup: BackupPlan }),
  z.object({ machine: z.literal('binlogArchive'), binlogArchive: BinlogArchivePlan }),
  z.object({ machine: z.literal('reshard'), reshard: ReshardPlan }),
]);

type BackupPlan = z.infer<typeof BackupPlan>;
type Target = z.infer<typeof Target>;

/** A shard of a listed keyspace that has no host to back it up on: that shard fails, the others run. */
export interface UnresolvedShard {
  keyspace: string;
  shard: string;
  error: string;
  cause: string;
}

/**
 * The host a shard is backed up on: a healthy rdonly (it serves no traffic) before a healthy
 * replica, the first by id. The primary only when `engine` is online (which never stops it) and
 * the shard has no healthy replica or rdonly; never for a physical backup.
 */
export function chooseBackupHost(
  hosts: HostRecord[],
  engine: 'physical' | 'online' = 'physical',
): HostRecord | undefined {
  const rank = (host: HostRecord) => (host.role === 'rdonly' ? 0 : 1);
  const replica = hosts
    .filter((host) => host.healthy && host.role !== 'primary')
    .sort((a, b) => rank(a) - rank(b) || a.id.localeCompare(b.id))[0];
  if (replica || engine !== 'online') return replica;
  return hosts
    .filter((host) => host.healthy && host.role === 'primary')
    .sort((a, b) => a.id.localeCompare(b.id))[0];
}

/** Each shard of `keyspaces` with its chosen host, and the shards that have none. */
export async function topologyTargets(
  store: TopologyStore,
  keyspaces: string[],
  defaultsFile: string,
  engine: 'physical' | 'online' = 'physical',
): Promise<{ targets: Target[]; unresolved: UnresolvedShard[] }> {
  const targets: Target[] = [];
  const unresolved: UnresolvedShard[] = [];
  for (const keyspace of keyspaces) {
    const shards = await store.listShards(keyspace);
    if (shards.length === 0) {
      throw new UsageError(`input.keyspaces: keyspace ${keyspace} has no shards in the topology store`, {
        hint: 'check the name with stepback topo show, or add its shards with stepback topo set-shard',
      });
    }
    for (const shard of shards) {
      const host = chooseBackupHost(shard.hosts, engine);
      if (!host) {
        unresolved.push({
          keyspace,
          shard: shard.shard,
          error: 'NO_HEALTHY_REPLICA',
          cause: `shard ${keyspace}/${shard.shard} has no healthy ${engine === 'online' ? 'host' : 'replica or rdonly host'} to back up on (hosts: ${
            shard.hosts.map((h) => `${h.id} ${h.role}${h.healthy ? '' : ' unhealthy'}`).join(', ') || 'none'
          })`,
        });
        continue;
      }
      targets.push({
        keyspace,
        shard: shard.shard,
        host: host.id,
        defaultsFile: host.defaultsFile ?? defaultsFile,
        ...(host.systemdService ? { systemdService: host.systemdService } : {}),
      });
    }
  }
  return { targets, unresolved };
}

/** The explicit targets, then the keyspaces' shards with the host the topology store gives each. */
async function shardHosts(
  plan: { targets: Target[]; keyspaces: string[]; backup?: { engine: 'physical' | 'online' } },
  context: FunctionContext,
) {
  let fromTopology: { targets: Target[]; unresolved: UnresolvedShard[] } = { targets: [], unresolved: [] };
  if (plan.keyspaces.length > 0) {
    const url = context.settings.topologyUrl;
    if (!url) {
      throw new UsageError('input.keyspaces: this deployment has no topology store; list targets instead', {
        hint: 'give targets: [{ keyspace, shard, host }], or set topology in cdk.json',
      });
    }
    fromTopology = await withTopology(url, context.logger, (store) =>
      topologyTargets(store, plan.keyspaces, context.settings.defaults.defaultsFile, plan.backup?.engine),
    );
  }
  const seen = new Set<string>();
  for (const target of [...plan.targets, ...fromTopology.targets]) {
    const dir = `${target.keyspace}/${target.shard}`;
    if (seen.has(dir)) throw new UsageError(`input.targets: shard ${dir} is listed twice`);
    seen.add(dir);
  }
  return { targets: [...plan.targets, ...fromTopology.targets], unresolved: fromTopology.unresolved };
}

/** One backup request per shard: the explicit targets, then the keyspaces' shards from the topology. */
export async function backupTargets(plan: BackupPlan, context: FunctionContext) {
  const fromTopology = await shardHosts(plan, context);
  const targets = fromTopology.targets.map((target) => {
    const dir = `${target.keyspace}/${target.shard}`;
    const request: AgentRequestFor<'backup'> = {
      operation: 'backup',
      storage: plan.storage,
      dir,
      defaultsFile: target.defaultsFile,
      ...systemdServiceFor(context.settings, target.systemdService),
      engine: target.engine ?? plan.backup.engine,
      compression: plan.backup.compression,
      concurrency: plan.backup.concurrency,
    };
    assertRequestFits('backup', request, { defaultsFile: 'input.targets[].defaultsFile' }, 0);
    return { keyspace: target.keyspace, shard: target.shard, host: target.host, dir, request };
  });
  // Past one batch, the machine runs batch after batch as child executions.
  const size = context.settings.defaults.backup.shardsPerExecution;
  if (targets.length <= size)
    return { batched: false, targets, batches: [], unresolved: fromTopology.unresolved };
  const batches: (typeof targets)[] = [];
  for (let start = 0; start < targets.length; start += size) batches.push(targets.slice(start, start + size));
  return { batched: true, targets: [], batches, unresolved: fromTopology.unresolved };
}

/**
 * One binlog archive request per shard, on the host its backups are taken on: a replica, whose
 * binary logs hold the primary's transactions (with log_slave_updates). No batches: an archive
 * run is a few states per shard.
 */
export async function binlogArchiveTargets(
  plan: z.infer<typeof BinlogArchivePlan>,
  context: FunctionContext,
) {
  const resolved = await shardHosts(plan, context);
  const targets = resolved.targets.map((target) => {
    const dir = `${target.keyspace}/${target.shard}`;
    const request: AgentRequestFor<'binlogArchive'> = {
      operation: 'binlogArchive',
      storage: plan.storage,
      dir,
      defaultsFile: target.defaultsFile,
      ...systemdServiceFor(context.settings, target.systemdService),
      maxAge: plan.maxAge,
      compression: plan.compression,
    };
    assertRequestFits('binlogArchive', request, { defaultsFile: 'input.targets[].defaultsFile' }, 0);
    return { keyspace: target.keyspace, shard: target.shard, host: target.host, dir, request };
  });
  return { targets, unresolved: resolved.unresolved };
}

/** Whether every key of `inner` falls inside `outer`. */
function within(inner: KeyRange, outer: KeyRange): boolean {
  const startInside =
    outer.start.length === 0 || (inner.start.length > 0 && Buffer.compare(outer.start, inner.start) <= 0);
  const endInside =
    outer.end.length === 0 || (inner.end.length > 0 && Buffer.compare(inner.end, outer.end) <= 0);
  return startInside && endInside;
}

export function reshardDestinations(event: z.infer<typeof ReshardPlan>, context: FunctionContext) {
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
    const multirestore: AgentRequestFor<'multirestore'> = {
      operation: 'multirestore',
      storage,
      defaultsFile: destination.defaultsFile,
      ...systemdServiceFor(context.settings, destination.systemdService),
      sources,
      database: plan.database,
      // The snapshot's position in the destination: where its catch-up starts.
      checkpoints: true,
      writeBinlogs: plan.writeBinlogs ?? true,
    };
    assertRequestFits(
      `multirestore (destination ${destination.host})`,
      multirestore,
      {
        sources: 'the snapshots of the key range (input.maxFileSize or the key ranges)',
      },
      0,
    );
    const diff: AgentRequestFor<'diff'> = {
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
    // Catch-up reads the binary log of the server the diff compares against: the source replica.
    const catchup: AgentRequestFor<'catchup'> = {
      operation: 'catchup',
      defaultsFile: destination.defaultsFile,
      ...systemdServiceFor(context.settings, destination.systemdService),
      database: plan.database,
      source: plan.source.uri,
      sourcePasswordEnv: plan.source.passwordEnv,
      keyRange: range ? destination.keyRange : null,
      keyColumn: range ? plan.keyColumn : null,
      keyType: range ? plan.keyType : null,
      maxLagSeconds: plan.maxLagSeconds ?? null,
      writeBinlogs: plan.writeBinlogs ?? true,
    };
    return { host: destination.host, keyRange: destination.keyRange, multirestore, catchup, diff };
  });
}

/**
 * What a cutover freezes and switches: the source primary (the input's, else the topology store's
 * primary of the shard), its freeze and unfreeze requests, and the shards that start serving.
 */
export async function reshardCutover(event: z.infer<typeof ReshardPlan>, context: FunctionContext) {
  let primary = event.plan.sourcePrimary ?? undefined;
  if (!primary) {
    const url = context.settings.topologyUrl;
    if (!url)
      throw new UsageError(
        'input.sourcePrimaryHost: a cutover needs the source primary, and there is no topology store',
      );
    const record = await withTopology(url, context.logger, (store) =>
      store.getShard(event.keyspace, event.shard),
    );
    const host = record?.hosts.find((h) => h.role === 'primary');
    if (!host) {
      throw new UsageError(
        `input.sourcePrimaryHost: the topology store lists no primary of ${event.keyspace}/${event.shard} to freeze`,
        { hint: 'give sourcePrimaryHost, or record the primary with stepback topo set-shard' },
      );
    }
    primary = {
      host: host.id,
      defaultsFile: host.defaultsFile ?? context.settings.defaults.defaultsFile,
      systemdService: host.systemdService ?? null,
    };
  }
  const writes = (action: 'stop' | 'start'): AgentRequestFor<'writes'> => ({
    operation: 'writes',
    defaultsFile: primary.defaultsFile,
    ...systemdServiceFor(context.settings, primary.systemdService),
    action,
  });
  return {
    host: primary.host,
    freeze: writes('stop'),
    unfreeze: writes('start'),
    destinations: event.plan.destinations.map((destination) => ({
      shard: destination.keyRange!,
      host: destination.host,
      defaultsFile: destination.defaultsFile,
      systemdService: destination.systemdService ?? null,
    })),
  };
}

export const resolveTargets = defineFunction({
  name: 'resolve-targets',
  event: ResolveTargetsEvent,
  async run(event, context) {
    if (event.machine === 'backup') return backupTargets(event.backup, context);
    if (event.machine === 'binlogArchive') return binlogArchiveTargets(event.binlogArchive, context);
    const destinations = reshardDestinations(event.reshard, context);
    const cutover = event.reshard.plan.cutover ? await reshardCutover(event.reshard, context) : null;
    // A rehearsal takes the path without a freeze, and reports what the cutover would do.
    if (event.reshard.plan.dryRun && cutover) {
      const wouldSwitch = {
        freeze: cutover.host,
        serving: cutover.destinations.map((d) => d.shard),
        notServing: [event.reshard.shard],
      };
      return { destinations, cutover: null, wouldSwitch };
    }
    return { destinations, cutover, wouldSwitch: null };
  },
});

export const handler = lambdaHandler(resolveTargets);
