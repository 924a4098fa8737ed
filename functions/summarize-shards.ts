import { z } from 'zod';
import { defineFunction, lambdaHandler } from './runtime.ts';

/**
 * The end of a Backup run: which shards succeeded and which failed (one failing shard does not stop
 * the others, but the execution fails and names it), including shards of a listed keyspace that had
 * no host to back up on. The error is the shared code when every failed shard failed the same way,
 * else SHARDS_FAILED.
 */

const ShardResult = z.object({
  keyspace: z.string(),
  shard: z.string(),
  host: z.string(),
  ok: z.boolean(),
  backup: z.string().nullish(),
  position: z.string().nullish(),
  bytes: z.object({ raw: z.number(), stored: z.number() }).nullish(),
  seconds: z.number().nullish(),
  /** A backup that stands but whose prune failed. */
  warning: z.string().nullish(),
  error: z.string().nullish(),
  cause: z.string().nullish(),
});

const UnresolvedShard = z.object({
  keyspace: z.string(),
  shard: z.string(),
  error: z.string(),
  cause: z.string(),
});

export const SummarizeShardsEvent = z.object({
  shards: z.array(ShardResult),
  unresolved: z.array(UnresolvedShard).nullish(),
});

export const summarizeShards = defineFunction({
  name: 'summarize-shards',
  event: SummarizeShardsEvent,
  async run(event) {
    const unresolved = (event.unresolved ?? []).map((s) => ({ ...s, host: '(none)', ok: false }));
    const shards = [...event.shards, ...unresolved];
    const failed = shards.filter((s) => !s.ok);
    const succeeded = event.shards.filter((s) => s.ok);
    const codes = [...new Set(failed.map((s) => s.error ?? 'FAILED'))];
    const summary = {
      ok: failed.length === 0,
      total: shards.length,
      succeeded: succeeded.map((s) => ({
        dir: `${s.keyspace}/${s.shard}`,
        host: s.host,
        backup: s.backup ?? null,
        position: s.position ?? null,
        bytes: s.bytes ?? null,
        seconds: s.seconds ?? null,
        warning: s.warning ?? null,
      })),
      warnings: succeeded
        .filter((s) => s.warning)
        .map((s) => `${s.keyspace}/${s.shard} on ${s.host}: ${s.warning}`),
      failed: failed.map((s) => ({
        dir: `${s.keyspace}/${s.shard}`,
        host: s.host,
        error: s.error ?? 'FAILED',
      })),
    };
    if (failed.length === 0) return { ...summary, error: null, cause: null };
    const cause = `${failed.length} of ${shards.length} shard(s) failed: ${failed
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
