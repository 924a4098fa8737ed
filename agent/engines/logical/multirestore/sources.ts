import { ManifestError, UsageError } from '../../../../core/errors.ts';
import type { Logger } from '../../../../core/log.ts';
import type { LogicalManifest, TableDefinition } from '../../../../core/manifest.ts';
import { chooseSnapshot } from '../../../../core/snapshots.ts';
import type { BackupHandle, BackupStorage } from '../../../../core/storage/types.ts';

/** One `--sources` entry: a backup directory and, optionally, the backup in it. */
export interface SourceSpec {
  dir: string;
  name?: string | undefined;
}

/** A chosen logical snapshot to load from. */
export interface RestoreSource {
  /** Position in `--sources`, from 0: the checkpoint row of this source. */
  index: number;
  /** The snapshot's address (`shop/0/-80`), wherever storage keeps it. */
  dir: string;
  handle: BackupHandle;
  manifest: LogicalManifest;
}

/** The newest complete (or named) snapshot of each source; each must be a logical snapshot. */
export async function chooseSources(
  storage: BackupStorage,
  specs: readonly SourceSpec[],
  logger: Logger,
): Promise<RestoreSource[]> {
  const sources: RestoreSource[] = [];
  for (const [index, spec] of specs.entries()) {
    const { handle, manifest } = await chooseSnapshot(storage, spec.dir, { name: spec.name }, logger);
    if (manifest.engine !== 'logical') {
      throw new UsageError(
        `${spec.dir}/${handle.name} is a ${manifest.engine} backup, not a logical snapshot`,
        {
          hint: 'multirestore loads snapshots made by stepback snapshot; restore physical backups with stepback restore',
        },
      );
    }
    sources.push({ index, dir: spec.dir, handle, manifest });
  }
  const seen = new Map<string, number>();
  for (const source of sources) {
    const key = `${source.dir}@${source.handle.name}`;
    if (seen.has(key))
      throw new UsageError(`--sources entries ${seen.get(key)! + 1} and ${source.index + 1} are both ${key}`);
    seen.set(key, source.index);
  }
  return sources;
}

function describeColumns(table: TableDefinition): string {
  return table.columns.map((c) => `${c.name} ${c.type}${c.generated ? ' generated' : ''}`).join(', ');
}

/**
 * All sources must hold the same tables, views, columns and stored programs (their data goes into
 * one schema).
 * Throws a ManifestError listing every difference against the first source.
 */
export function checkSameSchema(sources: readonly RestoreSource[]): void {
  const [first, ...rest] = sources;
  if (!first) return;
  const label = (source: RestoreSource) => `${source.dir}@${source.handle.name}`;
  const differences: string[] = [];
  const objects = (source: RestoreSource) => new Map(source.manifest.tables.map((t) => [t.name, t]));
  const reference = objects(first);
  for (const source of rest) {
    const other = objects(source);
    for (const [name, object] of reference) {
      const match = other.get(name);
      if (!match) differences.push(`${label(source)} has no ${object.type} ${JSON.stringify(name)}`);
      else if (match.type !== object.type) {
        differences.push(
          `${JSON.stringify(name)} is a ${object.type} in ${label(first)} but a ${match.type} in ${label(source)}`,
        );
      } else if (object.type === 'table' && match.type === 'table') {
        if (describeColumns(object) !== describeColumns(match)) {
          differences.push(
            `table ${JSON.stringify(name)} has columns (${describeColumns(object)}) in ${label(first)} but (${describeColumns(match)}) in ${label(source)}`,
          );
        }
        if (object.primaryKey.join(',') !== match.primaryKey.join(',')) {
          differences.push(`table ${JSON.stringify(name)} has another primary key in ${label(source)}`);
        }
      }
    }
    for (const [name, object] of other) {
      if (!reference.has(name))
        differences.push(`${label(source)} has an extra ${object.type} ${JSON.stringify(name)}`);
    }
    const programs = (s: RestoreSource) =>
      new Map(
        (s.manifest.storedPrograms ?? []).map((p) => [`${p.kind} ${JSON.stringify(p.name)}`, p.create]),
      );
    const referencePrograms = programs(first);
    const otherPrograms = programs(source);
    for (const [name, create] of referencePrograms) {
      if (!otherPrograms.has(name)) differences.push(`${label(source)} has no ${name}`);
      else if (otherPrograms.get(name) !== create) differences.push(`${name} differs in ${label(source)}`);
    }
    for (const name of otherPrograms.keys()) {
      if (!referencePrograms.has(name)) differences.push(`${label(source)} has an extra ${name}`);
    }
  }
  if (differences.length > 0) {
    throw new ManifestError(`the sources do not hold the same schema: ${differences.join('; ')}`, undefined, {
      hint: 'snapshot every source from the same schema (after the same migrations) and run multirestore again',
    });
  }
}
