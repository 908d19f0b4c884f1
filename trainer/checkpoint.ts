/**
 * Learner checkpoints on disk. One directory per save:
 *
 *   <dir>/iter-000123/model.safetensors      parameters
 *                     optimizer.safetensors  optimizer slots; metadata `step`
 *                     state.json             rng state, data position, metrics summary (caller-defined JSON)
 *                     manifest.json          iteration + sha256 and size of the three files above
 *
 * A save is written into a hidden temp directory, fsynced, then renamed into place, so a crash mid-save
 * leaves either the previous set of checkpoints or a temp directory that every reader ignores.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { CheckpointError, ConfigError } from '../core/errors.js';
import { decodeSafetensors, encodeSafetensors, type NamedTensor } from '../models/safetensors.js';

/** What a checkpoint holds. */
export interface CheckpointPayload {
  model: Record<string, NamedTensor>;
  optimizer: { step: number; tensors: Record<string, NamedTensor> };
  /** JSON-serialisable training state: rng state, data position, metrics summary. */
  state: unknown;
}

/** A checkpoint read back by {@link loadCheckpoint}. */
export interface LoadedCheckpoint extends CheckpointPayload {
  iteration: number;
  path: string;
}

/** A checkpoint directory found by {@link listCheckpoints} (not yet verified). */
export interface CheckpointEntry {
  iteration: number;
  path: string;
}

/** manifest.json contents. */
interface Manifest {
  format: typeof MANIFEST_FORMAT;
  iteration: number;
  createdAt: string;
  files: Record<string, { sha256: string; bytes: number }>;
}

const MANIFEST_FORMAT = 'horizon-checkpoint/1';
const MANIFEST_FILE = 'manifest.json';
const MODEL_FILE = 'model.safetensors';
const OPTIMIZER_FILE = 'optimizer.safetensors';
const STATE_FILE = 'state.json';
const PAYLOAD_FILES = [MODEL_FILE, OPTIMIZER_FILE, STATE_FILE] as const;
const CHECKPOINT_NAME = /^iter-(\d+)$/;
const TEMP_PREFIX = '.tmp-';
const TRASH_PREFIX = '.trash-';

/** Directory name of an iteration's checkpoint (`iter-000123`; wider past 999999). */
export function checkpointName(iteration: number): string {
  return `iter-${String(iteration).padStart(6, '0')}`;
}

/** Internal: one problem with one checkpoint, turned into a CheckpointError (with sibling listing) by `withReport`. */
class CheckpointProblem {
  constructor(
    readonly detail: string,
    readonly cause?: unknown,
  ) {}
}

