#!/usr/bin/env node
// stepback-local: the state machines on this machine.
import { launch } from './launch.js';

await launch('../local/main.ts', 'stepback-local');
