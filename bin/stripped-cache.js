// Node strips the types of every TypeScript module at every start, and loading its stripper costs as
// much again. This keeps each module's stripped text in node_modules/.cache, under the hash of its
// source, so a start after the first loads plain JavaScript (and V8's compile cache then applies).
// The text is what Node itself produces (stripTypeScriptTypes, the same stripper, positions kept).
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
// Read off the module object: an older Node (which relaunches under the project's) lacks them.
import module from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cacheDir = path.join(projectRoot, 'node_modules', '.cache', 'stepback-stripped');

/** Loads the project's own .ts modules through the cache; false when this Node cannot. */
export function useStrippedCache() {
  if (typeof module.registerHooks !== 'function' || typeof module.stripTypeScriptTypes !== 'function')
    return false;
  module.registerHooks({
    load(url, context, nextLoad) {
      if (!url.startsWith('file:') || !url.endsWith('.ts') || url.includes('/node_modules/'))
        return nextLoad(url, context);
      const source = readFileSync(fileURLToPath(url), 'utf8');
      const cached = path.join(cacheDir, `${createHash('sha256').update(source).digest('hex')}.js`);
      let stripped;
      try {
        stripped = readFileSync(cached, 'utf8');
      } catch {
        stripped = strip(source);
        store(cached, stripped);
      }
      return { format: 'module', source: stripped, shortCircuit: true };
    },
  });
  return true;
}

function strip(source) {
  // The function is marked experimental in Node 22; Node's own loader uses it without a warning.
  const emitWarning = process.emitWarning;
  process.emitWarning = () => {};
  try {
    return module.stripTypeScriptTypes(source, { mode: 'strip' });
  } finally {
    process.emitWarning = emitWarning;
  }
}

/** Written under a temporary name then renamed, so a concurrent start never reads half a file. */
function store(file, text) {
  try {
    mkdirSync(cacheDir, { recursive: true });
    const temporary = `${file}.${process.pid}`;
    writeFileSync(temporary, text);
    renameSync(temporary, file);
  } catch {
    // A read-only checkout still runs; it strips at every start.
  }
}
