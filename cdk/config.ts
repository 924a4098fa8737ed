import { z } from 'zod';
import { BackupDir } from '../core/paths.ts';
import { SystemdService } from '../core/systemd.ts';
import type { DeploymentDefaults } from '../functions/environment.ts';

/**
 * One deployment environment, read from `cdk.json` → `context.environments.<name>`. Validated at
 * synth time: a bad field fails synth with its path and the rule it broke.
 */

const Identifier = z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/, 'must be letters, digits, "_", "." or "-"');

const TagKey = z
  .string()
  .regex(/^[A-Za-z0-9 _.:/=+@-]{1,128}$/, 'must be an EC2 tag key')
  .refine((key) => !key.startsWith('aws:'), 'must not start with "aws:"');
const TagValue = z.string().regex(/^[A-Za-z0-9 _.:/=+@-]{0,256}$/, 'must be an EC2 tag value');

/** A shard backed up on a named host, for fleets without a topology store. */
export const ExplicitTarget = z.object({
  keyspace: Identifier,
  shard: Identifier,
  /** An EC2 instance id in AWS; locally the path of the instance's defaults-file. */
  host: z.string().min(1).max(4096),
  /** The host's my.cnf; default: `agent.defaultsFile`. */
  defaultsFile: z.string().min(1).max(4096).optional(),
  /** mysqld's systemd unit on the host; default: `agent.systemdService`. */
  systemdService: SystemdService.optional(),
  /** How this shard is backed up; default: `backup.engine`. */
  engine: z.enum(['physical', 'online']).optional(),
});
export type ExplicitTarget = z.infer<typeof ExplicitTarget>;

export const Retention = z.object({
  /** Complete backups always kept per shard. */
  keepCount: z.number().int().min(1).max(10_000),
  /** Complete backups younger than this many days are kept. */
  keepDays: z.number().min(0).max(36_500),
});

const ScheduleExpression = z
  .string()
  .regex(/^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\([^()]+\))$/, {
    message: 'must be an EventBridge schedule such as "cron(0 3 * * ? *)" or "rate(1 day)"',
  });

export const EnvironmentConfig = z
  .object({
    account: z.string().regex(/^\d{12}$/, 'must be a 12-digit AWS account id'),
    region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'must be an AWS region such as eu-west-1'),
    backup: z.strictObject({
      /** When the Backup state machine runs; omit for no schedule. */
      schedule: ScheduleExpression.optional(),
      /** Keyspaces whose shards are resolved from the topology store (needs `topology`). */
      keyspaces: z.array(Identifier).optional(),
      /** Shards and hosts named directly. */
      targets: z.array(ExplicitTarget).optional(),
      /** physical (cold copy of a stopped replica) or online (mariabackup while it serves). */
      engine: z.enum(['physical', 'online']).default('physical'),
      compression: z.enum(['zstd', 'gzip', 'none']).default('zstd'),
      /** Files copied at once on a host. */
      concurrency: z.number().int().min(1).max(64).default(4),
      /** Shards backed up at once. */
      maxParallelShards: z.number().int().min(1).max(40).default(4),
      /**
       * More targets than this run in batches of this size, each a child execution (an execution
       * keeps at most 25,000 events, about 19 per shard, and 256 KB of state).
       */
      shardsPerExecution: z.number().int().min(1).max(1000).default(400),
    }),
    retention: Retention,
    /** Restore drills: each shard's newest backup restored and checked on a drill host (see docs/drills.md). */
    drill: z
      .strictObject({
        /** The drill host (EC2 instance id): an instance kept for drills, never a serving one. */
        host: z
          .string()
          .regex(/^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,4095}$/, 'must be an EC2 instance id')
          .optional(),
        /** The drill instance's my.cnf; default: `agent.defaultsFile`. */
        defaultsFile: z.string().min(1).max(4096).optional(),
        /** When the Drill state machine runs (with a host); default weekly, Sundays 05:00 UTC. */
        schedule: ScheduleExpression.default('cron(0 5 ? * SUN *)'),
        /** Only these keyspaces; default every keyspace with backups. */
        keyspaces: z.array(Identifier).optional(),
        /** Days a passing drill stays good: older, and the drill alarm fires. */
        maxAgeDays: z.number().positive().max(3650).default(8),
      })
      .default({ schedule: 'cron(0 5 ? * SUN *)', maxAgeDays: 8 }),
    /**
     * The scheduled archive of the binary logs, for point-in-time restores: on the shards of
     * `backup.targets`/`backup.keyspaces`, on the host each is backed up on. Omit for no schedule.
     */
    binlogArchive: z
      .strictObject({
        /** How often the archive runs: the recovery point objective, plus one upload. */
        schedule: ScheduleExpression.default('rate(5 minutes)'),
        /** Close the current binary log when it is older than this (`5m`, `90s`); default 5m. */
        maxAge: z
          .string()
          .regex(/^\d+[smh]?$/, 'must be a duration such as 5m, 90s or 0')
          .default('5m'),
      })
      .optional(),
    alarms: z
      .strictObject({
        /** Subscribed to the alarm topic the stack creates. */
        email: z.email().optional(),
        /** An existing SNS topic to use instead of creating one. */
        topicArn: z
          .string()
          .regex(/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$/, 'must be an SNS topic ARN')
          .optional(),
      })
      .default({}),
    /** A customer managed key for the backup bucket; default: a key the stack creates. */
    kmsKeyArn: z
      .string()
      .regex(/^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[0-9a-f-]{36}$/, 'must be a KMS key ARN')
      .optional(),
    /** Where backups go inside the bucket. */
    storagePrefix: BackupDir.default('backups'),
    /** Noncurrent object versions expire after this many days. */
    noncurrentVersionDays: z.number().int().min(1).max(3650).default(30),
    /** The topology store (`ssm:/prefix`) for `keyspaces` and resharding. */
    topology: z
      .string()
      .regex(/^ssm:\/[A-Za-z0-9_./-]*$/, 'must be ssm:/prefix')
      .optional(),
    agent: z
      .strictObject({
        /** The stepback executable on the DB hosts. */
        command: z
          .string()
          .regex(/^\/[A-Za-z0-9_./-]+$/, 'must be an absolute path of [A-Za-z0-9_./-]')
          .default('/usr/local/bin/stepback'),
        /** Sourced (when readable) before the agent runs: AWS_REGION, password variables. */
        environmentFile: z
          .string()
          .regex(/^\/[A-Za-z0-9_./-]+$/, 'must be an absolute path of [A-Za-z0-9_./-]')
          .default('/etc/stepback/agent.env'),
        /** The my.cnf of hosts whose topology record names none. */
        defaultsFile: z.string().min(1).default('/etc/mysql/my.cnf'),
        /** The state machine gives up on a host that is silent this long (the agent beats every 30 s). */
        heartbeatSeconds: z.number().int().min(90).max(3600).default(300),
        /** The longest one agent operation may take; aws:runShellScript stops a script at 48 hours. */
        timeoutHours: z
          .number()
          .min(1)
          .max(48, 'must be at most 48 (aws:runShellScript stops at 48 hours)')
          .default(24),
        /**
         * The instance tag that marks stepback's DB hosts: the state machines may send the agent
         * document only to instances that carry it.
         */
        hostTag: z
          .strictObject({ key: TagKey, value: TagValue })
          .default({ key: 'stepback:db-host', value: 'true' }),
        /**
         * The systemd unit of mysqld on hosts whose topology record or target names none; the agent
         * then stops and starts mysqld through systemctl. Default: the agent runs mysqld itself.
         */
        systemdService: SystemdService.optional(),
      })
      .default({
        command: '/usr/local/bin/stepback',
        environmentFile: '/etc/stepback/agent.env',
        defaultsFile: '/etc/mysql/my.cnf',
        heartbeatSeconds: 300,
        timeoutHours: 24,
        hostTag: { key: 'stepback:db-host', value: 'true' },
      }),
  })
  .strict()
  .superRefine((config, ctx) => {
    if (config.alarms.email && config.alarms.topicArn) {
      ctx.addIssue({
        code: 'custom',
        path: ['alarms', 'topicArn'],
        message: 'give either alarms.email (a topic is created) or alarms.topicArn, not both',
      });
    }
    if (config.backup.keyspaces?.length && !config.topology) {
      ctx.addIssue({
        code: 'custom',
        path: ['topology'],
        message: 'backup.keyspaces needs a topology store (topology: "ssm:/prefix")',
      });
    }
    if (config.binlogArchive && !config.backup.keyspaces?.length && !config.backup.targets?.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['binlogArchive'],
        message: 'the binlog archive runs on the shards of backup.targets or backup.keyspaces: give one',
      });
    }
    if (config.backup.schedule && !config.backup.keyspaces?.length && !config.backup.targets?.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['backup', 'targets'],
        message: 'a scheduled backup needs backup.targets or backup.keyspaces',
      });
    }
  });
