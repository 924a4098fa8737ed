import { Aws } from 'aws-cdk-lib';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { REQUEST_B64_PATTERN, SSM_PARAMETER_MAX_CHARS, TASK_TOKEN_PATTERN } from '../core/agent-request.ts';

export interface AgentDocumentProps {
  /** The stepback executable on the hosts. */
  readonly command: string;
  /** A file of variables sourced before the agent runs (skipped when unreadable). */
  readonly environmentFile: string;
  /** The SSM agent stops the script after this long (aws:runShellScript allows at most 172,800). */
  readonly timeoutSeconds: number;
}

/** The SSM agent version that passes ENV_VAR parameters as environment variables. */
export const MIN_SSM_AGENT_VERSION = '3.3.2746.0';

/**
 * The SSM Command document the state machines run on a DB host. It takes only base64 text and a
 * task token, each under an allowedPattern, and passes both as environment variables
 * (`SSM_request`, `SSM_taskToken`): neither appears on a command line or in the script the agent
 * writes to disk, and no user text ever reaches the shell as code.
 */
export class AgentDocument extends Construct {
  readonly document: ssm.CfnDocument;

  constructor(scope: Construct, id: string, props: AgentDocumentProps) {
    super(scope, id);
    if (
      !Number.isInteger(props.timeoutSeconds) ||
      props.timeoutSeconds < 5 ||
      props.timeoutSeconds > 172_800
    ) {
      throw new Error(
        `agent document timeoutSeconds must be 5 to 172800 (48 h), got ${props.timeoutSeconds}`,
      );
    }
    this.document = new ssm.CfnDocument(this, 'Document', {
      documentType: 'Command',
      documentFormat: 'JSON',
      // A content change makes a new document (a new name the state machines follow): a new
      // version of the same document would not become the one SendCommand runs.
      updateMethod: 'Replace',
      content: {
        schemaVersion: '2.2',
        description: `Runs one stepback operation and reports it to Step Functions with the task token (SSM Agent ${MIN_SSM_AGENT_VERSION} or newer)`,
        parameters: {
          request: {
            type: 'String',
            description: 'The operation and its fields: JSON, base64-encoded',
            allowedPattern: REQUEST_B64_PATTERN,
            minChars: 4,
            maxChars: SSM_PARAMETER_MAX_CHARS.request,
            interpolationType: 'ENV_VAR',
          },
          taskToken: {
            type: 'String',
            description: 'The Step Functions task token to report to',
            allowedPattern: TASK_TOKEN_PATTERN,
            minChars: 1,
            maxChars: SSM_PARAMETER_MAX_CHARS.taskToken,
            interpolationType: 'ENV_VAR',
          },
        },
        mainSteps: [
          {
            action: 'aws:runShellScript',
            name: 'stepbackRun',
            inputs: {
              timeoutSeconds: String(props.timeoutSeconds),
              runCommand: [
                'set -eu',
                // An older agent does not set the variables: fail here, naming why.
                `: "\${SSM_request:?needs SSM Agent ${MIN_SSM_AGENT_VERSION} or newer (ENV_VAR parameters)}"`,
                `: "\${SSM_taskToken:?needs SSM Agent ${MIN_SSM_AGENT_VERSION} or newer (ENV_VAR parameters)}"`,
                `if [ -r '${props.environmentFile}' ]; then set -a; . '${props.environmentFile}'; set +a; fi`,
                `export AWS_REGION="\${AWS_REGION:-${Aws.REGION}}"`,
                // stepback run reads SSM_request and SSM_taskToken itself.
                `exec '${props.command}' run`,
              ],
            },
          },
        ],
      },
    });
  }

  get documentName(): string {
    return this.document.ref;
  }
}
