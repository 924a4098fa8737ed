import { UsageError } from '../core/errors.ts';

/**
 * The state machines hand each agent request to States.Base64Encode, which takes at most 10,000
 * characters: a larger request would fail the execution at that state with a bare
 * States.Runtime. Requests are checked here instead, naming the input field that made them large.
 */
export const MAX_REQUEST_CHARACTERS = 10_000;

/** What the state machine adds to a request before encoding it (the chosen backup's name). */
const MERGE_ALLOWANCE = 200;

/**
 * Throws a UsageError when `request` (JSON, as States.JsonToString writes it) could pass the limit.
 * `fields` maps request keys to the input field they come from (default `input.<key>`).
 */
export function assertRequestFits(
  what: string,
  request: object,
  fields: Record<string, string> = {},
  allowance = MERGE_ALLOWANCE,
): void {
  const length = JSON.stringify(request).length;
  if (length + allowance <= MAX_REQUEST_CHARACTERS) return;
  const [largest] = Object.entries(request)
    .map(([key, value]) => [key, JSON.stringify(value ?? null).length] as const)
    .sort((a, b) => b[1] - a[1]);
  const field = largest ? (fields[largest[0]] ?? `input.${largest[0]}`) : 'input';
  throw new UsageError(
    `${field}: the ${what} request would be ${length} characters of JSON, over the ${MAX_REQUEST_CHARACTERS - allowance} an agent request may take (States.Base64Encode takes at most ${MAX_REQUEST_CHARACTERS}); ${largest?.[1] ?? 0} of them come from ${field}`,
    { hint: `shorten ${field}, or split the work into several executions` },
  );
}
