import { z } from 'zod';
import { InstanceFields, withDefault } from './fields.ts';

/**
 * `stepback writes`: freeze a primary's writes for a cutover (wait for running transactions, then
 * read_only, and super_read_only on MySQL) and report the final position, or let writes in again.
 * The change is meant to last: the instance is not put back afterwards.
 */
export const WritesRequest = z.strictObject({
  ...InstanceFields,
  action: z.enum(['stop', 'start']),
  /** How long `stop` waits for transactions that already wrote to commit, before setting read_only. */
  transactionWaitSeconds: withDefault(z.number().min(0).max(3600), 10),
});
export type WritesRequest = z.output<typeof WritesRequest>;
