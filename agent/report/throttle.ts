import { progressFinished } from './progress.ts';
import type { Progress } from './reporter.ts';

/**
 * Lets through the first update of each phase and the one that finishes it at once, and the others
 * at most once per interval: for progress bars, log lines and heartbeats alike.
 */
export class ProgressThrottle {
  readonly #intervalMs: () => number;
  readonly #now: () => number;
  #phase: string | undefined;
  #phaseStarted = 0;
  #last = 0;

  constructor(intervalMs: () => number, now: () => number = Date.now) {
    this.#intervalMs = intervalMs;
    this.#now = now;
  }

  /** Whether to pass `update` on now. */
  admit(update: Progress): boolean {
    const time = this.#now();
    const newPhase = update.phase !== this.#phase;
    if (newPhase) {
      this.#phase = update.phase;
      this.#phaseStarted = time;
    }
    if (!newPhase && !progressFinished(update) && time - this.#last < this.#intervalMs()) return false;
    this.#last = time;
    return true;
  }

  /** Seconds since the current phase began. */
  get phaseSeconds(): number {
    return (this.#now() - this.#phaseStarted) / 1000;
  }
}

/** Forwards progress through a throttle (the agent's callbacks to the state machine). */
export function throttleProgress(
  forward: (update: Progress) => void,
  intervalMs = 500,
  now: () => number = Date.now,
): (update: Progress) => void {
  const throttle = new ProgressThrottle(() => intervalMs, now);
  return (update) => {
    if (throttle.admit(update)) forward(update);
  };
}
