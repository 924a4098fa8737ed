import { z } from 'zod';
import { UsageError } from '../core/errors.ts';

/**
 * What a Lambda learns from its environment, read in one place: the backup storage, the topology
 * store, and the defaults of this deployment (cdk.json) applied to execution inputs.
 */

export const DeploymentDefaults = z.object({
  /** The my.cnf of a host when neither the input nor the topology names one. */
  defaultsFile: z.string().min(1),
  /** mysqld's systemd unit when neither the input nor the topology names one; none: the agent runs mysqld. */
  systemdService: z.string().min(1).optional(),
  retention: z.object({ keepCount: z.number().int().min(1), keepDays: z.number().min(0) }),
  backup: z.object({
    engine: z.enum(['physical', 'online']),
    compression: z.enum(['zstd', 'gzip', 'none']),
    concurrency: z.number().int().min(1),
    /** More targets than this run in batches of this size (child executions). */
    shardsPerExecution: z.number().int().min(1).default(400),
  }),
  /** Days a passing drill stays good (default 8). */
  drill: z.object({ maxAgeDays: z.number().positive() }).optional(),
});
export type DeploymentDefaults = z.infer<typeof DeploymentDefaults>;

export interface FunctionSettings {
  /** STEPBACK_STORAGE_URL: where backups are (`s3://bucket/prefix`; a directory locally). */
  storageUrl: string;
  /** STEPBACK_TOPOLOGY_URL: the topology store, when the deployment has one. */
  topologyUrl: string | undefined;
  /** STEPBACK_DEFAULTS: JSON of DeploymentDefaults. */
  defaults: DeploymentDefaults;
  /** AWS_REGION. */
  region: string | undefined;
  /** Locally a host id is the path of the instance's defaults-file (no EC2 instance ids there). */
  hostsAreDefaultsFiles: boolean;
}

/** `{ systemdService }` for a request: the unit named, else the deployment's; nothing when neither names one. */
export function systemdServiceFor(
  settings: FunctionSettings,
  named?: string | null,
): { systemdService?: string } {
  const unit = named ?? settings.defaults.systemdService;
  return unit ? { systemdService: unit } : {};
}

/** The my.cnf the agent uses on `host`: the one named, else the host itself locally, else the default. */
export function defaultsFileFor(settings: FunctionSettings, host: string, named?: string | null): string {
  if (named) return named;
  return settings.hostsAreDefaultsFiles ? host : settings.defaults.defaultsFile;
}

export function readFunctionSettings(env: NodeJS.ProcessEnv = process.env): FunctionSettings {
  const storageUrl = env.STEPBACK_STORAGE_URL;
  if (!storageUrl) throw new UsageError('STEPBACK_STORAGE_URL is not set');
  let defaults: unknown;
  try {
    defaults = JSON.parse(env.STEPBACK_DEFAULTS ?? '');
  } catch {
    throw new UsageError('STEPBACK_DEFAULTS is not JSON');
  }
  return {
    storageUrl,
    topologyUrl: env.STEPBACK_TOPOLOGY_URL || undefined,
    defaults: DeploymentDefaults.parse(defaults),
    region: env.AWS_REGION || undefined,
    hostsAreDefaultsFiles: false,
  };
}
