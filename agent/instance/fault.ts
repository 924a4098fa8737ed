import { readEnvironment } from '../../core/environment.ts';
import type { InstanceOperation } from './marker.ts';

/** The named points where the fault suite kills an operation; each is where a real crash could land. */
export type FaultPhase =
  | 'backup:quiesced'
  | 'backup:stopped'
  | 'backup:copied'
  /** An online backup of MySQL: the clone made, the throwaway mysqld running on it. */
  | 'backup:cloned'
  | 'restore:staged'
  | 'restore:swapped'
  | 'restore:started'
  | 'restore:committed'
  | 'restore:started-empty'
  | 'snapshot:quiesced'
  | 'snapshot:dumped'
  | 'multirestore:loading'
  | 'drill:inspecting'
  | 'catchup:applying';

const armed = readEnvironment().faultPhase;

/**
 * The test-only fault hook: when STEPBACK_FAULT_PHASE names this phase, the process dies here as a
 * crash or `kill -9` would end it, with no cleanup. Off unless the variable is set.
 */
export function reachedPhase(phase: FaultPhase & `${InstanceOperation}:${string}`): void {
  if (armed === phase) process.kill(process.pid, 'SIGKILL');
}
