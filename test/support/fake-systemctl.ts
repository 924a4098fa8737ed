import fs from 'node:fs/promises';
import path from 'node:path';
import type { PrivateInstance } from '../../local/private-instance.ts';
import { tempDir } from './root.ts';

/**
 * A `systemctl` for one unit that runs a private instance, put first on PATH for a child process:
 * `start` spawns mariadbd detached with the unit's defaults file and `$MYSQLD_OPTS` (as MariaDB's and
 * MySQL's units pass it), `stop` sends SIGTERM (a clean shutdown) and waits for the process,
 * `is-active` reads the pid file, `set-environment`/`unset-environment` keep MYSQLD_OPTS between
 * calls. Any other unit name fails the way systemctl does. Every call is logged, one per line.
 */
export interface FakeSystemctl {
  /** Prepended to PATH in the child's environment. */
  readonly binDir: string;
  env(): Record<string, string>;
  /** The calls so far, `start mariadb` etc. */
  calls(): Promise<string[]>;
}

const script = `#!/bin/bash
set -u
state="$STEPBACK_FAKE_SYSTEMD_STATE"
echo "$*" >> "$state/calls"
running() {
  local pid
  pid=$(cat "$STEPBACK_FAKE_SYSTEMD_PIDFILE" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
  # A zombie has exited: only its parent has not collected it yet.
  [ "$(sed 's/.*) //' "/proc/$pid/stat" | cut -c1)" != Z ] && echo "$pid"
}
command="$1"; shift
case "$command" in
  set-environment) printf '%s' "\${1#MYSQLD_OPTS=}" > "$state/MYSQLD_OPTS"; exit 0 ;;
  unset-environment) rm -f "$state/MYSQLD_OPTS"; exit 0 ;;
esac
if [ "\${1:-}" != "$STEPBACK_FAKE_SYSTEMD_UNIT" ]; then
  echo "Failed to $command \${1:-}.service: Unit \${1:-}.service not found." >&2
  exit 5
fi
case "$command" in
  is-active)
    if running > /dev/null; then echo active; else echo inactive; exit 3; fi ;;
  start)
    running > /dev/null && exit 0
    opts=$(cat "$state/MYSQLD_OPTS" 2>/dev/null || true)
    # shellcheck disable=SC2086
    setsid "$STEPBACK_FAKE_SYSTEMD_MYSQLD" --defaults-file="$STEPBACK_FAKE_SYSTEMD_CNF" $opts \\
      < /dev/null > /dev/null 2>&1 &
    exit 0 ;;
  stop)
    pid=$(running) || exit 0
    kill -TERM "$pid"
    while running > /dev/null; do sleep 0.05; done ;;
  *) echo "unknown command $command" >&2; exit 1 ;;
esac
`;

export async function fakeSystemctl(unit: string, instance: PrivateInstance): Promise<FakeSystemctl> {
  const root = await tempDir('fake-systemd');
  const binDir = path.join(root, 'bin');
  const state = path.join(root, 'state');
  await fs.mkdir(binDir);
  await fs.mkdir(state);
  await fs.writeFile(path.join(binDir, 'systemctl'), script, { mode: 0o755 });
  return {
    binDir,
    env: () => ({
      PATH: `${binDir}${path.delimiter}${process.env.PATH ?? ''}`,
      STEPBACK_FAKE_SYSTEMD_STATE: state,
      STEPBACK_FAKE_SYSTEMD_UNIT: unit,
      STEPBACK_FAKE_SYSTEMD_PIDFILE: instance.pidFile,
      STEPBACK_FAKE_SYSTEMD_MYSQLD: instance.binaries.mysqld,
      STEPBACK_FAKE_SYSTEMD_CNF: instance.cnf,
    }),
    async calls() {
      const text = await fs.readFile(path.join(state, 'calls'), 'utf8').catch(() => '');
      return text.split('\n').filter(Boolean);
    },
  };
}
