import { chooseBackup } from './choose-backup.ts';
import { commandFailed } from './command-failed.ts';
import { drillAge } from './drill-age.ts';
import { listBackups } from './list-backups.ts';
import { notify } from './notify.ts';
import { planDrills } from './plan-drills.ts';
import { pruneBackups } from './prune-backups.ts';
import { rebuildVSchema } from './rebuild-vschema.ts';
import { resolveTargets } from './resolve-targets.ts';
import type { FunctionDefinition } from './runtime.ts';
import { summarizeShards } from './summarize-shards.ts';
import { switchTopology } from './switch-topology.ts';
import { validateInput } from './validate-input.ts';
import { validateManifest } from './validate-manifest.ts';

/** Every Lambda by its deployed name (the entry file is `functions/<name>.ts`): the one list. */
export const functionDefinitions = {
  'validate-input': validateInput,
  'resolve-targets': resolveTargets,
  'list-backups': listBackups,
  'choose-backup': chooseBackup,
  'validate-manifest': validateManifest,
  'prune-backups': pruneBackups,
  'summarize-shards': summarizeShards,
  'rebuild-vschema': rebuildVSchema,
  'plan-drills': planDrills,
  'drill-age': drillAge,
  'switch-topology': switchTopology,
  notify,
  'command-failed': commandFailed,
} satisfies Record<string, FunctionDefinition>;

export type FunctionName = keyof typeof functionDefinitions;
export const FUNCTION_NAMES = Object.keys(functionDefinitions) as FunctionName[];

/** The definition of a deployed function, by the name in its ARN; undefined for another name. */
export function functionNamed(name: string): FunctionDefinition | undefined {
  return Object.hasOwn(functionDefinitions, name) ? functionDefinitions[name as FunctionName] : undefined;
}
