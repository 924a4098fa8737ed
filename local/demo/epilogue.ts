import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PrivateInstance } from '../private-instance.ts';
import { demoDatabase } from './sample-data.ts';

export interface EpilogueInput {
  /** The demo's directory. */
  root: string;
  storageUrl: string;
  topologyUrl: string;
  /** Instances by name; the one named `restored` is what the suggested restore goes into. */
  instances: ReadonlyMap<string, PrivateInstance>;
  keep: boolean;
}

/** A word for a shell command line: quoted when it holds anything a shell would read. */
function shellWord(word: string): string {
  return /^[\w/:.,=@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function isInside(url: string, root: string): boolean {
  if (!url.startsWith('file:')) return false;
  const relative = path.relative(root, fileURLToPath(url));
  return !relative.startsWith('..') && !path.isAbsolute(relative);
}

/**
 * What the demo ends with: where the backups and the topology are and two or three commands to try
 * on them (with --keep), or that they were removed and how to keep them. With --keep it writes the
 * input of the suggested restore into the demo's directory.
 */
export async function demoEpilogue(input: EpilogueInput): Promise<string> {
  const { root, storageUrl, topologyUrl, instances, keep } = input;
  const storage = shellWord(storageUrl);
  const shard = `${demoDatabase}/0`;
  const storageKept = keep || !isInside(storageUrl, root);
  const list = [
    `  npx stepback backups list --storage ${storage} --dir ${shard}`,
    `  npx stepback backups list --snapshots --storage ${storage} --dir ${shard}`,
  ];
  if (!keep) {
    return [
      '',
      `Removed the instances, the topology${storageKept ? '' : ' and the backups'} (they were in ${root}).`,
      ...(storageKept ? [`The backups stay in ${storageUrl}; look at them with:`, ...list] : []),
      'To keep everything and try stepback on it afterwards, run: npm run demo -- --keep',
      '',
    ].join('\n');
  }
  const lines = [
    '',
    `Kept everything in ${root}:`,
    `  backups   ${storageUrl}`,
    `  topology  ${topologyUrl}`,
    '  instances on 127.0.0.1, as root without a password:',
    ...[...instances].map(
      ([name, instance]) =>
        `    ${name.padEnd(9)} port ${instance.port}: mariadb --defaults-file=${instance.cnf} ${demoDatabase}`,
    ),
    'Try next:',
    ...list,
  ];
  const restored = instances.get('restored');
  if (restored) {
    const inputFile = path.join(root, 'restore-input.json');
    const restoreInput = {
      keyspace: demoDatabase,
      shard: '0',
      host: restored.cnf,
      deleteBeforeRestore: true,
    };
    await fs.writeFile(inputFile, `${JSON.stringify(restoreInput, null, 2)}\n`);
    lines.push(`  npx stepback-local restore --input ${shellWord(inputFile)} --storage ${storage}`);
  }
  lines.push(
    'Stop the instances and remove everything with:',
    ...[...instances.values()].map((i) => `  mariadb-admin --defaults-file=${i.cnf} shutdown`),
    `  rm -rf ${root}`,
    '',
  );
  return lines.join('\n');
}
