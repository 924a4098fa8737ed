#!/usr/bin/env node
// stepback-local: the state machines on this machine. Node 22.18+ runs the TypeScript sources directly; an older Node re-runs this
// command under the Node 22 that the project installs as a dependency.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major > 22 || (major === 22 && minor >= 18)) {
  const { main } = await import('../local/main.ts');
  await main();
} else {
  const require = createRequire(import.meta.url);
  let node;
  try {
    node = path.join(path.dirname(require.resolve('node/package.json')), 'bin', 'node');
  } catch {
    process.stderr.write(
      `stepback-local needs Node.js 22.18 or newer (this is ${process.version}); run npm ci in the project, or install Node 22\n`,
    );
    process.exit(1);
  }
  const child = spawn(node, [...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit' });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => {
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
}
