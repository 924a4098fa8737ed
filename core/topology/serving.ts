import { KeyRange, uncoveredRanges } from '../keyrange.ts';
import { checkName, type HostRecord, type ShardRecord, TopologyError, type TopologyStore } from './types.ts';

/** Every shard that lists `hostId` among its hosts: a host that serves is never a drill host. */
export async function shardsServedBy(store: TopologyStore, hostId: string): Promise<string[]> {
  const served: string[] = [];
  for (const keyspace of await store.listKeyspaces()) {
    for (const shard of await store.listShards(keyspace)) {
      if (shard.hosts.some((host) => host.id === hostId)) served.push(`${shard.keyspace}/${shard.shard}`);
    }
  }
  return served;
}

/** A shard's key range from its name (`-80`, `80-`, `0` for an unsharded keyspace's one shard). */
function shardRange(shard: string): KeyRange {
  try {
    return KeyRange.parse(shard);
  } catch {
    throw new TopologyError(`shard ${shard} is not named by a key range`, {
      hint: 'resharding switches shards named by their key range (-80, 80-, or 0)',
    });
  }
}

/**
 * What is wrong with a keyspace's serving shards: each key range must be covered by exactly one
 * serving shard (a gap loses queries, an overlap routes a row to two shards). Empty when right.
 */
export function servingCoverage(shards: readonly ShardRecord[]): string[] {
  const serving = shards.filter((shard) => shard.serving !== false);
  if (serving.length === 0) return [];
  const ranges = serving.map((shard) => ({ shard: shard.shard, range: shardRange(shard.shard) }));
  const problems = uncoveredRanges(ranges.map((r) => r.range)).map((gap) => `no serving shard covers ${gap}`);
  const sorted = [...ranges].sort((a, b) => Buffer.compare(a.range.start, b.range.start));
  // The shard reaching furthest so far: any shard starting before its end overlaps it.
  let furthest = sorted[0]!;
  for (const current of sorted.slice(1)) {
    const end = furthest.range.end;
    if (end.length === 0 || Buffer.compare(current.range.start, end) < 0) {
      problems.push(`serving shards ${furthest.shard} and ${current.shard} overlap`);
    }
    if (end.length > 0 && (current.range.end.length === 0 || Buffer.compare(current.range.end, end) > 0)) {
      furthest = current;
    }
  }
  return problems;
}

export interface ServingSwitch {
  keyspace: string;
  /** The shards that stop serving. */
  from: string[];
  /** The shards that start serving, with the host to record as primary when the topology lacks it. */
  to: { shard: string; primary: HostRecord }[];
}

/**
 * Moves serving from the `from` shards to the `to` shards of a keyspace: a `to` shard the topology
 * does not list is registered with its primary; one it lists keeps its hosts (its primary is added
 * when it has none). The resulting serving shards must cover the key range exactly once, checked
 * before anything is written; then the new shards are written serving, and the old ones not.
 */
export async function switchServing(
  store: TopologyStore,
  change: ServingSwitch,
): Promise<{ serving: string[]; notServing: string[] }> {
  const keyspace = checkName('keyspace', change.keyspace);
  const existing = new Map((await store.listShards(keyspace)).map((record) => [record.shard, record]));
  const updated = new Map(existing);
  for (const { shard, primary } of change.to) {
    const record = existing.get(checkName('shard', shard));
    const hosts = record?.hosts ?? [];
    const withPrimary = hosts.some((host) => host.role === 'primary') ? hosts : [...hosts, primary];
    updated.set(shard, { keyspace, shard, hosts: withPrimary, serving: true });
  }
  for (const shard of change.from) {
    const record = existing.get(shard);
    if (!record) throw new TopologyError(`the topology has no shard ${keyspace}/${shard} to stop serving`);
    updated.set(shard, { ...record, serving: false });
  }
  const problems = servingCoverage([...updated.values()]);
  if (problems.length > 0) {
    throw new TopologyError(`switching ${keyspace} would leave it wrong: ${problems.join('; ')}`, {
      hint: 'the destinations must cover the source shard key range exactly; fix the shard records with stepback topo set-shard',
    });
  }
  for (const { shard } of change.to) await store.setShard(updated.get(shard)!);
  for (const shard of change.from) await store.setShard(updated.get(shard)!);
  return { serving: change.to.map((t) => t.shard), notServing: change.from };
}
