import { z } from 'zod';
import { defineFunction, lambdaHandler } from './runtime.ts';

/**
 * The end of a Backup run: which shards succeeded and which failed (one failing shard does not stop
 * the others, but the execution fails and names it). The error is the shared code when every
 * failed shard failed the same way, else SHARDS_FAILED.
 */

const ShardResult = z.object({
  keyspace: z.string(),
  shard: z.string(),
  host: z.string(),
  ok: z.boolean(),
  backup: z.string().nullish(),
  error: z.string().nullish(),
  cause: z.string().nullish(),
});

export const SummarizeShardsEvent = z.object({ shards: z.array(ShardResult) });

export const summarizeShards = defineFunction({
  name: 'summarize-shards',
  event: SummarizeShardsEvent,
  async run(event) {
    const failed = event.shards.filter((s) => !s.ok);
    const succeeded = event.shards.filter((s) => s.ok);
    const codes = [...new Set(failed.map((s) => s.error ?? 'FAILED'))];
    const summary = {
      ok: failed.length === 0,
      total: event.shards.length,
      succeeded: succeeded.map((s) => ({
        dir: `${s.keyspace}/${s.shard}`,
        host: s.host,
        backup: s.backup ?? null,
      })),
      failed: failed.map((s) => ({
        dir: `${s.keyspace}/${s.shard}`,
        host: s.host,
        error: s.error ?? 'FAILED',
      })),
    };
    if (failed.length === 0) return { ...summary, error: null, cause: null };
    const cause = `${failed.length} of ${event.shards.length} shard(s) failed: ${failed
      .map((s) => `${s.keyspace}/${s.shard} on ${s.host}: ${s.error ?? 'FAILED'}: ${s.cause ?? ''}`.trim())
      .join('; ')}`;
    return {
      ...summary,
      error: codes.length === 1 ? codes[0]! : 'SHARDS_FAILED',
      cause: cause.slice(0, 32_000),
    };
  },
});

export const handler = lambdaHandler(summarizeShards);
