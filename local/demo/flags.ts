import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { messageOf, UsageError } from '../../core/errors.ts';
import { openStorage } from '../../core/storage/index.ts';
import { demoDatabase } from './sample-data.ts';

/** The demo's flags as given on the command line. */
export interface DemoFlagsGiven {
  keep?: boolean | undefined;
  rows: string;
  storage?: string | undefined;
}

export interface DemoFlags {
  rows: number;
  keep: boolean;
  storageUrl?: string;
}

/** `file://./dir` relative to the working directory, as an absolute file URL. */
export function absoluteUrl(url: string, cwd: string): string {
  return url.startsWith('file://./')
    ? pathToFileURL(path.resolve(cwd, url.slice('file://'.length))).href
    : url;
}

/**
 * `npm run demo --keep` (without `--`) hands `--keep` to npm, which keeps it as its own setting
 * `npm_config_keep` and runs the demo without it. The demo's flags are no npm settings, so one in
 * the environment of an npm script was meant for the demo.
 */
export function flagsTakenByNpm(env: NodeJS.ProcessEnv): string[] {
  if (env.npm_lifecycle_event === undefined) return [];
  return ['keep', 'rows', 'storage'].filter((flag) => env[`npm_config_${flag}`] !== undefined);
}

/**
 * Checks every flag before anything starts (no server, no temp directory): a bad value is a usage
 * error naming the flag, not three failed executions minutes later.
 */
export async function checkDemoFlags(
  given: DemoFlagsGiven,
  env: NodeJS.ProcessEnv,
  cwd: string,
  extraArguments: readonly string[] = [],
): Promise<DemoFlags> {
  const taken = flagsTakenByNpm(env);
  if (taken.length > 0) {
    const flags = taken.map((flag) => (flag === 'keep' ? '--keep' : `--${flag} …`));
    throw new UsageError(
      `npm took ${taken.map((flag) => `--${flag}`).join(', ')} as its own setting (npm_config_${taken[0]}), so the demo never saw it`,
      { hint: `put the demo's flags after --: npm run demo -- ${flags.join(' ')}` },
    );
  }
  if (extraArguments.length > 0) {
    throw new UsageError(`the demo takes no arguments, got ${extraArguments.join(' ')}`, {
      hint: 'see stepback-local demo --help',
    });
  }
  const rows = Number(given.rows);
  if (!Number.isInteger(rows) || rows < 100 || rows > 100_000_000) {
    throw new UsageError(`--rows must be a whole number from 100 to 100000000, got ${given.rows}`);
  }
  const flags: DemoFlags = { rows, keep: Boolean(given.keep) };
  if (given.storage === undefined) return flags;
  const storageUrl = absoluteUrl(given.storage, cwd);
  let storage: Awaited<ReturnType<typeof openStorage>>;
  try {
    storage = await openStorage(storageUrl, { region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION });
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    throw new UsageError(`--storage: ${error.message}`, { hint: error.hint });
  }
  try {
    // Reached now, so a wrong bucket or endpoint fails before five servers start.
    await storage.listBackups(`${demoDatabase}/0`);
  } catch (error) {
    throw new UsageError(`--storage ${given.storage} cannot be read: ${messageOf(error)}`, {
      hint: 'check the URL, the endpoint and the credentials, or leave --storage out to use a temp directory',
    });
  } finally {
    await storage.close();
  }
  return { ...flags, storageUrl };
}
