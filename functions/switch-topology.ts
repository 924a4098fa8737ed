import { z } from 'zod';
import { StepbackError, UsageError } from '../core/errors.ts';
import { switchServing } from '../core/topology/index.ts';
import { defineFunction, lambdaHandler, withTopology } from './runtime.ts';

/**
 * The last step of a cutover: the destination shards start serving and the source shard stops, in
 * the topology store, unless the source has been frozen longer than the input allows (then nothing
 * is switched and the execution unfreezes the source). The serving vschema is rebuilt after it.
 */

/** The source stayed frozen longer than freezeTimeoutSeconds. */
export class FreezeTimeoutError extends StepbackError {
  override readonly code = 'FREEZE_TIMEOUT';
}

export const SwitchTopologyEvent = z.object({
  keyspace: z.string(),
  /** The source shard, which stops serving. */
  shard: z.string(),
  destinations: z
    .array(
      z.object({
        shard: z.string(),
        host: z.string(),
        defaultsFile: z.string().nullish(),
        systemdService: z.string().nullish(),
      }),
    )
    .min(1),
  /** When the source primary's writes were frozen (ISO 8601), and for how long they may be. */
  frozenAt: z.iso.datetime({ offset: true }),
  freezeTimeoutSeconds: z.number().positive(),
});

export const switchTopology = defineFunction({
  name: 'switch-topology',
  event: SwitchTopologyEvent,
  async run(event, context) {
    const url = context.settings.topologyUrl;
    if (!url) {
      throw new UsageError('this deployment has no topology store to switch the serving shards in', {
        hint: 'set topology in cdk.json, or run the reshard without cutover',
      });
    }
    const frozenSeconds = (Date.now() - Date.parse(event.frozenAt)) / 1000;
    if (frozenSeconds > event.freezeTimeoutSeconds) {
      throw new FreezeTimeoutError(
        `writes on ${event.keyspace}/${event.shard} have been frozen ${frozenSeconds.toFixed(1)}s, longer than freezeTimeoutSeconds (${event.freezeTimeoutSeconds}): the topology is left as it was`,
        {
          hint: 'let the destinations catch up closer first (a smaller maxLagSeconds), or allow a longer freeze',
        },
      );
    }
    const switched = await withTopology(url, context.logger, (store) =>
      switchServing(store, {
        keyspace: event.keyspace,
        from: [event.shard],
        to: event.destinations.map((destination) => ({
          shard: destination.shard,
          primary: {
            id: destination.host,
            role: 'primary' as const,
            healthy: true,
            ...(destination.defaultsFile?.startsWith('/') ? { defaultsFile: destination.defaultsFile } : {}),
            ...(destination.systemdService ? { systemdService: destination.systemdService } : {}),
          },
        })),
      }),
    );
    return { ...switched, frozenSeconds };
  },
});

export const handler = lambdaHandler(switchTopology);
