import type { OPERATION_REQUESTS, OperationName, RequestOf } from '../../core/agent-request.ts';
import type { StepbackEnvironment } from '../../core/environment.ts';
import type { StepbackError } from '../../core/errors.ts';
import type { EngineContext } from '../engines/engine.ts';

/** What every operation gets besides its request: where to log and report, when to stop, the environment. */
export interface OperationContext extends EngineContext {
  env: StepbackEnvironment;
}

export type { RequestOf };

/**
 * One agent verb: its request schema (in core/, shared with the Lambdas that build requests) and
 * the function that carries it out. The CLI parses flags into the request, `stepback run` decodes
 * it from the state machine, tests call `run` directly: parsed once, at the edge.
 */
export interface Operation<K extends OperationName, R extends object> {
  readonly name: K;
  readonly request: (typeof OPERATION_REQUESTS)[K];
  run(request: RequestOf<K>, context: OperationContext): Promise<R>;
  /** A result that still means failure (diff found differing rows): the error to report with it. */
  verdict?(result: R): StepbackError | undefined;
  /** What leaves the agent (`--json`, SendTaskSuccess) when it is less than the whole result: default all of it. */
  reported?(result: R): object;
}
