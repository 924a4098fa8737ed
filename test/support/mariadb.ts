import {
  createPrivateInstance,
  type PrivateInstance,
  type PrivateInstanceOptions,
  serverBinaries,
  startReplication,
  waitForReplica,
} from '../../local/private-instance.ts';
import { testRoot } from './root.ts';

export { serverBinaries, startReplication, waitForReplica };

/** A private mariadbd for one test file, under the run's temp root (removed by the global teardown). */
export type TestInstance = PrivateInstance;

export type TestInstanceOptions = Omit<PrivateInstanceOptions, 'parent'>;

export async function createTestInstance(options: TestInstanceOptions): Promise<TestInstance> {
  return createPrivateInstance({ ...options, parent: await testRoot() });
}
