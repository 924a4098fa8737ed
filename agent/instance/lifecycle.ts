import { keepFirstError, StepbackError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import type { MysqlDaemon } from '../mysqld/daemon.ts';
import { acquireInstance, type InstanceLease, recovererOf } from './lease.ts';
import { type InstanceOperation, markerPath } from './marker.ts';
import { captureState, type InstanceState, restoreState } from './state.ts';

/** What an operation holds while it changes an instance. */
export interface HeldInstance {
  /** The state found before anything changed: what is put back. */
  readonly original: InstanceState;
  /** For recording recovery details (and, once the instance is rightly different, a new state to keep). */
  readonly lease: InstanceLease;
}

export interface ChangeInstanceOptions {
  operation: InstanceOperation;
  logger: Logger;
  /** The operation reads from the running server: refuse a stopped one, saying this. */
  needsRunning?: string;
}

/**
 * The one way an operation changes an instance: take the lease (recovering whatever an interrupted
 * operation left), record the state found, do the work, put the instance back as recorded, and drop
 * the marker — or keep it, when the instance could not be put back or the work left something only
 * recovery may finish, so the next stepback command on the instance completes it. The work's error
 * always wins over a cleanup's.
 */
export async function changeInstance<T>(
  daemon: MysqlDaemon,
  options: ChangeInstanceOptions,
  work: (held: HeldInstance) => Promise<T>,
): Promise<T> {
  const { logger } = options;
  const lease = await acquireInstance(daemon, options.operation, logger);
  let keepMarker = false;
  let failure: unknown;
  let result: T | undefined;
  try {
    const original = await captureState(daemon);
    if (options.needsRunning && !original.running) {
      throw new StepbackError(
        `mysqld of ${daemon.config.defaultsFile} is not running: ${options.needsRunning}`,
        {
          hint: 'start it, then run the command again',
        },
      );
    }
    await lease.record({ original });
    try {
      result = await work({ original, lease });
    } catch (error) {
      failure = error;
      keepMarker = recovererOf(lease.marker, markerPath(daemon))?.pending?.(lease.marker) ?? false;
    }
    if (!keepMarker) {
      try {
        await restoreState(daemon, lease.marker.original ?? original, logger);
      } catch (error) {
        keepMarker = true;
        failure = failure === undefined ? error : keepFirstError(logger, failure, error);
      }
    }
  } catch (error) {
    failure = keepFirstError(logger, failure, error);
  } finally {
    if (keepMarker) {
      logger.error(
        `the instance could not be put back as it was; the next stepback command on it finishes the recovery (marker ${markerPath(daemon)})`,
      );
    } else {
      await lease.release();
    }
  }
  if (failure !== undefined) throw failure;
  return result as T;
}
