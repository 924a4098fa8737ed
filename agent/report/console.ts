import { errorCodeOf, messageOf, StepbackError } from '../../core/errors.ts';
import { formatBytes, formatCount, formatSeconds } from './format.ts';
import { fitToTerminal, progressFinished } from './progress.ts';
import type { Progress, Reporter } from './reporter.ts';
import { ProgressThrottle } from './throttle.ts';

export interface ConsoleReporterOptions {
  json: boolean;
  quiet: boolean;
  verbose: boolean;
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Renders a result for people; JSON mode prints the object instead. */
  summarize?: (result: object) => string;
  now?: () => number;
  /** Also receives every update, whatever is drawn (quiet and JSON modes included). */
  onProgress?: (update: Progress) => void;
}

/** Seconds between progress lines when stderr is not a terminal (logs, SSM output). */
const plainInterval = 10_000;
const ttyInterval = 200;

/**
 * The CLI's reporter: a redrawn progress line with rate and ETA on a terminal, a line every few
 * seconds otherwise, both on stderr; the result on stdout, as one JSON line with --json.
 */
export class ConsoleReporter implements Reporter {
  readonly #options: ConsoleReporterOptions;
  readonly #throttle: ProgressThrottle;
  #phase = '';
  #drawn = false;
  /** The current phase's finished line has been written. */
  #finishedShown = false;
  /** The current phase's last update, for its finished line. */
  #last: Progress | undefined;

  constructor(options: ConsoleReporterOptions) {
    this.#options = options;
    this.#throttle = new ProgressThrottle(() => (this.#tty ? ttyInterval : plainInterval), options.now);
  }

  get #tty(): boolean {
    return Boolean(this.#options.stderr.isTTY);
  }

  progress(update: Progress): void {
    this.#options.onProgress?.(update);
    if (this.#options.quiet) return;
    const newPhase = update.phase !== this.#phase;
    if (newPhase) {
      this.#finishPhase();
      this.#phase = update.phase;
    }
    this.#last = update;
    // The last update of a phase is always drawn, once: later updates that change nothing (the
    // last file counted after its bytes) would repeat it. One without totals is never "finished".
    const finished = progressFinished(update);
    if (finished && !newPhase && this.#finishedShown && !this.#tty) return;
    if (!this.#throttle.admit(update)) return;
    this.#finishedShown = finished;
    const line = describeProgress(update, this.#throttle.phaseSeconds);
    if (this.#tty) {
      this.#options.stderr.write(`\r\x1b[2K${fitToTerminal(line, this.#options.stderr.columns)}`);
      this.#drawn = true;
    } else {
      this.#options.stderr.write(`${line}\n`);
    }
  }

  /** Writes a log line without tearing the progress bar. */
  log(line: string): void {
    this.#clearLine();
    this.#options.stderr.write(`${line}\n`);
  }

  async succeed(result: object): Promise<void> {
    this.#finishPhase();
    this.#clearLine();
    if (this.#options.json) {
      this.#options.stdout.write(`${JSON.stringify(result)}\n`);
    } else if (!this.#options.quiet || this.#options.summarize) {
      const text = this.#options.summarize
        ? this.#options.summarize(result)
        : JSON.stringify(result, null, 2);
      if (text) this.#options.stdout.write(`${text}\n`);
    }
  }

  async fail(error: unknown): Promise<void> {
    this.#clearLine();
    const lines = [`error: ${messageOf(error)}`];
    if (error instanceof StepbackError && error.hint) lines.push(`  what to do: ${error.hint}`);
    if (this.#options.verbose) {
      let cause: unknown = error;
      while (cause instanceof Error) {
        lines.push(`  ${cause.stack ?? cause.message}`);
        cause = cause.cause;
      }
    }
    this.#options.stderr.write(`${lines.join('\n')}\n`);
    if (this.#options.json) {
      this.#options.stdout.write(
        `${JSON.stringify({
          error: {
            code: errorCodeOf(error),
            message: messageOf(error),
            ...(error instanceof StepbackError && error.hint ? { hint: error.hint } : {}),
          },
        })}\n`,
      );
    }
  }

  /**
   * Without a terminal, every phase ends with a line that says it finished: a phase whose updates
   * never reached their totals (rows counted against an estimate) gets it when the next phase
   * starts or the command succeeds.
   */
  #finishPhase(): void {
    const last = this.#last;
    this.#last = undefined;
    if (!last || this.#finishedShown || this.#tty || this.#options.quiet) return;
    this.#finishedShown = true;
    this.#options.stderr.write(`${describeProgress(last, this.#throttle.phaseSeconds, true)}\n`);
  }

  #clearLine(): void {
    if (this.#drawn) {
      this.#options.stderr.write('\r\x1b[2K');
      this.#drawn = false;
    }
  }
}

/**
 * `copying files 1.2 GiB / 2.6 GiB (46%) 120 MiB/s ETA 12s`; a phase's last update says it
 * finished, and in how long: `copying files finished in 21.7s: 2.6 GiB 120 MiB/s [207/207]`.
 */
export function describeProgress(
  update: Progress,
  seconds: number,
  finished = progressFinished(update),
): string {
  const parts = [finished ? `${update.phase} finished in ${formatSeconds(seconds)}:` : update.phase];
  if (update.bytesDone !== undefined) {
    const rate = seconds > 0 ? update.bytesDone / seconds : 0;
    if (finished) {
      parts.push(formatBytes(update.bytesDone));
      if (rate > 0) parts.push(`${formatBytes(rate)}/s`);
    } else if (update.bytesTotal) {
      const share = Math.min(100, (update.bytesDone / update.bytesTotal) * 100);
      parts.push(
        `${formatBytes(update.bytesDone)} / ${formatBytes(update.bytesTotal)} (${share.toFixed(0)}%)`,
      );
      if (rate > 0) {
        parts.push(
          `${formatBytes(rate)}/s`,
          `ETA ${formatSeconds((update.bytesTotal - update.bytesDone) / rate)}`,
        );
      }
    } else {
      parts.push(formatBytes(update.bytesDone));
      if (rate > 0) parts.push(`${formatBytes(rate)}/s`);
    }
  }
  if (update.rowsDone !== undefined) {
    const rate = seconds > 0 ? update.rowsDone / seconds : 0;
    parts.push(
      `${formatCount(update.rowsDone)}${update.rowsTotal && !finished ? ` / ${formatCount(update.rowsTotal)}` : ''} rows`,
      ...(rate > 0 ? [`${formatCount(Math.round(rate))} rows/s`] : []),
    );
  }
  if (update.itemsTotal !== undefined) parts.push(`[${update.itemsDone ?? 0}/${update.itemsTotal}]`);
  return parts.join(' ');
}

/**
 * What reaches the process when something escaped every handler: one line saying what happened
 * and what to do; the stack trace only with --verbose.
 */
export function reportCrash(error: unknown, stderr: NodeJS.WritableStream, verbose: boolean): void {
  const lines = [
    `error: ${messageOf(error)}`,
    '  what to do: this is a bug in stepback; run the command again with --verbose and report what it prints',
  ];
  if (verbose && error instanceof Error && error.stack) lines.push(error.stack);
  stderr.write(`${lines.join('\n')}\n`);
}
