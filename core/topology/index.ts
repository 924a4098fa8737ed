import { fileURLToPath } from 'node:url';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { UsageError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { FileTopologyStore } from './file.ts';
import { SsmTopologyStore } from './ssm.ts';
import type { TopologyStore } from './types.ts';

export { FileTopologyStore } from './file.ts';
export { SSM_VALUE_LIMIT, SsmTopologyStore } from './ssm.ts';
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
 */
export function openTopology(
  url: string,
  options: { ssmClient?: SSMClient; logger?: Logger } = {},
): TopologyStore {
  if (url.startsWith('file://')) {
    let dir: string;
    try {
      dir = fileURLToPath(url);
    } catch (error) {
      throw new UsageError(`${url} is not a file URL`, { cause: error, hint: 'use file:///absolute/dir' });
    }
    return new FileTopologyStore(dir);
  }
  if (url.startsWith('ssm:')) {
    return new SsmTopologyStore(url.slice('ssm:'.length), {
      ...(options.ssmClient ? { client: options.ssmClient } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
    });
  }
  throw new UsageError(`unsupported topology URL ${JSON.stringify(url)}`, {
    hint: 'use file:///absolute/dir or ssm:/prefix',
  });
}
