import type { z } from 'zod';
import { errorCodeOf, messageOf, UsageError } from '../core/errors.ts';
import { createLogger, type Logger } from '../core/log.ts';
import { openStorage } from '../core/storage/index.ts';
import type { BackupStorage } from '../core/storage/types.ts';
import { openTopology, type TopologyStore } from '../core/topology/index.ts';
import { type FunctionSettings, readFunctionSettings } from './environment.ts';
import { describeIssue } from './inputs.ts';
import type { RunCommandService } from './run-command.ts';

/** What a function's logic gets besides its event. */
export interface FunctionContext {
  settings: FunctionSettings;
  logger: Logger;
  now: () => Date;
  /** SSM Run Command and task callbacks; default: the AWS SDK (the local runner gives its own). */
  runCommand?: RunCommandService;
  /** Publishes one CloudWatch metric value: in Lambda an embedded-metric-format log line. */
  publishMetric?: (metric: MetricValue) => void;
}

export interface MetricValue {
  namespace: string;
  name: string;
  dimensions: Record<string, string>;
  value: number;
  unit: 'Count';
}

/**
 * One value as CloudWatch's embedded metric format: a log line CloudWatch Logs turns into the
 * metric, with no SDK call and no permission beyond writing logs.
 */
export function embeddedMetricLine(metric: MetricValue, time: Date): string {
  return JSON.stringify({
    _aws: {
      Timestamp: time.getTime(),
      CloudWatchMetrics: [
        {
          Namespace: metric.namespace,
          Dimensions: [Object.keys(metric.dimensions)],
          Metrics: [{ Name: metric.name, Unit: metric.unit }],
        },
      ],
    },
    ...metric.dimensions,
    [metric.name]: metric.value,
  });
}

/** One Lambda: its name (as deployed and in the local runner), its event schema and its logic. */
export interface FunctionDefinition<S extends z.ZodType = z.ZodType, R = unknown> {
  name: string;
  event: S;
  run(event: z.infer<S>, context: FunctionContext): Promise<R>;
}

export function defineFunction<S extends z.ZodType, R>(
  definition: FunctionDefinition<S, R>,
): FunctionDefinition<S, R> {
  return definition;
}

/** The storage the deployment backs up to, closed after `work`. */
export async function withStorage<T>(
  context: FunctionContext,
  work: (storage: BackupStorage) => Promise<T>,
): Promise<T> {
  const storage = await openStorage(context.settings.storageUrl, {
    region: context.settings.region,
    logger: context.logger,
  });
  try {
    return await work(storage);
  } finally {
    await storage.close();
  }
}

/** The deployment's topology store, closed after `work`. */
export async function withTopology<T>(
  url: string,
  logger: Logger,
  work: (store: TopologyStore) => Promise<T>,
): Promise<T> {
  const store = await openTopology(url, { logger });
  try {
    return await work(store);
  } finally {
    (store as { close?: () => void }).close?.();
  }
}

/** Names the first field of the event that fails the schema: `event.input.keyspace: …`. */
export function eventError(error: z.ZodError): UsageError {
  return new UsageError(describeIssue('event', error.issues[0]));
}

/**
 * The error Step Functions sees: its name is the stable code (the Error a Catch matches, USAGE,
 * NO_BACKUP, …), its message the operator's message with what to do.
 */
export function stepFunctionsError(error: unknown): Error {
  const hint = error instanceof Error && 'hint' in error && typeof error.hint === 'string' ? error.hint : '';
  const result = new Error(hint ? `${messageOf(error)} (what to do: ${hint})` : messageOf(error));
  result.name = errorCodeOf(error);
  return result;
}

/** Parses the event and runs the logic; every failure comes out as a stepFunctionsError. */
export async function invokeFunction<R>(
  definition: FunctionDefinition<z.ZodType, R>,
  event: unknown,
  context: FunctionContext,
): Promise<R> {
  try {
    const parsed = definition.event.safeParse(event);
    if (!parsed.success) throw eventError(parsed.error);
    return await definition.run(parsed.data, context);
  } catch (error) {
    throw stepFunctionsError(error);
  }
}

/** The Lambda entry for a definition: settings from the environment, JSON log lines. */
export function lambdaHandler<R>(
  definition: FunctionDefinition<z.ZodType, R>,
): (event: unknown) => Promise<R> {
  let context: FunctionContext | undefined;
  return async (event) => {
    try {
      context ??= {
        settings: readFunctionSettings(),
        // Lambda sends stdout to CloudWatch Logs: one JSON object per line.
        logger: createLogger((record) =>
          console.log(JSON.stringify({ function: definition.name, ...record })),
        ),
        now: () => new Date(),
        publishMetric: (metric) => console.log(embeddedMetricLine(metric, new Date())),
      };
    } catch (error) {
      throw stepFunctionsError(error);
    }
    return invokeFunction(definition, event, context);
  };
}
