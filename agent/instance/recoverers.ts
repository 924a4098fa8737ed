import { multirestoreRecoverer } from '../engines/logical/multirestore/recovery.ts';
import { snapshotRecoverer } from '../engines/logical/snapshot/recovery.ts';
import { backupRecoverer } from '../engines/online/recovery.ts';
import { restoreRecoverer } from '../engines/physical/recovery.ts';
import type { InstanceOperation, Recoverer } from './marker.ts';

/**
 * What each operation that changes an instance leaves to recover when it is killed. Static, so any
 * command finishes or undoes any interrupted operation, whichever modules it happened to load.
 */
export const recoverers: Record<InstanceOperation, Recoverer | undefined> = {
  // A backup changes the state (stopped, read-only, replication), which every recovery puts back; an
  // online backup of MySQL also leaves its clone beside the datadir.
  backup: backupRecoverer,
  restore: restoreRecoverer,
  snapshot: snapshotRecoverer,
  multirestore: multirestoreRecoverer,
  // A drill is a restore that never commits: recovery puts the drill instance's own files back.
  drill: restoreRecoverer,
  // A catch-up commits its position with its rows: the next run resumes from the checkpoint.
  catchup: undefined,
  // Its one change is recorded as the state to keep before the work ends.
  replication: undefined,
  writes: undefined,
};
