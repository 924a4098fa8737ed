import { describeProgress, progressFinished } from './progress.ts';
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

/**
 * The progress lines of one stream of updates (a command, or one task of an execution): each phase
 * starts with a line, shows one at most every interval, and — without a terminal — ends with one
 * line that says it finished (also when its updates never reached their totals, counted against an
 * estimate). A finished phase is shown once: later updates that change nothing would repeat it.
 */
export class ProgressLines {
  readonly #tty: () => boolean;
  readonly #throttle: ProgressThrottle;
  #phase: string | undefined;
  #last: Progress | undefined;
  #finishedShown = false;

  constructor(options: { tty: () => boolean; intervalMs: () => number; now?: () => number }) {
    this.#tty = options.tty;
    this.#throttle = new ProgressThrottle(options.intervalMs, options.now);
  }

  /** The lines `update` calls for now: the previous phase's finished line, then its own when due. */
  update(update: Progress): string[] {
    const lines: string[] = [];
    const newPhase = update.phase !== this.#phase;
    if (newPhase) {
      const finished = this.finish();
      if (finished) lines.push(finished);
      this.#phase = update.phase;
    }
    this.#last = update;
    const finished = progressFinished(update);
    if (finished && !newPhase && this.#finishedShown && !this.#tty()) return lines;
    if (!this.#throttle.admit(update)) return lines;
    this.#finishedShown = finished;
    lines.push(describeProgress(update, this.#throttle.phaseSeconds));
    return lines;
  }

  /** The finished line of the current phase, without a terminal, when it was not shown yet. */
  finish(): string | undefined {
    const last = this.#last;
    this.#last = undefined;
    if (!last || this.#finishedShown || this.#tty()) return undefined;
    this.#finishedShown = true;
    return describeProgress(last, this.#throttle.phaseSeconds, true);
  }
}
