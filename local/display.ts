import { describeProgress } from '../agent/report/console.ts';
import type { Progress } from '../agent/report/reporter.ts';
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
  /** Per task and host: the phase shown, when it started, when it was last drawn. */
  readonly #tasks = new Map<string, { phase: string; started: number; drawn: number }>();
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
        this.#forget(event.state);
        if (workStates.has(event.stateType)) {
          this.line(`  ✓ ${name(event.state, event.index)} ${event.seconds.toFixed(1)}s`);
        } else {
          this.line(`  · ${name(event.state, event.index)}`);
        }
        break;
      case 'failed':
        this.#forget(event.state);
        this.line(`  ✗ ${name(event.state, event.index)}: ${event.error}: ${event.cause}`);
        break;
      case 'retried':
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
    const now = this.#now();
    let task = this.#tasks.get(key);
    const newPhase = task?.phase !== update.phase;
    if (!task || newPhase) {
      task = { phase: update.phase, started: now, drawn: 0 };
      this.#tasks.set(key, task);
    }
    const finished =
      (update.bytesTotal !== undefined && update.bytesDone === update.bytesTotal) ||
      (update.itemsTotal !== undefined && update.itemsDone === update.itemsTotal);
    const interval = this.#out.isTTY ? ttyIntervalMs : this.#plainIntervalMs;
    if (!newPhase && !finished && now - task.drawn < interval) return;
    task.drawn = now;
    const text = `    ${state} on ${this.#hostNames.get(host) ?? host}: ${describeProgress(update, (now - task.started) / 1000)}`;
    if (this.#out.isTTY) {
      this.#out.write(`\r\x1b[2K${text.slice(0, (this.#out.columns ?? 120) - 1)}`);
      this.#barShown = true;
    } else {
      this.#out.write(`${text}\n`);
    }
  }

  #forget(state: string): void {
    for (const key of this.#tasks.keys()) if (key.startsWith(`${state}\0`)) this.#tasks.delete(key);
  }

  #clearBar(): void {
    if (this.#barShown) {
      this.#out.write('\r\x1b[2K');
      this.#barShown = false;
    }
  }
}
