#!/usr/bin/env node
// Set-up shared by `npm test`, `npm run demo` and `npm run bench`: npm dependencies when missing, and
// the database server binaries (and, for the bench, the peer tools) from Debian when run as root;
// for the tests also a private MySQL (see ensureMysql).
// Plain JavaScript that runs on any Node >= 18, because it runs before the project's Node 22 exists.
import { execFileSync, spawnSync } from 'node:child_process';
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const purpose = process.argv.includes('--for') ? process.argv[process.argv.indexOf('--for') + 1] : 'test';

/** Debian packages each purpose needs, keyed by a binary that proves the package is there. */
const needs = {
  bundle: {},
  test: {
    mariadbd: 'mariadb-server',
    'mariadb-install-db': 'mariadb-server',
    mariadb: 'mariadb-client',
    // chromium: the drill report's HTML page is checked in a headless browser (playwright-core drives it).
    chromium: 'chromium',
    // The online engine's tests run mariabackup and mbstream of the server's release.
    mariabackup: 'mariadb-backup',
    mbstream: 'mariadb-backup',
  },
  demo: { mariadbd: 'mariadb-server', 'mariadb-install-db': 'mariadb-server', mariadb: 'mariadb-client' },
  bench: {
    mariadbd: 'mariadb-server',
    'mariadb-install-db': 'mariadb-server',
    mariadb: 'mariadb-client',
    'mariadb-dump': 'mariadb-client',
    mariabackup: 'mariadb-backup',
    mbstream: 'mariadb-backup',
    mydumper: 'mydumper',
    myloader: 'mydumper',
    sysbench: 'sysbench',
    zstd: 'zstd',
  },
};

function say(line) {
  process.stderr.write(`setup: ${line}\n`);
}

function onPath(binary) {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/usr/local/sbin'];
  return dirs.some((dir) => {
    try {
      accessSync(path.join(dir, binary), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * The directory of a Node 22 to run npm with. The project runs on Node 22 (its npm dependency
 * `node`), and a dependency (aws-local-stepfunctions) declares node >= 22: npm run by an older Node
 * installs it with an EBADENGINE warning. So under an older Node the same `node` package is first
 * fetched on its own into .stepback-node/<version>/, and npm ci runs under it.
 */
function node22Directory() {
  if (Number(process.versions.node.split('.')[0]) >= 22) return undefined;
  const version = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).dependencies.node;
  const dir = path.join(root, '.stepback-node', version);
  const bin = path.join(dir, 'node_modules', 'node', 'bin');
  if (existsSync(path.join(bin, 'node'))) return bin;
  say(
    `this is Node ${process.version}: fetching the project's Node ${version} (npm package node) to install with`,
  );
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    path.join(dir, 'package.json'),
    `${JSON.stringify({ private: true, dependencies: { node: version }, allowScripts: { node: true } })}\n`,
  );
  const result = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock'], {
    cwd: dir,
    stdio: 'inherit',
  });
  if (result.status !== 0 || !existsSync(path.join(bin, 'node'))) {
    say(`could not fetch Node ${version}; install Node 22 and run this again`);
    process.exit(result.status || 1);
  }
  return bin;
}

/**
 * The environment to run npm in: npm's own script starts with `#!/usr/bin/env node`, so the Node
 * first on PATH runs it.
 */
export function npmEnvironment() {
  const bin = node22Directory();
  return bin ? { ...process.env, PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}` } : process.env;
}

function ensureNpmDependencies() {
  const marker = path.join(root, 'node_modules', '.package-lock.json');
  const node22 = path.join(root, 'node_modules', 'node', 'bin', 'node');
  if (existsSync(marker) && existsSync(node22)) return;
  const env = npmEnvironment();
  say(`installing npm dependencies (npm ci${env === process.env ? '' : ' under Node 22'})`);
  const result = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit', env });
  if (result.status !== 0) {
    say('npm ci failed; fix the error above and run it again');
    process.exit(result.status ?? 1);
  }
}

function ensurePackages() {
  const wanted = needs[purpose] ?? needs.test;
  const missing = [
    ...new Set(
      Object.entries(wanted)
        .filter(([binary]) => !onPath(binary))
        .map(([, pkg]) => pkg),
    ),
  ];
  if (missing.length === 0) return;
  const isRoot = process.getuid?.() === 0;
  if (!isRoot || !onPath('apt-get')) {
    say(`missing: ${missing.join(', ')}`);
    say(`install them, e.g. sudo apt-get install -y ${missing.join(' ')}, then run this again`);
    process.exit(1);
  }
  say(`installing Debian packages: ${missing.join(' ')}`);
  // Keep apt from starting a system database server: stepback's tests and demo run their own.
  const policy = '/usr/sbin/policy-rc.d';
  const ownPolicy = !existsSync(policy);
  if (ownPolicy) writeFileSync(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], {
      stdio: 'inherit',
      env,
    });
  } finally {
    if (ownPolicy) unlinkSync(policy);
  }
}

function shellQuoted(text) {
  return `'${text.replace(/'/g, "'\\''")}'`;
}

