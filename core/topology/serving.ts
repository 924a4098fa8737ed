import type { TopologyStore } from './types.ts';

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
