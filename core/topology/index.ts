import { fileURLToPath } from 'node:url';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { UsageError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { TopologyStore } from './types.ts';

export { type ServingSwitch, servingCoverage, switchServing } from './serving.ts';
export type {
  HostRecord,
  ShardRecord,
  SrvVSchema,
  TopologyStore,
  VSchema,
} from './types.ts';
export {
  HostRecordSchema,
  ShardRecordSchema,
  SrvVSchemaSchema,
  TopologyError,
  TopologyName,
  VSchemaSchema,
} from './types.ts';
export { type CellWrite, type RebuildVSchemaResult, rebuildVSchema } from './vschema.ts';

/**
 * The topology store a URL names: `file:///abs/dir` (a directory tree) or `ssm:/prefix` (SSM
 * Parameter Store; the client comes from the standard AWS configuration unless one is given).
 * Each store is loaded on first use, so a directory store never loads the AWS SDK.
 */
export async function openTopology(
  url: string,
  options: { ssmClient?: SSMClient; logger?: Logger } = {},
): Promise<TopologyStore> {
  if (url.startsWith('file://')) {
    let dir: string;
    try {
      dir = fileURLToPath(url);
    } catch (error) {
      throw new UsageError(`${url} is not a file URL`, { cause: error, hint: 'use file:///absolute/dir' });
    }
    const { FileTopologyStore } = await import('./file.ts');
    return new FileTopologyStore(dir);
  }
  if (url.startsWith('ssm:')) {
    const { SsmTopologyStore } = await import('./ssm.ts');
    return new SsmTopologyStore(url.slice('ssm:'.length), {
      ...(options.ssmClient ? { client: options.ssmClient } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
    });
  }
  throw new UsageError(`unsupported topology URL ${JSON.stringify(url)}`, {
    hint: 'use file:///absolute/dir or ssm:/prefix',
  });
}
