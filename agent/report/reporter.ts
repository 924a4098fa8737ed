/**
 * How long work tells the world how it is going and how it ended: a Step Functions task token in
 * AWS, a progress bar and a JSON line on the CLI, an in-process channel in the local runner.
 */

export interface Progress {
  /** What is happening now, in the operator's words: "copying files", "loading shop.orders". */
  phase: string;
  bytesDone?: number;
  bytesTotal?: number;
  rowsDone?: number;
  rowsTotal?: number;
  itemsDone?: number;
  itemsTotal?: number;
}

export interface Reporter {
  progress(update: Progress): void;
  /** The operation's result (JSON-serialisable). */
  succeed(result: object): Promise<void>;
  fail(error: unknown): Promise<void>;
}

/** A reporter that forgets everything (library calls that report nothing). */
export const silentReporter: Reporter = {
  progress() {},
  async succeed() {},
  async fail() {},
};
