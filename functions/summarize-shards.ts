import { z } from 'zod';
import { defineFunction, lambdaHandler } from './runtime.ts';

/**
 * The end of a Backup run: which shards succeeded and which failed (one failing shard does not stop
 * the others, but the execution fails and names it), including shards of a listed keyspace that had
 * no host to back up on. The error is the shared code when every failed shard failed the same way,
 * else SHARDS_FAILED. A large run summarizes each batch in its child execution, then the batches.
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

const SucceededShard = z.object({
  dir: z.string(),
  host: z.string(),
  backup: z.string().nullable(),
  position: z.string().nullable(),
  bytes: z.object({ raw: z.number(), stored: z.number() }).nullable(),
  seconds: z.number().nullable(),
  warning: z.string().nullable(),
});
const FailedShard = z.object({ dir: z.string(), host: z.string(), error: z.string(), cause: z.string() });

/** What this function returns for one batch: merged into the run's summary. */
const BatchSummary = z.object({
  total: z.number().int(),
  succeeded: z.array(SucceededShard),
  failed: z.array(FailedShard),
});

export const SummarizeShardsEvent = z.object({
  shards: z.array(ShardResult).nullish(),
  batches: z.array(BatchSummary).nullish(),
  unresolved: z.array(UnresolvedShard).nullish(),
});

/** Step Functions' limit on a Fail state's cause. */
const MAX_CAUSE = 32_000;

export const summarizeShards = defineFunction({
  name: 'summarize-shards',
  event: SummarizeShardsEvent,
  async run(event) {
    const shards = event.shards ?? [];
    const succeeded: z.infer<typeof SucceededShard>[] = [
      ...shards
        .filter((s) => s.ok)
        .map((s) => ({
          dir: `${s.keyspace}/${s.shard}`,
          host: s.host,
          backup: s.backup ?? null,
          position: s.position ?? null,
          bytes: s.bytes ?? null,
          seconds: s.seconds ?? null,
          warning: s.warning ?? null,
        })),
      ...(event.batches ?? []).flatMap((batch) => batch.succeeded),
    ];
    const failed: z.infer<typeof FailedShard>[] = [
      ...shards
        .filter((s) => !s.ok)
        .map((s) => ({
          dir: `${s.keyspace}/${s.shard}`,
          host: s.host,
          error: s.error ?? 'FAILED',
          // Each cause bounded: a batch's summary travels back to the parent execution.
          cause: (s.cause ?? '').slice(0, 2000),
        })),
      ...(event.batches ?? []).flatMap((batch) => batch.failed),
      ...(event.unresolved ?? []).map((s) => ({
        dir: `${s.keyspace}/${s.shard}`,
        host: '(none)',
        error: s.error,
        cause: s.cause,
      })),
    ];
    const total = succeeded.length + failed.length;
    const summary = {
      ok: failed.length === 0,
      total,
      succeeded,
      failed,
      warnings: succeeded.filter((s) => s.warning).map((s) => `${s.dir} on ${s.host}: ${s.warning}`),
    };
    if (failed.length === 0) return { ...summary, error: null, cause: null };
    const codes = [...new Set(failed.map((s) => s.error))];
    const cause = `${failed.length} of ${total} shard(s) failed: ${failed
      .map((s) => `${s.dir} on ${s.host}: ${s.error}: ${s.cause}`.trim())
      .join('; ')}`;
    return {
      ...summary,
      error: codes.length === 1 ? codes[0]! : 'SHARDS_FAILED',
      cause: cause.slice(0, MAX_CAUSE),
    };
  },
});

export const handler = lambdaHandler(summarizeShards);
