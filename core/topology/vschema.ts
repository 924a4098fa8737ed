import { messageOf, UsageError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { mapConcurrent } from '../stream/concurrency.ts';
import { checkName, type SrvVSchema, type TopologyStore, type VSchema } from './types.ts';

/** Keyspaces read and cells written at once: the stores throttle, and cells are few. */
const concurrency = 8;

export interface CellWrite {
  cell: string;
  ok: boolean;
  error?: string;
}

export interface RebuildVSchemaResult {
  keyspaces: string[];
  cells: CellWrite[];
}

/**
 * Builds the serving vschema from every keyspace's vschema (a keyspace without one contributes an
 * empty vschema) and writes it to each of `cells`, or to every known cell when none are given.
 * Any keyspace that cannot be read fails the rebuild before anything is written; the cells are
 * written concurrently and each write's outcome is reported, so one failing cell does not stop the
 * others. The caller decides what a failed cell means (the CLI exits non-zero).
 */
export async function rebuildVSchema(
  store: TopologyStore,
  options: { cells?: string[]; logger: Logger },
): Promise<RebuildVSchemaResult> {
  const { logger } = options;
  const cells = await targetCells(store, options.cells);
  const keyspaces = await store.listKeyspaces();
  const vschemas = await mapConcurrent(keyspaces, concurrency, async (keyspace) => {
    const vschema = await store.getVSchema(keyspace);
    if (vschema === undefined) logger.info('keyspace has no vschema; serving an empty one', { keyspace });
    return (vschema ?? {}) as VSchema;
  });
  const srvVSchema: SrvVSchema = {
    keyspaces: Object.fromEntries(keyspaces.map((keyspace, index) => [keyspace, vschemas[index]!])),
  };

  const writes = await mapConcurrent(cells, concurrency, async (cell): Promise<CellWrite> => {
    try {
      await store.setSrvVSchema(cell, srvVSchema);
      logger.info('serving vschema written', { cell, keyspaces: keyspaces.length });
      return { cell, ok: true };
    } catch (error) {
      logger.error('could not write the serving vschema', { cell, error: messageOf(error) });
      return { cell, ok: false, error: messageOf(error) };
    }
  });
  return { keyspaces, cells: writes };
}

/** The cells asked for (each must be known, so a typo does not create a cell), or all known ones. */
async function targetCells(store: TopologyStore, requested: string[] | undefined): Promise<string[]> {
  const known = await store.listCells();
  if (!requested || requested.length === 0) {
    if (known.length === 0) {
      throw new UsageError('the topology has no cells to write the serving vschema to', {
        hint: 'add one with stepback topo add-cell --cell NAME',
      });
    }
    return known;
  }
  const unique = [...new Set(requested.map((cell) => checkName('cell', cell)))];
  const unknown = unique.filter((cell) => !known.includes(cell));
  if (unknown.length > 0) {
    throw new UsageError(`unknown cell${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}`, {
      hint: known.length
        ? `known cells are ${known.join(', ')}; add a new one with stepback topo add-cell`
        : 'add cells with stepback topo add-cell',
    });
  }
  return unique;
}
