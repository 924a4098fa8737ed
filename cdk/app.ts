import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ConfigError, selectEnvironment } from './config.ts';
import { StepbackStack } from './stack.ts';

/** `npx cdk synth -c env=dev`: one stack for the environment cdk.json names. */
const app = new App();
try {
  const { name, config } = selectEnvironment(
    app.node.tryGetContext('environments'),
    app.node.tryGetContext('env'),
  );
  new StepbackStack(app, `Stepback-${name}`, {
    env: { account: config.account, region: config.region },
    environmentName: name,
    config,
  });
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
}
// Every AwsSolutions finding fails synth unless acknowledged with a reason (cdk/nag.ts).
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
app.synth();
