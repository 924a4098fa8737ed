import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Duration } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { FUNCTION_NAMES, type FunctionName } from '../functions/index.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export { FUNCTION_NAMES, type FunctionName };

export interface StepbackFunctionsProps {
  /** Environment every function gets (storage URL, deployment defaults). */
  readonly environment: Record<string, string>;
  /** Days function logs are kept. */
  readonly logRetention: logs.RetentionDays;
}

/** The Lambdas, bundled by esbuild on this machine (no Docker), on Node 22. */
export class StepbackFunctions extends Construct {
  readonly functions: Record<FunctionName, nodejs.NodejsFunction>;

  constructor(scope: Construct, id: string, props: StepbackFunctionsProps) {
    super(scope, id);
    const entries = FUNCTION_NAMES.map((name) => {
      const pascal = name.replace(/(^|-)([a-z])/g, (_m, _dash, c: string) => c.toUpperCase());
      const fn = new nodejs.NodejsFunction(this, pascal, {
        entry: path.join(root, 'functions', `${name}.ts`),
        handler: 'handler',
        runtime: lambda.Runtime.NODEJS_22_X,
        architecture: lambda.Architecture.ARM_64,
        memorySize: 512,
        timeout: Duration.minutes(5),
        tracing: lambda.Tracing.ACTIVE,
        logGroup: new logs.LogGroup(this, `${pascal}Logs`, { retention: props.logRetention }),
        environment: { ...props.environment, STEPBACK_FUNCTION: name },
        projectRoot: root,
        depsLockFilePath: path.join(root, 'package-lock.json'),
        bundling: {
          format: nodejs.OutputFormat.ESM,
          target: 'node22',
          mainFields: ['module', 'main'],
          // The SDK the code was tested with, not the runtime's.
          externalModules: [],
          minify: true,
          sourceMap: true,
          banner:
            "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
          forceDockerBundling: false,
        },
      });
      return [name, fn] as const;
    });
    this.functions = Object.fromEntries(entries) as Record<FunctionName, nodejs.NodejsFunction>;
  }
}
