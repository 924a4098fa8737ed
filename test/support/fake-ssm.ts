import {
  DeleteParametersCommand,
  GetParameterCommand,
  GetParametersByPathCommand,
  ParameterNotFound,
  PutParameterCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';

/**
 * An in-memory Parameter Store behind a mocked SSMClient (no local SSM server exists): it keeps
 * parameters, pages GetParametersByPath at most `pageSize` per page, and records every request
 * so tests can check their shapes.
 */
export function fakeSsm(options: { pageSize?: number } = {}) {
  const parameters = new Map<string, string>();
  const client = new SSMClient({
    region: 'eu-west-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
  });
  const mock = mockClient(client);
  const pageSize = options.pageSize ?? 10;
  /** Names whose PutParameter fails (a cell that cannot be written). */
  const failingPuts = new Set<string>();
  /** Copies of each GetParametersByPath input as sent (the paginator reuses one input object). */
  const pathRequests: Array<Record<string, unknown>> = [];

  mock.on(GetParameterCommand).callsFake((input: { Name: string }) => {
    const value = parameters.get(input.Name);
    if (value === undefined)
      throw new ParameterNotFound({ message: `${input.Name} not found`, $metadata: {} });
    return { Parameter: { Name: input.Name, Value: value, Type: 'String' } };
  });
  mock.on(PutParameterCommand).callsFake((input: { Name: string; Value: string }) => {
    if (failingPuts.has(input.Name)) {
      throw Object.assign(new Error(`User is not authorized to perform ssm:PutParameter on ${input.Name}`), {
        name: 'AccessDeniedException',
      });
    }
    if (input.Value.length > 4096) throw new Error(`value of ${input.Name} is over 4096 characters`);
    parameters.set(input.Name, input.Value);
    return { Version: 1, Tier: 'Standard' };
  });
  mock.on(DeleteParametersCommand).callsFake((input: { Names: string[] }) => {
    if (input.Names.length > 10) throw new Error('at most 10 names per DeleteParameters');
    for (const name of input.Names) parameters.delete(name);
    return { DeletedParameters: input.Names, InvalidParameters: [] };
  });
  mock
    .on(GetParametersByPathCommand)
    .callsFake((input: { Path: string; Recursive?: boolean; MaxResults?: number; NextToken?: string }) => {
      pathRequests.push({ ...input });
      const limit = Math.min(input.MaxResults ?? 10, pageSize);
      const names = [...parameters.keys()]
        .filter((name) => name.startsWith(`${input.Path}/`))
        .filter((name) => input.Recursive || !name.slice(input.Path.length + 1).includes('/'))
        .sort();
      const start = input.NextToken ? Number(input.NextToken) : 0;
      const page = names.slice(start, start + limit);
      return {
        Parameters: page.map((name) => ({ Name: name, Value: parameters.get(name), Type: 'String' })),
        NextToken: start + limit < names.length ? String(start + limit) : undefined,
      };
    });
  return { client, mock, parameters, failingPuts, pathRequests };
}
