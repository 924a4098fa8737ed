import { z } from 'zod';

/**
 * The systemd unit that runs mysqld on a host (`mariadb`, `mysqld@shard1.service`): when one is
 * named, the agent stops and starts mysqld through systemctl instead of running it itself.
 */
export const SystemdService = z
  .string()
  .regex(/^[A-Za-z0-9@._-]{1,256}$/, 'must be a systemd unit name: letters, digits, "@", ".", "_" or "-"');
