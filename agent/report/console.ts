import { errorCodeOf, messageOf, StepbackError } from '../../core/errors.ts';
import { fitToTerminal } from './progress.ts';

export { describeProgress } from './progress.ts';

import type { Progress, Reporter } from './reporter.ts';
import { ProgressLines } from './throttle.ts';

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
  readonly #lines: ProgressLines;
  #drawn = false;

  constructor(options: ConsoleReporterOptions) {
    this.#options = options;
    this.#lines = new ProgressLines({
      tty: () => this.#tty,
      intervalMs: () => (this.#tty ? ttyInterval : plainInterval),
      ...(options.now ? { now: options.now } : {}),
    });
  }

  get #tty(): boolean {
    return Boolean(this.#options.stderr.isTTY);
  }

  progress(update: Progress): void {
    this.#options.onProgress?.(update);
    if (this.#options.quiet) return;
    for (const line of this.#lines.update(update)) {
      if (this.#tty) {
        this.#options.stderr.write(`\r\x1b[2K${fitToTerminal(line, this.#options.stderr.columns)}`);
        this.#drawn = true;
      } else {
        this.#options.stderr.write(`${line}\n`);
      }
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

  /** Without a terminal, the running phase ends with a line that says it finished. */
  #finishPhase(): void {
    const line = this.#options.quiet ? undefined : this.#lines.finish();
    if (line) this.#options.stderr.write(`${line}\n`);
  }

  #clearLine(): void {
    if (this.#drawn) {
      this.#options.stderr.write('\r\x1b[2K');
      this.#drawn = false;
    }
  }
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
