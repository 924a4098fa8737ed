// Runs a TypeScript entry module of this project. Node 22.18+ strips types itself; an older Node
// re-runs the calling script under the Node 22 the project installs as a dependency (npm `node`).
import { spawn } from 'node:child_process';
import { fstatSync } from 'node:fs';
import module, { createRequire } from 'node:module';
import path from 'node:path';
import { useStrippedCache } from './stripped-cache.js';

const [major, minor] = process.versions.node.split('.').map(Number);
const stripsTypes = major > 22 || (major === 22 && minor >= 18);

/** Imports `entry` (relative to bin/) and calls its `main()` when it has one. */
export async function launch(entry, name) {
  if (stripsTypes) {
    // Later starts reuse the stripped TypeScript and V8's compiled code.
    useStrippedCache();
    module.enableCompileCache?.();
    const loaded = await import(new URL(entry, import.meta.url).href);
    if (typeof loaded.main === 'function') await loaded.main();
    return;
  }
  if (process.env.STEPBACK_RELAUNCHED) {
    process.stderr.write(`${name}: the project's Node (${process.version}) cannot run TypeScript either\n`);
    process.exit(1);
  }
  const require = createRequire(import.meta.url);
  let node;
  try {
    node = path.join(path.dirname(require.resolve('node/package.json')), 'bin', 'node');
  } catch {
    process.stderr.write(
      `${name} needs Node.js 22.18 or newer (this is ${process.version}); run npm ci in the project, or install Node 22\n`,
    );
    process.exit(1);
  }
  // Descriptors past stderr are passed on too: `stepback run --callback-fd 3` reports on fd 3.
  const stdio = ['inherit', 'inherit', 'inherit'];
  for (let fd = 3; fd < 10 && isOpen(fd); fd++) stdio.push('inherit');
  const child = spawn(node, [...process.execArgv, ...process.argv.slice(1)], {
    stdio,
    env: { ...process.env, STEPBACK_RELAUNCHED: '1' },
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => {
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
}

function isOpen(fd) {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}
