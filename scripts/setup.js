#!/usr/bin/env node
// Set-up shared by `npm test`, `npm run demo` and `npm run bench`: npm dependencies when missing, and
// the database server binaries (and, for the bench, the peer tools) from Debian when run as root.
// Plain JavaScript that runs on any Node >= 18, because it runs before the project's Node 22 exists.
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const purpose = process.argv.includes('--for') ? process.argv[process.argv.indexOf('--for') + 1] : 'test';

/** Debian packages each purpose needs, keyed by a binary that proves the package is there. */
const needs = {
  bundle: {},
  test: { mariadbd: 'mariadb-server', 'mariadb-install-db': 'mariadb-server', mariadb: 'mariadb-client' },
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

function ensureNpmDependencies() {
  const marker = path.join(root, 'node_modules', '.package-lock.json');
  const node22 = path.join(root, 'node_modules', 'node', 'bin', 'node');
  if (existsSync(marker) && existsSync(node22)) return;
  say('installing npm dependencies (npm ci)');
  const result = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
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

ensurePackages();
ensureNpmDependencies();