/** Purposes that run a real MySQL server besides MariaDB (the tests prove the MySQL flavor on one). */
const wantsMysql = new Set(['test']);

/** The private MySQL root of the tests, and the wrapper they pass as the server binary. */
export const mysqlDirectory = path.join(root, '.stepback-mysql');
export const mysqlWrapper = path.join(mysqlDirectory, 'mysqld');
const mysqlSuite = 'sid';
const mysqlPackages = ['mysql-server-core', 'mysql-client-core'];

/**
 * MySQL for the tests: Debian 12 has no MySQL server, but Debian unstable ships MySQL 9.7, which
 * needs a newer libc than the host's. So debootstrap makes a minimal unstable root under
 * .stepback-mysql/root/ (about 560 MB, from Debian's mirror), and .stepback-mysql/mysqld runs its
 * mysqld through that root's own loader and libraries (no chroot: it reads and writes host paths).
 */
function ensureMysql() {
  if (!wantsMysql.has(purpose)) return;
  const target = path.join(mysqlDirectory, 'root');
  const mysqld = path.join(target, 'usr', 'sbin', 'mysqld');
  if (!existsSync(mysqld)) {
    const isRoot = process.getuid?.() === 0;
    if (!isRoot || !onPath('apt-get')) {
      say(`missing: MySQL for the MySQL tests (${mysqld})`);
      say(
        `run this as root once to make it (debootstrap --variant=minbase --include=${mysqlPackages.join(',')} ${mysqlSuite} ${target})`,
      );
      process.exit(1);
    }
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    if (!onPath('debootstrap')) {
      say('installing Debian package: debootstrap');
      execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
      execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'debootstrap'], {
        stdio: 'inherit',
        env,
      });
    }
    const partial = `${target}.partial`;
    rmSync(partial, { recursive: true, force: true });
    mkdirSync(mysqlDirectory, { recursive: true });
    say(`making a Debian ${mysqlSuite} root with MySQL for the MySQL tests (about 560 MB): ${target}`);
    const result = spawnSync(
      'debootstrap',
      ['--variant=minbase', `--include=${mysqlPackages.join(',')}`, mysqlSuite, partial],
      { stdio: ['ignore', 'ignore', 'inherit'], env },
    );
    if (result.status !== 0 || !existsSync(path.join(partial, 'usr', 'sbin', 'mysqld'))) {
      say(
        `debootstrap of Debian ${mysqlSuite} failed (exit ${result.status}): the MySQL tests need it; its log is ${path.join(partial, 'debootstrap', 'debootstrap.log')}`,
      );
      process.exit(1);
    }
    renameSync(partial, target);
  }
  const libraries = ['usr/lib/x86_64-linux-gnu', 'lib/x86_64-linux-gnu'].map((dir) => path.join(target, dir));
  const wrapper = [
    '#!/bin/sh',
    `exec ${shellQuoted(path.join(target, 'lib64', 'ld-linux-x86-64.so.2'))} --library-path ${shellQuoted(libraries.join(':'))} ${shellQuoted(mysqld)} "$@"`,
    '',
  ].join('\n');
  if (!existsSync(mysqlWrapper) || readFileSync(mysqlWrapper, 'utf8') !== wrapper) {
    writeFileSync(mysqlWrapper, wrapper, { mode: 0o755 });
  }
}

// Run as a script (`node scripts/setup.js --for test`); imported, it only lends npmEnvironment.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  ensurePackages();
  ensureMysql();
  ensureNpmDependencies();
}
