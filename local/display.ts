import { fitToTerminal } from '../agent/report/progress.ts';
import type { Progress } from '../agent/report/reporter.ts';
import { ProgressLines } from '../agent/report/throttle.ts';
import type { ExecutionEvent } from './runner.ts';

export interface DisplayStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ExecutionDisplayOptions {
  /** Instance names by host (locally a host is the path of the instance's defaults-file). */
  hostNames?: Map<string, string>;
  now?: () => number;
  /** Between two progress lines of one task when the output is not a terminal. */
  plainIntervalMs?: number;
}

/** States that do work worth a line on entry; the others (Pass, Choice, Succeed) get one line when left. */
const workStates = new Set(['Task', 'Map', 'Parallel']);
const ttyIntervalMs = 100;

/**
 * What the demo shows while a state machine runs: each state as it is entered and left (with its
 * time), and the agents' progress — a redrawn line with bytes or rows, rate and ETA on a
 * terminal, a plain line every few seconds otherwise.
 */
export class ExecutionDisplay {
  readonly #out: DisplayStream;
  readonly #hostNames: Map<string, string>;
  readonly #now: () => number;
  readonly #plainIntervalMs: number;
  /** Per task and host: its progress lines and its label. */
  readonly #tasks = new Map<string, { lines: ProgressLines; label: string }>();
  /** States whose last attempt failed: the runner still reports them as left (to their Catch). */
  readonly #failed = new Set<string>();
  #barShown = false;

  constructor(out: DisplayStream, options: ExecutionDisplayOptions = {}) {
    this.#out = out;
    this.#hostNames = options.hostNames ?? new Map();
    this.#now = options.now ?? Date.now;
    this.#plainIntervalMs = options.plainIntervalMs ?? 3000;
  }

  /** A line of its own, below whatever progress was drawn. */
  line(text: string): void {
    this.#clearBar();
    this.#out.write(`${text}\n`);
  }

  event(event: ExecutionEvent): void {
    const name = (state: string, index: number | undefined) =>
      index === undefined ? state : `${state}[${index}]`;
    switch (event.type) {
      case 'entered':
        if (workStates.has(event.stateType)) this.line(`  ▶ ${name(event.state, event.index)}`);
        break;
      case 'exited':
        this.#forget(event.state, !this.#failed.has(name(event.state, event.index)));
        if (this.#failed.delete(name(event.state, event.index))) break;
        if (workStates.has(event.stateType)) {
          this.line(`  ✓ ${name(event.state, event.index)} ${event.seconds.toFixed(1)}s`);
        } else {
          this.line(`  · ${name(event.state, event.index)}`);
        }
        break;
      case 'failed':
        this.#forget(event.state, false);
        this.#failed.add(name(event.state, event.index));
        this.line(`  ✗ ${name(event.state, event.index)}: ${event.error}: ${event.cause}`);
        break;
      case 'retried':
        this.#failed.delete(name(event.state, event.index));
        this.line(`  ↻ ${name(event.state, event.index)}: retry ${event.attempt}`);
        break;
      case 'caught':
        this.line(`  ↳ ${name(event.state, event.index)}: error caught, taking the failure path`);
        break;
      case 'progress':
        this.#progress(event.state, event.host, event.progress);
        break;
    }
  }

  /** Clears the progress line (before the program writes anything else). */
  done(): void {
    this.#clearBar();
  }

  #progress(state: string, host: string, update: Progress): void {
    const key = `${state}\0${host}`;
    let task = this.#tasks.get(key);
    if (!task) {
      task = {
        label: `    ${state} on ${this.#hostNames.get(host) ?? host}: `,
        lines: new ProgressLines({
          tty: () => Boolean(this.#out.isTTY),
          intervalMs: () => (this.#out.isTTY ? ttyIntervalMs : this.#plainIntervalMs),
          now: this.#now,
        }),
      };
      this.#tasks.set(key, task);
    }
    for (const line of task.lines.update(update)) {
      const text = `${task.label}${line}`;
      if (this.#out.isTTY) {
        this.#out.write(`\r\x1b[2K${fitToTerminal(text, this.#out.columns)}`);
        this.#barShown = true;
      } else {
        this.#out.write(`${text}\n`);
      }
    }
  }

  /** The state is left: each of its tasks' phases ends with a line that says it finished. */
  #forget(state: string, finished: boolean): void {
    for (const [key, task] of this.#tasks) {
      if (!key.startsWith(`${state}\0`)) continue;
      const line = finished ? task.lines.finish() : undefined;
      if (line) this.#out.write(`${task.label}${line}\n`);
      this.#tasks.delete(key);
    }
  }

  #clearBar(): void {
    if (this.#barShown) {
      this.#out.write('\r\x1b[2K');
      this.#barShown = false;
    }
  }
}
