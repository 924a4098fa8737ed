import {
  type ParsedRequest,
  parseAgentRequest,
  REQUEST_B64_PATTERN,
  SSM_PARAMETER_MAX_CHARS,
} from '../../core/agent-request.ts';
import { UsageError } from '../../core/errors.ts';

/** Decodes a state machine's request (base64 of its JSON) and validates it; UsageError naming the field otherwise. */
export function decodeRequest(base64: string): ParsedRequest {
  if (base64.length > SSM_PARAMETER_MAX_CHARS.request) {
    throw new UsageError(
      `the request is ${base64.length} characters, over ${SSM_PARAMETER_MAX_CHARS.request}`,
    );
  }
  if (!new RegExp(REQUEST_B64_PATTERN).test(base64)) {
    throw new UsageError('the request is not base64 text', {
      hint: 'the request is the JSON of the operation, base64-encoded (States.Base64Encode)',
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(base64, 'base64').toString('utf8'));
  } catch {
    throw new UsageError('the request does not decode to JSON');
  }
  return parseAgentRequest(json);
}
