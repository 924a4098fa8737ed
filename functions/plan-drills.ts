import { z } from 'zod';
import type { AgentRequestFor } from '../core/agent-request.ts';
import { inspectBackups } from '../core/backups.ts';
import { readDrillRecord } from '../core/drills.ts';
import { ServingHostError, StorageError, VerificationError } from '../core/errors.ts';
import { Segment } from '../core/paths.ts';
import { SNAPSHOT_NAMESPACE } from '../core/storage/layout.ts';
import { shardsServedBy } from '../core/topology/serving.ts';
import { defineFunction, lambdaHandler, withStorage, withTopology } from './runtime.ts';

/**
 * The drills of one Drill run: for every shard (of the listed keyspaces, else of every keyspace in
 * storage), its newest complete backup, unless that backup was drilled already. Refuses a drill
 * host the topology lists as serving before anything runs.
 */

export const PlanDrillsEvent = z.object({
  host: z.string().min(1),
  keyspaces: z.array(Segment).nullish(),
  request: z.looseObject({ operation: z.literal('drill') }),
});

export const planDrills = defineFunction({
  name: 'plan-drills',
  event: PlanDrillsEvent,
  async run(event, context) {
    const { topologyUrl } = context.settings;
    if (topologyUrl) {
      const served = await withTopology(topologyUrl, context.logger, (store) =>
        shardsServedBy(store, event.host),
      );
      if (served.length > 0) {
        throw new ServingHostError(
          `drill host ${event.host} serves ${served.join(', ')} in the topology: a drill replaces its instance's data; nothing was run`,
          { hint: 'name a host kept for drills in the input (cdk.json drill.host)' },
        );
      }
    }
    return withStorage(context, async (storage) => {
      const keyspaces =
        event.keyspaces ?? (await storage.listDirectories('')).filter((k) => k !== SNAPSHOT_NAMESPACE);
      const drills: { keyspace: string; shard: string; dir: string; backup: string; request: object }[] = [];
      const skipped: { dir: string; reason: string }[] = [];
      for (const keyspace of keyspaces) {
        for (const shard of await storage.listDirectories(keyspace)) {
          const dir = `${keyspace}/${shard}`;
          const newest = (await inspectBackups(storage, dir)).filter((s) => s.complete).at(-1);
          if (!newest) {
            skipped.push({ dir, reason: 'no complete backup' });
            continue;
          }
          const drilled = await readDrillRecord(storage.openBackup(dir, newest.name)).catch(
            (error: unknown) => {
              // An unreadable record is drilled again (and rewritten); storage errors stop the plan.
              if (error instanceof VerificationError && !(error instanceof StorageError)) return undefined;
              throw error;
            },
          );
          if (drilled) {
            skipped.push({ dir, reason: `newest backup ${newest.name} was drilled: ${drilled.outcome}` });
            continue;
          }
          const request: AgentRequestFor<'drill'> = {
            ...(event.request as AgentRequestFor<'drill'>),
            dir,
            backup: newest.name,
          };
          drills.push({ keyspace, shard, dir, backup: newest.name, request });
        }
      }
      context.logger.info(`${drills.length} drill(s) to run, ${skipped.length} shard(s) skipped`);
      return { drills, skipped };
    });
  },
});

export const handler = lambdaHandler(planDrills);