export type EnvironmentConfig = z.infer<typeof EnvironmentConfig>;
export type EnvironmentConfigInput = z.input<typeof EnvironmentConfig>;

/** A configuration that does not pass the schema; the message names the field. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Validates one environment's context; throws ConfigError naming `environments.<name>.<field>`. */
export function parseEnvironmentConfig(name: string, value: unknown): EnvironmentConfig {
  const parsed = EnvironmentConfig.safeParse(value);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((issue) => {
    const field = ['environments', name, ...issue.path.map(String)].join('.');
    return `${field}: ${issue.message}`;
  });
  throw new ConfigError(`cdk.json environment "${name}" is invalid:\n  ${lines.join('\n  ')}`);
}

/**
 * The environment `-c env=NAME` picks from `environments` (the cdk.json context). Names are
 * safe stack-name parts.
 */
export function selectEnvironment(
  environments: unknown,
  name: unknown,
): { name: string; config: EnvironmentConfig } {
  if (typeof environments !== 'object' || environments === null || Array.isArray(environments)) {
    throw new ConfigError('cdk.json context has no "environments" object');
  }
  const known = Object.keys(environments);
  if (typeof name !== 'string' || name === '') {
    throw new ConfigError(`pick an environment with -c env=NAME (one of: ${known.join(', ')})`);
  }
  if (!/^[A-Za-z][A-Za-z0-9-]{0,30}$/.test(name)) {
    throw new ConfigError(`environment name ${JSON.stringify(name)} must be letters, digits and "-"`);
  }
  if (!Object.hasOwn(environments, name)) {
    throw new ConfigError(`environment "${name}" is not in cdk.json (known: ${known.join(', ')})`);
  }
  return { name, config: parseEnvironmentConfig(name, (environments as Record<string, unknown>)[name]) };
}

/** What the Lambdas fill in where an input leaves it out, from an environment's settings. */
export function deploymentDefaults(config: EnvironmentConfig): DeploymentDefaults {
  return {
    defaultsFile: config.agent.defaultsFile,
    ...(config.agent.systemdService ? { systemdService: config.agent.systemdService } : {}),
    retention: config.retention,
    drill: { maxAgeDays: config.drill.maxAgeDays },
    backup: {
      engine: config.backup.engine,
      compression: config.backup.compression,
      concurrency: config.backup.concurrency,
      shardsPerExecution: config.backup.shardsPerExecution,
    },
  };
}
