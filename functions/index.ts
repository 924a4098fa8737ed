import { chooseBackup } from './choose-backup.ts';
import { commandFailed } from './command-failed.ts';
import { listBackups } from './list-backups.ts';
import { notify } from './notify.ts';
import { pruneBackups } from './prune-backups.ts';
import { rebuildVSchema } from './rebuild-vschema.ts';
import { resolveTargets } from './resolve-targets.ts';
import type { FunctionDefinition } from './runtime.ts';
import { summarizeShards } from './summarize-shards.ts';
import { validateInput } from './validate-input.ts';
import { validateManifest } from './validate-manifest.ts';

/** Every Lambda by its deployed name (the entry file is `functions/<name>.ts`). */
export const functionDefinitions: Record<string, FunctionDefinition> = Object.fromEntries(
  [
    validateInput,
    resolveTargets,
    listBackups,
    chooseBackup,
    validateManifest,
    pruneBackups,
    summarizeShards,
    rebuildVSchema,
    notify,
    commandFailed,
  ].map((definition) => [definition.name, definition as FunctionDefinition]),
);

export const functionNames = Object.keys(functionDefinitions);
