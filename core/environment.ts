/**
 * Every environment variable stepback reads, in one place. Everything else receives typed options.
 */
export interface StepbackEnvironment {
  /** AWS_ENDPOINT_URL_S3: an S3-compatible endpoint (the SDK's standard variable). */
  s3Endpoint: string | undefined;
  /** STEPBACK_S3_PATH_STYLE=1: path-style bucket addressing, for servers without virtual hosts. */
  s3PathStyle: boolean;
  /** AWS_REGION or AWS_DEFAULT_REGION. */
  region: string | undefined;
  /** STEPBACK_LOG_LEVEL: debug, info, warn or error. */
  logLevel: string | undefined;
  /**
   * STEPBACK_FAULT_PHASE=<operation>:<phase>: for the fault suite only, the agent kills itself with
   * SIGKILL when that operation reaches that phase. Unset, nothing happens.
   */
  faultPhase: string | undefined;
  /**
   * A variable the operator named on the command line (`--replication-password-env VAR`): secrets
   * travel by variable name, never as arguments that `ps` shows.
   */
  variable(name: string): string | undefined;
}

function flag(value: string | undefined): boolean {
  return value !== undefined && /^(1|true|yes|on)$/i.test(value);
}

export function readEnvironment(env: NodeJS.ProcessEnv = process.env): StepbackEnvironment {
  return {
    s3Endpoint: env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined,
    s3PathStyle: flag(env.STEPBACK_S3_PATH_STYLE),
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || undefined,
    logLevel: env.STEPBACK_LOG_LEVEL || undefined,
    faultPhase: env.STEPBACK_FAULT_PHASE || undefined,
    variable: (name) => env[name],
  };
}