function fail(detail: string, cause?: unknown): never {
  throw new CheckpointProblem(detail, cause);
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Write a file and fsync it, so the rename that publishes the directory never exposes unwritten data. */
async function writeDurably(path: string, bytes: Uint8Array): Promise<void> {
  const handle = await open(path, 'wx');
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** fsync a directory so renames and new entries in it survive a power loss. */
async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Save a checkpoint for `iteration` under `dir` and return its path. Saving an iteration that already has a
 * checkpoint replaces it. Throws CheckpointError when the state is not JSON-serialisable or tensors are invalid.
 */
export async function saveCheckpoint(dir: string, iteration: number, payload: CheckpointPayload): Promise<string> {
  if (!Number.isSafeInteger(iteration) || iteration < 0) {
    throw new CheckpointError(`checkpoint iteration must be a non-negative integer, got ${iteration}`);
  }
  if (!Number.isSafeInteger(payload.optimizer.step) || payload.optimizer.step < 0) {
    throw new CheckpointError(`optimizer step must be a non-negative integer, got ${payload.optimizer.step}`);
  }
  let stateJson: string | undefined;
  try {
    stateJson = JSON.stringify(payload.state, null, 2);
  } catch (err) {
    throw new CheckpointError(`checkpoint state is not JSON-serialisable: ${(err as Error).message}`, { cause: err });
  }
  if (stateJson === undefined) throw new CheckpointError('checkpoint state is not JSON-serialisable (got undefined or a function)');

  const files: Record<string, Uint8Array> = {
    [MODEL_FILE]: encodeSafetensors(payload.model, { format: 'horizon', kind: 'model', iteration: String(iteration) }),
    [OPTIMIZER_FILE]: encodeSafetensors(payload.optimizer.tensors, {
      format: 'horizon',
      kind: 'optimizer',
      iteration: String(iteration),
      step: String(payload.optimizer.step),
    }),
    [STATE_FILE]: new TextEncoder().encode(`${stateJson}\n`),
  };
  const manifest: Manifest = { format: MANIFEST_FORMAT, iteration, createdAt: new Date().toISOString(), files: {} };
  for (const [name, bytes] of Object.entries(files)) manifest.files[name] = { sha256: sha256Hex(bytes), bytes: bytes.byteLength };

  const root = resolve(dir);
  await mkdir(root, { recursive: true });
  const name = checkpointName(iteration);
  const finalPath = join(root, name);
  const tempPath = join(root, `${TEMP_PREFIX}${name}-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(tempPath);
  try {
    for (const [fileName, bytes] of Object.entries(files)) await writeDurably(join(tempPath, fileName), bytes);
    // The manifest goes last: a directory without one is never treated as a checkpoint.
    await writeDurably(join(tempPath, MANIFEST_FILE), new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`));
    await syncDirectory(tempPath);

    let trashPath: string | undefined;
    if (await exists(finalPath)) {
      trashPath = join(root, `${TRASH_PREFIX}${name}-${process.pid}-${randomBytes(4).toString('hex')}`);
      await rename(finalPath, trashPath);
    }
    await rename(tempPath, finalPath);
    await syncDirectory(root);
    if (trashPath !== undefined) await rm(trashPath, { recursive: true, force: true });
  } catch (err) {
    await rm(tempPath, { recursive: true, force: true });
    if (err instanceof CheckpointError) throw err;
    throw new CheckpointError(`could not write checkpoint ${finalPath}: ${(err as Error).message}`, { cause: err });
  }
  return finalPath;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Checkpoint directories under `dir`, oldest first. Temp and trash directories are ignored; a missing dir gives []. */
export async function listCheckpoints(dir: string): Promise<CheckpointEntry[]> {
  const root = resolve(dir);
  let names: string[];
  try {
    names = await readdir(root);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new CheckpointError(`cannot list checkpoints in ${root}: ${(err as Error).message}`, { cause: err });
  }
  const entries: CheckpointEntry[] = [];
  for (const name of names) {
    const match = CHECKPOINT_NAME.exec(name);
    if (match === null) continue;
    const path = join(root, name);
    if (
      !(await stat(path).then(
        (s) => s.isDirectory(),
        () => false,
      ))
    )
      continue;
    entries.push({ iteration: Number(match[1]), path });
  }
  return entries.sort((a, b) => a.iteration - b.iteration);
}

/** Read a payload file and check it against the manifest. */
async function readVerified(path: string, manifest: Manifest, fileName: string): Promise<Uint8Array> {
  const expected = manifest.files[fileName];
  if (expected === undefined || typeof expected.sha256 !== 'string' || typeof expected.bytes !== 'number') {
    fail(`${MANIFEST_FILE} has no valid entry for ${fileName}`);
  }
  let bytes: Uint8Array;
  try {
    bytes = await readFile(join(path, fileName));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') fail(`${fileName} is missing`, err);
    fail(`${fileName} cannot be read: ${(err as Error).message}`, err);
  }
  if (bytes.byteLength !== expected.bytes) {
    fail(`${fileName} is corrupt: ${bytes.byteLength} bytes, the manifest says ${expected.bytes} (truncated or overwritten)`);
  }
  const actual = sha256Hex(bytes);
  if (actual !== expected.sha256) fail(`${fileName} is corrupt: sha256 ${actual} does not match the manifest's ${expected.sha256}`);
  return bytes;
}

async function readManifest(path: string): Promise<Manifest> {
  let text: string;
  try {
    text = await readFile(join(path, MANIFEST_FILE), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      fail(
        (await exists(path)) ? `${MANIFEST_FILE} is missing (incomplete or foreign directory)` : 'the checkpoint directory does not exist',
        err,
      );
    }
    fail(`${MANIFEST_FILE} cannot be read: ${(err as Error).message}`, err);
  }
  let manifest: Manifest;
  try {
    manifest = JSON.parse(text) as Manifest;
  } catch (err) {
    fail(`${MANIFEST_FILE} is corrupt: ${(err as Error).message}`, err);
  }
  if (typeof manifest !== 'object' || manifest === null || manifest.format !== MANIFEST_FORMAT) {
    fail(
      `${MANIFEST_FILE} is not a ${MANIFEST_FORMAT} manifest (format ${JSON.stringify((manifest as Partial<Manifest> | null)?.format)})`,
    );
  }
  if (!Number.isSafeInteger(manifest.iteration) || typeof manifest.files !== 'object' || manifest.files === null) {
    fail(`${MANIFEST_FILE} is corrupt: missing iteration or files`);
  }
  return manifest;
}

/**
 * Run `body` for the checkpoint at `path`; a CheckpointProblem becomes a CheckpointError that names the
 * path, the problem and the other checkpoints in the same parent directory (newest first) to fall back on.
 */
async function withReport<T>(path: string, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    if (!(err instanceof CheckpointProblem)) throw err;
    const others = (await listCheckpoints(dirname(path)).catch(() => [] as CheckpointEntry[])).filter((e) => e.path !== path);
    const hint = others.length
      ? `Other checkpoints in ${dirname(path)}: ${others
          .map((e) => basename(e.path))
          .reverse()
          .join(', ')}.`
      : `No other checkpoints in ${dirname(path)}.`;
    throw new CheckpointError(`checkpoint ${path} is unusable: ${err.detail}. ${hint}`, {
      cause: err.cause,
      context: { path, others: others.map((e) => e.path) },
    });
  }
}

