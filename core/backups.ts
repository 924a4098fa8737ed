import { ManifestError, MissingFileError, messageOf } from './errors.ts';
import { type BackupManifest, MANIFEST_FILE, parseManifest } from './manifest.ts';
import type { BackupHandle, BackupStorage } from './storage/types.ts';
import { mapConcurrent } from './stream/concurrency.ts';

/** A MANIFEST larger than this is refused before it is parsed (it lists files, not data). */
const MAX_MANIFEST_BYTES = 256 * 1024 * 1024;

/** Reads and validates a backup's MANIFEST; ManifestError when it is missing or invalid. */
export async function readManifest(handle: BackupHandle, signal?: AbortSignal): Promise<BackupManifest> {
  const label = `${handle.dir}/${handle.name}`;
  let stream: NodeJS.ReadableStream;
  try {
    stream = await handle.readFile(MANIFEST_FILE, signal ? { signal } : {});
  } catch (error) {
    if (error instanceof MissingFileError)
      throw new ManifestError('has no MANIFEST (incomplete)', label, { cause: error });
    throw error;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_MANIFEST_BYTES)
      throw new ManifestError(`MANIFEST is larger than ${MAX_MANIFEST_BYTES} bytes`, label);
    chunks.push(chunk);
  }
  return parseManifest(Buffer.concat(chunks).toString('utf8'), label);
}

/** One backup as a listing shows it: complete with its manifest, or incomplete with the reason. */
export type BackupSummary =
  | { dir: string; name: string; complete: true; manifest: BackupManifest }
  | { dir: string; name: string; complete: false; problem: string };

export async function inspectBackup(handle: BackupHandle): Promise<BackupSummary> {
  try {
    return { dir: handle.dir, name: handle.name, complete: true, manifest: await readManifest(handle) };
  } catch (error) {
    if (!(error instanceof ManifestError)) throw error;
    return { dir: handle.dir, name: handle.name, complete: false, problem: messageOf(error) };
  }
}

/** Every backup in `dir`, oldest first, each with its manifest read (a few at a time). */
export async function inspectBackups(
  storage: BackupStorage,
  dir: string,
  concurrency = 16,
): Promise<BackupSummary[]> {
  const handles = await storage.listBackups(dir);
  return mapConcurrent(handles, concurrency, (handle) => inspectBackup(handle));
}
