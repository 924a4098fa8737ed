#!/usr/bin/env node
// The stepback CLI (the on-host agent).
import { launch } from './launch.js';

await launch('../agent/cli/main.ts', 'stepback');
