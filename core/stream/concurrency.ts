import { messageOf } from '../errors.ts';
import type { Logger } from '../log.ts';

export interface ConcurrentOptions {
  /** Aborting it stops new work and is passed on to running work. */
  signal?: AbortSignal;
  /** Where errors after the first are logged. */
  logger?: Logger;
}

/**
 * Runs `work` over `items`, at most `limit` at a time, in order of `items`. The first failure aborts
 * the signal handed to the running calls (so one corrupt file cancels the others), starts nothing
 * new, waits for what is running to settle, and is the error thrown; later ones are logged.
 */
export async function mapConcurrent<T, R>(
  items: Iterable<T>,
  limit: number,
  work: (item: T, index: number, signal: AbortSignal) => Promise<R>,
  options: ConcurrentOptions = {},
): Promise<R[]> {
  if (!Number.isInteger(limit) || limit < 1)
    throw new RangeError(`concurrency must be a positive integer, got ${limit}`);
  const controller = new AbortController();
  const onAbort = () => controller.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) onAbort();

  const iterator = items[Symbol.iterator]();
  const results: R[] = [];
  let next = 0;
  let firstError: { error: unknown } | undefined;

  const worker = async () => {
    for (;;) {
      if (firstError || controller.signal.aborted) return;
      const step = iterator.next();
      if (step.done) return;
      const index = next++;
      try {
        results[index] = await work(step.value, index, controller.signal);
      } catch (error) {
        if (firstError) {
          if (!controller.signal.aborted || error !== controller.signal.reason) {
            options.logger?.debug('a concurrent task failed after the first failure', {
              error: messageOf(error),
            });
          }
        } else {
          firstError = { error };
          controller.abort(error);
        }
      }
    }
  };

  try {
    await Promise.all(Array.from({ length: limit }, worker));
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
  if (firstError) throw firstError.error;
  if (options.signal?.aborted) throw options.signal.reason;
  return results;
}

export async function forEachConcurrent<T>(
  items: Iterable<T>,
  limit: number,
  work: (item: T, index: number, signal: AbortSignal) => Promise<void>,
  options?: ConcurrentOptions,
): Promise<void> {
  await mapConcurrent(items, limit, work, options);
}

/** A counting semaphore: `await acquire()` returns the release function. */
export class Semaphore {
  #available: number;
  readonly #waiting: Array<() => void> = [];

  constructor(permits: number) {
    if (!Number.isInteger(permits) || permits < 1)
      throw new RangeError(`permits must be a positive integer, got ${permits}`);
    this.#available = permits;
  }

  async acquire(signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    if (this.#available > 0) {
      this.#available--;
      return this.#releaser();
    }
    await new Promise<void>((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        const at = this.#waiting.indexOf(grant);
        if (at >= 0) this.#waiting.splice(at, 1);
        reject(signal?.reason);
      };
      this.#waiting.push(grant);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    return this.#releaser();
  }

  async use<T>(work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const release = await this.acquire(signal);
    try {
      return await work();
    } finally {
      release();
    }
  }

  #releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const nextWaiter = this.#waiting.shift();
      if (nextWaiter) nextWaiter();
      else this.#available++;
    };
  }
}
