import { defineDiffSuite } from '../support/diff-suite.ts';
import { createTestInstance } from '../support/mariadb.ts';
import { tempDir } from '../support/root.ts';

defineDiffSuite({
  name: 'MariaDB 10.11',
  // Each server gets its own tmpdir: in the shared /tmp, bootstrapping servers have been seen to lose
  // their temporary tables ("Could not remove temporary table … error: 2").
  create: async (name) => createTestInstance({ name, extraCnf: [`tmpdir=${await tempDir(`${name}-tmp`)}`] }),
  // MariaDB's sequence engine: seq_1_to_N in any database.
  numbers: (n) => `seq_1_to_${n}`,
});
