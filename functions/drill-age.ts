import { z } from 'zod';
import { DEFAULT_MAX_DRILL_AGE_DAYS, drillReport } from '../core/drill-report.ts';
import { defineFunction, lambdaHandler, withStorage } from './runtime.ts';

/**
 * Whether every shard is proven restorable: the drill report of the deployment's storage, with the
 * number of shards without a passing drill within the threshold published as the metric
 * `stepback/OverdueDrillShards` (dimension Storage), which the drill alarm watches. Runs daily on its
 * own schedule and at the end of every Drill run, where it also says which of the run's drills failed.
 */

export const DRILL_METRIC = { namespace: 'stepback', name: 'OverdueDrillShards' } as const;

const DrillResult = z.object({
  dir: z.string(),
  backup: z.string(),
  ok: z.boolean(),
  tablesChecked: z.number().nullish(),
  error: z.string().nullish(),
  cause: z.string().nullish(),
});

export const DrillAgeEvent = z
  .object({
    maxAgeDays: z.number().positive().nullish(),
    /** The drills of a Drill run, when called at its end. */
    drills: z.array(DrillResult).nullish(),
  })
  .nullish();

/** Step Functions' limit on a Fail state's cause. */
const MAX_CAUSE = 32_000;

export const drillAge = defineFunction({
  name: 'drill-age',
  event: DrillAgeEvent,
  run: (event, context) =>
    withStorage(context, async (storage) => {
      const maxAgeDays =
        event?.maxAgeDays ?? context.settings.defaults.drill?.maxAgeDays ?? DEFAULT_MAX_DRILL_AGE_DAYS;
      const report = await drillReport(storage, { now: context.now(), maxAgeDays });
      context.publishMetric?.({
        ...DRILL_METRIC,
        dimensions: { Storage: context.settings.storageUrl },
        value: report.overdue,
        unit: 'Count',
      });
      const drills = event?.drills ?? [];
      const failed = drills.filter((d) => !d.ok);
      return {
        ok: failed.length === 0,
        drilled: drills.length,
        passed: drills.filter((d) => d.ok).map((d) => `${d.dir}/${d.backup}`),
        failed: failed.map((d) => ({
          backup: `${d.dir}/${d.backup}`,
          error: d.error ?? '',
          cause: d.cause ?? '',
        })),
        shards: report.shards.length,
        overdue: report.shards
          .filter((s) => s.overdue)
          .map((s) => ({ dir: `${s.keyspace}/${s.shard}`, state: s.state })),
        maxAgeDays,
        ...(failed.length > 0
          ? {
              error: failed.every((d) => d.error === failed[0]!.error)
                ? (failed[0]!.error ?? 'DRILL_FAILED')
                : 'DRILL_FAILED',
              cause: `${failed.length} of ${drills.length} drill(s) failed: ${failed
                .map((d) => `${d.dir}/${d.backup}: ${d.cause ?? d.error}`)
                .join('; ')}`.slice(0, MAX_CAUSE),
            }
          : {}),
      };
    }),
});

export const handler = lambdaHandler(drillAge);
