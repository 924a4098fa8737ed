import { Aws } from 'aws-cdk-lib';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { REQUEST_B64_PATTERN, TASK_TOKEN_PATTERN } from '../core/agent-request.ts';

export interface AgentDocumentProps {
  /** The stepback executable on the hosts. */
  readonly command: string;
  /** A file of variables sourced before the agent runs (skipped when unreadable). */
  readonly environmentFile: string;
}

/**
 * The SSM Command document the state machines run on a DB host. It takes only base64 text and a
 * task token, each under an allowedPattern, so no user text ever reaches the shell as code.
 */
export class AgentDocument extends Construct {
  readonly document: ssm.CfnDocument;

  constructor(scope: Construct, id: string, props: AgentDocumentProps) {
    super(scope, id);
    this.document = new ssm.CfnDocument(this, 'Document', {
      documentType: 'Command',
      documentFormat: 'JSON',
      updateMethod: 'NewVersion',
      content: {
        schemaVersion: '2.2',
        description: 'Runs one stepback operation and reports it to Step Functions with the task token',
        parameters: {
          request: {
            type: 'String',
            description: 'The operation and its fields: JSON, base64-encoded',
            allowedPattern: REQUEST_B64_PATTERN,
          },
          taskToken: {
            type: 'String',
            description: 'The Step Functions task token to report to',
            allowedPattern: TASK_TOKEN_PATTERN,
          },
        },
        mainSteps: [
          {
            action: 'aws:runShellScript',
            name: 'stepbackRun',
            inputs: {
              timeoutSeconds: '172800',
              runCommand: [
                'set -eu',
                `if [ -r '${props.environmentFile}' ]; then set -a; . '${props.environmentFile}'; set +a; fi`,
                `export AWS_REGION="\${AWS_REGION:-${Aws.REGION}}"`,
                `exec '${props.command}' run --request-b64 '{{ request }}' --task-token '{{ taskToken }}'`,
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
