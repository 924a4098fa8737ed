import { z } from 'zod';
import { StepbackError, UsageError } from '../core/errors.ts';
import { rebuildVSchema as rebuild } from '../core/topology/index.ts';
import { defineFunction, lambdaHandler, withTopology } from './runtime.ts';

/**
 * After a reshard: rebuilds the serving vschema of the cells from every keyspace's vschema in the
 * deployment's topology store (`rebuildVSchema` of core/topology, as `stepback vschema rebuild`).
 */

/** Some cells could not be written; the others were. */
export class VSchemaRebuildError extends StepbackError {
  override readonly code = 'VSCHEMA_REBUILD_FAILED';
}

export const RebuildVSchemaEvent = z.object({
  /** The cells to write; every known cell when null. */
  cells: z.array(z.string()).min(1).nullish(),
});

export const rebuildVSchema = defineFunction({
  name: 'rebuild-vschema',
  event: RebuildVSchemaEvent,
  async run(event, context) {
    const url = context.settings.topologyUrl;
    if (!url) {
      throw new UsageError('this deployment has no topology store to rebuild the serving vschema in', {
        hint: 'set topology in cdk.json',
      });
    }
    const result = await withTopology(url, context.logger, (store) =>
      rebuild(store, { ...(event.cells ? { cells: event.cells } : {}), logger: context.logger }),
    );
    const failed = result.cells.filter((cell) => !cell.ok);
    if (failed.length > 0) {
      throw new VSchemaRebuildError(
        `the serving vschema was not written to ${failed.map((c) => `${c.cell} (${c.error})`).join(', ')}; ${
          result.cells.length - failed.length
        } other cell(s) were written`,
        { hint: 'fix access to the topology store, then run stepback vschema rebuild for those cells' },
      );
    }
    return result;
  },
});

export const handler = lambdaHandler(rebuildVSchema);
