import { z } from 'zod';
import { InstanceFields } from './fields.ts';

/**
 * `stepback replication`: stop a replica's replication and report the position it stopped at (a
 * consistent point to compare copies against), or start it again. The change is meant to last: the
 * instance is not put back afterwards.
 */
export const ReplicationRequest = z.strictObject({
  ...InstanceFields,
  action: z.enum(['stop', 'start']),
});
export type ReplicationRequest = z.output<typeof ReplicationRequest>;
