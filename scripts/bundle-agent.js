#!/usr/bin/env node
// The agent for the DB hosts in one file: `npm run bundle-agent` writes dist/stepback.mjs, an ES
// module for Node 22 with every dependency inside (no node_modules on the host). Install it as
// /usr/local/lib/stepback/stepback.mjs with /usr/local/bin/stepback a symlink to it (see README).
import { chmodSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outfile = path.resolve(process.argv[2] ?? path.join(root, 'dist', 'stepback.mjs'));

await build({
  stdin: {
    contents: "import { main } from './agent/cli/main.ts';\nawait main();\n",
    resolveDir: root,
    sourcefile: 'stepback-agent.ts',
    loader: 'ts',
  },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  outfile,
  minify: true,
  // The binlog reader names each event by its class's name (and filters the events asked for by it):
  // minified class names would drop every row event.
  keepNames: true,
  legalComments: 'linked',
  // CommonJS dependencies call require(); an ES module has none of its own.
  banner: {
    js: "#!/usr/bin/env node\nimport { createRequire as __stepbackRequire } from 'node:module'; const require = __stepbackRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
chmodSync(outfile, 0o755);
const shown = path.relative(process.cwd(), outfile);
process.stderr.write(`bundle-agent: wrote ${shown.startsWith('..') ? outfile : shown}\n`);
