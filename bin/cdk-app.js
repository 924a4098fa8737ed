#!/usr/bin/env node
// The CDK app (cdk.json "app"), runnable by a cdk CLI on any Node.
import { launch } from './launch.js';

await launch('../cdk/app.ts', 'the stepback CDK app');
