import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseEnvironmentConfig, selectEnvironment } from '../../cdk/config.ts';
import { projectRoot } from '../support/cli.ts';

const cdkJson = JSON.parse(readFileSync(path.join(projectRoot, 'cdk.json'), 'utf8')) as {
  context: { environments: Record<string, unknown> };
};
const dev = cdkJson.context.environments.dev as Record<string, unknown>;

describe('cdk.json environments', () => {
  it('holds a dev and a prod environment that both pass the schema', () => {
    expect(selectEnvironment(cdkJson.context.environments, 'dev').config.retention.keepCount).toBe(3);
    expect(selectEnvironment(cdkJson.context.environments, 'prod').config.kmsKeyArn).toMatch(/^arn:aws:kms:/);
  });

  it('names the field of a bad environment and the rule it broke', () => {
    const bad = { ...dev, retention: { keepCount: 0, keepDays: 7 } };
    expect(() => parseEnvironmentConfig('dev', bad)).toThrow(ConfigError);
    expect(() => parseEnvironmentConfig('dev', bad)).toThrow(/environments\.dev\.retention\.keepCount: /);
  });

  it('refuses a field it does not know (a typo is not ignored)', () => {
    expect(() => parseEnvironmentConfig('dev', { ...dev, retension: {} })).toThrow(/retension/);
  });

  it('refuses a schedule that EventBridge would refuse', () => {
    const bad = { ...dev, backup: { ...(dev.backup as object), schedule: 'every night' } };
    expect(() => parseEnvironmentConfig('dev', bad)).toThrow(
      /environments\.dev\.backup\.schedule: must be an EventBridge schedule/,
    );
  });

  it('refuses keyspaces without a topology store, and an alarm e-mail together with a topic', () => {
    const keyspaces = { ...dev, backup: { keyspaces: ['commerce'] } };
    expect(() => parseEnvironmentConfig('dev', keyspaces)).toThrow(/environments\.dev\.topology: /);
    const both = {
      ...dev,
      alarms: { email: 'a@example.com', topicArn: 'arn:aws:sns:eu-west-1:111111111111:t' },
    };
    expect(() => parseEnvironmentConfig('dev', both)).toThrow(/environments\.dev\.alarms\.topicArn: /);
  });

  it('caps the agent timeout at the 48 hours aws:runShellScript allows', () => {
    const agent = dev.agent as object;
    expect(
      parseEnvironmentConfig('dev', { ...dev, agent: { ...agent, timeoutHours: 48 } }).agent.timeoutHours,
    ).toBe(48);
    expect(() => parseEnvironmentConfig('dev', { ...dev, agent: { ...agent, timeoutHours: 49 } })).toThrow(
      /environments\.dev\.agent\.timeoutHours: must be at most 48/,
    );
  });

  it('takes a systemd unit for mysqld and refuses one that is not a unit name', () => {
    const agent = dev.agent as object;
    expect(
      parseEnvironmentConfig('dev', { ...dev, agent: { ...agent, systemdService: 'mariadb@shard1.service' } })
        .agent.systemdService,
    ).toBe('mariadb@shard1.service');
    expect(() =>
      parseEnvironmentConfig('dev', { ...dev, agent: { ...agent, systemdService: 'mariadb; reboot' } }),
    ).toThrow(/environments\.dev\.agent\.systemdService: must be a systemd unit name/);
  });

  it('asks for -c env=NAME and lists the known environments', () => {
    expect(() => selectEnvironment(cdkJson.context.environments, undefined)).toThrow(
      /-c env=NAME \(one of: dev, prod\)/,
    );
    expect(() => selectEnvironment(cdkJson.context.environments, 'staging')).toThrow(
      /"staging" is not in cdk.json/,
    );
  });
});
