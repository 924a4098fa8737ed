#!/usr/bin/env node
// The agent for the DB hosts: `npm run bundle-agent` writes dist/stepback.mjs and, beside it,
// dist/stepback-agent.mjs: ES modules for Node 22 with every dependency inside (no node_modules on
// the host). Install both in /usr/local/lib/stepback/ with /usr/local/bin/stepback a symlink to
// stepback.mjs (see README).
//
// stepback.mjs is a few lines: it turns on Node's compile cache, then imports the agent. Compiling
// the 2.6 MB agent was most of every start; with the cache a start after the first reuses V8's code
// (half the CPU of `stepback --help`), and a command loads only the parts it runs.
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outfile = path.resolve(process.argv[2] ?? path.join(root, 'dist', 'stepback.mjs'));
const agentFile = path.join(path.dirname(outfile), 'stepback-agent.mjs');

await build({
  entryPoints: [path.join(root, 'agent', 'cli', 'main.ts')],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  outfile: agentFile,
  minify: true,
  // The binlog reader names each event by its class's name (and filters the events asked for by it):
  // minified class names would drop every row event.
  keepNames: true,
  legalComments: 'linked',
  // CommonJS dependencies call require(); an ES module has none of its own.
  banner: {
    js: "import { createRequire as __stepbackRequire } from 'node:module'; const require = __stepbackRequire(import.meta.url);",
  },
  logLevel: 'warning',
});

writeFileSync(
  outfile,
  `#!/usr/bin/env node
// The stepback agent (npm run bundle-agent). Node keeps the compiled agent in its compile cache
// (NODE_COMPILE_CACHE, or node-compile-cache in the temporary directory), so later starts skip
// compiling it; without a writable cache directory it compiles as before.
import { enableCompileCache } from 'node:module';
enableCompileCache?.();
const { main } = await import('./stepback-agent.mjs');
await main();
`,
);
chmodSync(outfile, 0o755);
const shown = path.relative(process.cwd(), outfile);
process.stderr.write(
  `bundle-agent: wrote ${shown.startsWith('..') ? outfile : shown} and stepback-agent.mjs beside it\n`,
);
