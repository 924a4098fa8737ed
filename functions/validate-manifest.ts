import { z } from 'zod';
import { readManifest, validateBackup } from '../core/backups.ts';
import { VerificationError } from '../core/errors.ts';
import { BackupDir, BackupName } from '../core/paths.ts';
import { openSnapshot } from '../core/snapshots.ts';
import { mapConcurrent } from '../core/stream/concurrency.ts';
import { defineFunction, lambdaHandler, withStorage } from './runtime.ts';

/**
 * Checks backups before anything relies on them: the MANIFEST parses (schema, safe paths) and every
 * file it lists is stored with its size. Fails with INVALID_MANIFEST or VERIFICATION_FAILED naming
 * each problem.
 */

const BackupRef = z.object({ dir: BackupDir, name: BackupName });

export const ValidateManifestEvent = z.union([
  BackupRef.extend({ deep: z.boolean().optional() }),
  z.object({ backups: z.array(BackupRef).min(1).max(1000), deep: z.boolean().optional() }),
  /** Snapshots by address (`shop/0/-80`), as `snapshot` reports them; found where storage keeps them. */
  z.object({ snapshots: z.array(BackupRef).min(1).max(1000), deep: z.boolean().optional() }),
]);

export const validateManifest = defineFunction({
  name: 'validate-manifest',
  event: ValidateManifestEvent,
  run: (event, context) =>
    withStorage(context, async (storage) => {
      const snapshots = 'snapshots' in event;
      const refs =
        'snapshots' in event
          ? event.snapshots
          : 'backups' in event
            ? event.backups
            : [{ dir: event.dir, name: event.name }];
      const reports = await mapConcurrent(refs, 4, async (ref) => {
        const handle = snapshots
          ? await openSnapshot(storage, ref.dir, ref.name)
          : storage.openBackup(ref.dir, ref.name);
        const manifest = await readManifest(handle);
        const report = await validateBackup(handle, manifest, { deep: Boolean(event.deep) });
        return { ...report, dir: ref.dir, position: manifest.position };
      });
      const problems = reports.flatMap((report) =>
        report.problems.map((p) => `${report.dir}/${report.name}${p.file ? ` ${p.file}` : ''}: ${p.problem}`),
      );
      if (problems.length > 0) {
        throw new VerificationError(
          `${problems.length} problem(s): ${problems.slice(0, 10).join('; ')}${problems.length > 10 ? '; …' : ''}`,
          { hint: 'do not restore this backup; take a new one, and check the bucket for deleted objects' },
        );
      }
      return {
        backups: reports.map((r) => ({ dir: r.dir, name: r.name, files: r.files, position: r.position })),
      };
    }),
});

export const handler = lambdaHandler(validateManifest);