async function readAndVerify(root: string): Promise<{ manifest: Manifest; files: Record<string, Uint8Array> }> {
  const manifest = await readManifest(root);
  const named = CHECKPOINT_NAME.exec(basename(root));
  if (named !== null && Number(named[1]) !== manifest.iteration) {
    fail(
      `${MANIFEST_FILE} says iteration ${manifest.iteration} but the directory is named for ${Number(named[1])} (copied or renamed by hand?)`,
    );
  }
  const files: Record<string, Uint8Array> = {};
  for (const fileName of PAYLOAD_FILES) files[fileName] = await readVerified(root, manifest, fileName);
  return { manifest, files };
}

/**
 * Verify a checkpoint's manifest and file hashes without decoding the tensors. Throws the same
 * CheckpointError as {@link loadCheckpoint}; returns the iteration.
 */
export async function verifyCheckpoint(path: string): Promise<number> {
  const root = resolve(path);
  return withReport(root, async () => (await readAndVerify(root)).manifest.iteration);
}

/**
 * Load and verify a checkpoint directory. Any missing, truncated or corrupt file → CheckpointError naming the
 * file and listing the other checkpoints in the same parent directory.
 */
export async function loadCheckpoint(path: string): Promise<LoadedCheckpoint> {
  const root = resolve(path);
  return withReport(root, async () => {
    const { manifest, files } = await readAndVerify(root);
    const model = decodeOrFail(MODEL_FILE, files[MODEL_FILE]).tensors;
    const optimizer = decodeOrFail(OPTIMIZER_FILE, files[OPTIMIZER_FILE]);
    const step = Number(optimizer.metadata.step);
    if (!Number.isSafeInteger(step) || step < 0)
      fail(`${OPTIMIZER_FILE} metadata has no valid step (${JSON.stringify(optimizer.metadata.step)})`);
    let state: unknown;
    try {
      state = JSON.parse(new TextDecoder().decode(files[STATE_FILE]));
    } catch (err) {
      fail(`${STATE_FILE} is not valid JSON: ${(err as Error).message}`, err);
    }
    return { iteration: manifest.iteration, path: root, model, optimizer: { step, tensors: optimizer.tensors }, state };
  });
}

function decodeOrFail(fileName: string, bytes: Uint8Array): ReturnType<typeof decodeSafetensors> {
  try {
    return decodeSafetensors(bytes);
  } catch (err) {
    fail(`${fileName} does not decode: ${(err as Error).message}`, err);
  }
}

/** Path of the newest checkpoint under `dir` whose manifest and hashes verify, or undefined when none does. */
export async function latestValidCheckpoint(dir: string): Promise<string | undefined> {
  const entries = await listCheckpoints(dir);
  for (let i = entries.length - 1; i >= 0; i--) {
    try {
      await verifyCheckpoint(entries[i].path);
      return entries[i].path;
    } catch (err) {
      if (!(err instanceof CheckpointError)) throw err;
    }
  }
  return undefined;
}

/**
 * Keep the newest `keep` checkpoints (and always the newest valid one, even if older) and delete the rest,
 * plus temp/trash directories left by saves of processes that are no longer running. Returns deleted paths.
 */
export async function pruneCheckpoints(dir: string, keep: number, options: { alwaysKeep?: readonly number[] } = {}): Promise<string[]> {
  if (!Number.isSafeInteger(keep) || keep < 1) throw new ConfigError(`checkpoint keep count must be an integer >= 1, got ${keep}`);
  const root = resolve(dir);
  const entries = await listCheckpoints(root);
  const kept = new Set(entries.slice(-keep).map((e) => e.path));
  // Checkpoints of these iterations are never pruned (the learner keeps its warm start, iteration 0).
  for (const e of entries) if (options.alwaysKeep?.includes(e.iteration)) kept.add(e.path);
  const newestValid = await latestValidCheckpoint(root);
  if (newestValid !== undefined) kept.add(newestValid);

  const removed: string[] = [];
  for (const entry of entries) {
    if (kept.has(entry.path)) continue;
    await rm(entry.path, { recursive: true, force: true });
    removed.push(entry.path);
  }
  for (const name of await readdir(root).catch(() => [] as string[])) {
    if (!name.startsWith(TEMP_PREFIX) && !name.startsWith(TRASH_PREFIX)) continue;
    const ownerPid = Number(/-(\d+)-[0-9a-f]+$/.exec(name)?.[1]);
    if (Number.isSafeInteger(ownerPid) && isProcessAlive(ownerPid)) continue;
    await rm(join(root, name), { recursive: true, force: true });
    removed.push(join(root, name));
  }
  return removed;
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
