import fs from 'node:fs';
import {
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
  SFNClient,
} from '@aws-sdk/client-sfn';
import type { Progress } from '../report/reporter.ts';

/**
 * How `stepback run` tells the state machine that waits on its task token how the work goes:
 * Step Functions' SendTask* calls in AWS, JSON lines on a file descriptor for the local runner.
 */
export interface TaskCallbacks {
  heartbeat(): Promise<void>;
  /** `output` is the operation's JSON result. */
  succeed(output: object): Promise<void>;
  /** `error` is the stable code (USAGE, NO_BACKUP, …); `cause` the message. */
  fail(error: string, cause: string): Promise<void>;
  /**
   * How the work goes, for a caller that shows it (the local runner). Step Functions has no such
   * call: in AWS, progress lines reach the SSM command output instead.
   */
  progress?(update: Progress): void;
}

/** Step Functions' limits on SendTaskFailure: error ≤ 256, cause ≤ 32768 characters. */
const MAX_ERROR = 256;
const MAX_CAUSE = 32_768;
/** SendTaskSuccess output ≤ 256 KiB. */
const MAX_OUTPUT = 256 * 1024;

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** The callback line as the local runner reads it. */
export type CallbackMessage =
  | { callback: 'heartbeat' }
  | { callback: 'progress'; progress: Progress }
  | { callback: 'success'; output: object }
  | { callback: 'failure'; error: string; cause: string };

/** Why Step Functions would refuse `output` as a task result (larger than its limit), if it would. */
export function taskOutputProblem(output: object): string | undefined {
  const bytes = Buffer.byteLength(JSON.stringify(output));
  return bytes > MAX_OUTPUT
    ? `its result is ${bytes} bytes, over the ${MAX_OUTPUT}-byte Step Functions task output limit`
    : undefined;
}

/** Serialises the output, refusing (as Step Functions would) one larger than the limit. */
function outputText(output: object): string {
  const problem = taskOutputProblem(output);
  if (problem) throw new Error(problem);
  return JSON.stringify(output);
}

export class SfnTaskCallbacks implements TaskCallbacks {
  readonly #client: SFNClient;
  readonly #token: string;

  constructor(token: string, client: SFNClient = new SFNClient({})) {
    this.#client = client;
    this.#token = token;
  }

  async heartbeat(): Promise<void> {
    await this.#client.send(new SendTaskHeartbeatCommand({ taskToken: this.#token }));
  }

  async succeed(output: object): Promise<void> {
    await this.#client.send(
      new SendTaskSuccessCommand({ taskToken: this.#token, output: outputText(output) }),
    );
  }

  async fail(error: string, cause: string): Promise<void> {
    await this.#client.send(
      new SendTaskFailureCommand({
        taskToken: this.#token,
        error: clip(error, MAX_ERROR),
        cause: clip(cause, MAX_CAUSE),
      }),
    );
  }
}

/** One JSON line per callback on an inherited file descriptor (the local runner's pipe). */
export class FdTaskCallbacks implements TaskCallbacks {
  readonly #fd: number;
  /** Lines are written one after another, so the outcome never overtakes a progress line. */
  #written: Promise<void> = Promise.resolve();

  constructor(fd: number) {
    this.#fd = fd;
  }

  #write(message: CallbackMessage): Promise<void> {
    const line = `${JSON.stringify(message)}\n`;
    const write = () =>
      new Promise<void>((resolve, reject) =>
        fs.write(this.#fd, line, (error) => (error ? reject(error) : resolve())),
      );
    const result = this.#written.then(write);
    this.#written = result.catch(() => {});
    return result;
  }

  progress(update: Progress): void {
    // Progress is best effort: a reader that went away shows up on the outcome's write.
    this.#write({ callback: 'progress', progress: update }).catch(() => {});
  }

  heartbeat(): Promise<void> {
    return this.#write({ callback: 'heartbeat' });
  }

  succeed(output: object): Promise<void> {
    return this.#write({ callback: 'success', output: JSON.parse(outputText(output)) });
  }

  fail(error: string, cause: string): Promise<void> {
    return this.#write({ callback: 'failure', error: clip(error, MAX_ERROR), cause: clip(cause, MAX_CAUSE) });
  }
}

/** Parses one callback line; undefined for anything that is not one. */
export function parseCallbackLine(line: string): CallbackMessage | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const message = value as Record<string, unknown>;
  if (message.callback === 'heartbeat') return { callback: 'heartbeat' };
  if (message.callback === 'progress' && typeof message.progress === 'object' && message.progress !== null) {
    const progress = message.progress as Progress;
    if (typeof progress.phase === 'string') return { callback: 'progress', progress };
    return undefined;
  }
  if (message.callback === 'success' && typeof message.output === 'object' && message.output !== null) {
    return { callback: 'success', output: message.output };
  }
  if (message.callback === 'failure' && typeof message.error === 'string') {
    return { callback: 'failure', error: message.error, cause: String(message.cause ?? '') };
  }
  return undefined;
}
