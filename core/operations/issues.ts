import type { z } from 'zod';
import { FieldError } from '../errors.ts';

/** The value at `path` inside `given`, when there is one. */
function valueAt(given: unknown, path: readonly PropertyKey[]): unknown {
  let value = given;
  for (const key of path) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

/** zod's wording of the common rules, in an operator's words. */
function ruleOf(issue: z.core.$ZodIssue, value: unknown): string {
  switch (issue.code) {
    case 'invalid_type':
      return value === undefined ? 'is required' : `must be a ${issue.expected}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map(String).join(', ')}`;
    case 'too_small':
      return `must be ${issue.inclusive === false ? 'more than' : 'at least'} ${String(issue.minimum)}`;
    case 'too_big':
      return `must be ${issue.inclusive === false ? 'less than' : 'at most'} ${String(issue.maximum)}`;
    case 'unrecognized_keys':
      return `has unknown fields ${issue.keys.join(', ')}`;
    default:
      return issue.message;
  }
}

/**
 * Turns the first failure of a schema into an error naming the field by its path, the rule and the
 * value given; the caller names the field its own way (`error.named(…)`).
 */
export function fieldErrorOf(error: z.ZodError, given: unknown, hint?: string): FieldError {
  const issue = error.issues[0];
  const path = issue?.path ?? [];
  const value = valueAt(given, path);
  const shown = typeof value === 'string' && value.length <= 200 ? `, got ${JSON.stringify(value)}` : '';
  // zod quotes an unknown key whole: cut, so a hostile request cannot make a huge error.
  const rule = issue ? ruleOf(issue, value) : 'invalid';
  const detail = rule.length > 300 ? `${rule.slice(0, 300)}…` : rule;
  return new FieldError(path.map(String), `${detail}${shown}`, hint ? { hint } : {});
}
