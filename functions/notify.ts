import { z } from 'zod';
import { defineFunction, lambdaHandler } from './runtime.ts';

/**
 * Turns a caught error into the notice an operator reads (the SNS message) and into the Error and
 * Cause the execution fails with. A Lambda's Cause arrives as its JSON error report; the message
 * inside is what people need.
 */

export const NotifyEvent = z.object({
  machine: z.string(),
  execution: z.string(),
  error: z.object({ Error: z.string(), Cause: z.string().nullish() }),
});

/** The human message in a Cause: a Lambda error report's errorMessage, else the text itself. */
export function causeMessage(cause: string | null | undefined): string {
  if (!cause) return '';
  try {
    const report = JSON.parse(cause) as { errorMessage?: unknown };
    if (typeof report.errorMessage === 'string') return report.errorMessage;
  } catch {}
  return cause;
}

export const notify = defineFunction({
  name: 'notify',
  event: NotifyEvent,
  async run(event) {
    const cause = causeMessage(event.error.Cause);
    const subject = `stepback ${event.machine} failed: ${event.error.Error}`.slice(0, 99);
    const message = [
      `The ${event.machine} state machine failed.`,
      `Execution: ${event.execution}`,
      `Error: ${event.error.Error}`,
      `Cause: ${cause || '(none given)'}`,
    ].join('\n');
    return { error: event.error.Error, cause: cause.slice(0, 32_000), subject, message };
  },
});

export const handler = lambdaHandler(notify);
