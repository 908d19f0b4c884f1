import { createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CheckpointError, ConfigError } from '../../../core/errors.js';
import { Rng } from '../../../core/rng.js';
import { decodeSafetensors } from '../../../models/safetensors.js';
import {
  checkpointName,
  latestValidCheckpoint,
  listCheckpoints,
  loadCheckpoint,
  pruneCheckpoints,
  saveCheckpoint,
  verifyCheckpoint,
  type CheckpointPayload,
} from '../../../trainer/checkpoint.js';

function payload(seed: number): CheckpointPayload {
  const rng = new Rng(seed);
  const weights = Float32Array.from({ length: 6 }, () => rng.normal());
  return {
    model: {
      'wte.weight': { dtype: 'F32', shape: [2, 3], data: weights },
      'ln.bias': { dtype: 'F32', shape: [3], data: new Float32Array([0.5, -0.25, 0]) },
    },
    optimizer: {
      step: seed * 10,
      tensors: {
        'wte.weight.m': { dtype: 'F32', shape: [2, 3], data: weights.map((w) => w * 0.1) },
        'wte.weight.v': { dtype: 'F32', shape: [2, 3], data: weights.map((w) => w * w) },
      },
    },
    state: { rng: rng.state(), dataPosition: { epoch: 1, index: seed }, metrics: { meanReward: 0.25 } },
  };
}

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'horizon-ckpt-'));
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

async function expectCheckpointError(promise: Promise<unknown>, ...patterns: RegExp[]): Promise<CheckpointError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CheckpointError);
  for (const pattern of patterns) expect((err as Error).message).toMatch(pattern);
  return err as CheckpointError;
}

describe('saveCheckpoint / loadCheckpoint', () => {
  it('writes the four files into iter-NNNNNN and reads back identical tensors and state', async () => {
    const saved = payload(3);
    const path = await saveCheckpoint(root, 123, saved);
    expect(path).toBe(join(root, 'iter-000123'));
    expect(readdirSync(path).sort()).toEqual(['manifest.json', 'model.safetensors', 'optimizer.safetensors', 'state.json']);
    expect(readdirSync(root)).toEqual(['iter-000123']);

    const loaded = await loadCheckpoint(path);
    expect(loaded.iteration).toBe(123);
    expect(loaded.path).toBe(path);
    expect(loaded.optimizer.step).toBe(30);
    expect(loaded.state).toEqual(saved.state);
    for (const [name, tensor] of Object.entries(saved.model)) {
      expect(loaded.model[name].shape).toEqual(tensor.shape);
      expect(Array.from(loaded.model[name].data)).toEqual(Array.from(tensor.data));
    }
    for (const [name, tensor] of Object.entries(saved.optimizer.tensors)) {
      expect(Array.from(loaded.optimizer.tensors[name].data)).toEqual(Array.from(tensor.data));
    }
    // The restored rng continues the same stream as the one that was saved.
    const original = new Rng((saved.state as { rng: number[] }).rng);
    const restored = new Rng((loaded.state as { rng: number[] }).rng);
    expect([restored.nextU32(), restored.nextU32()]).toEqual([original.nextU32(), original.nextU32()]);
  });

  it('records sha256 and size of every file in the manifest', async () => {
    const path = await saveCheckpoint(root, 7, payload(1));
    const manifest = JSON.parse(readFileSync(join(path, 'manifest.json'), 'utf8'));
    expect(manifest.iteration).toBe(7);
    expect(Object.keys(manifest.files).sort()).toEqual(['model.safetensors', 'optimizer.safetensors', 'state.json']);
    for (const [name, entry] of Object.entries(manifest.files as Record<string, { sha256: string; bytes: number }>)) {
      const bytes = readFileSync(join(path, name));
      expect(entry.bytes).toBe(bytes.length);
      expect(entry.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    }
    // model.safetensors is a plain safetensors file that other tools can read.
    const { metadata } = decodeSafetensors(readFileSync(join(path, 'model.safetensors')));
    expect(metadata).toMatchObject({ kind: 'model', iteration: '7' });
  });

  it('replaces an existing checkpoint of the same iteration', async () => {
    await saveCheckpoint(root, 5, payload(1));
    await saveCheckpoint(root, 5, payload(2));
    expect(readdirSync(root)).toEqual(['iter-000005']);
    expect((await loadCheckpoint(join(root, 'iter-000005'))).optimizer.step).toBe(20);
  });

  it('refuses state that is not JSON and leaves nothing behind', async () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await expectCheckpointError(saveCheckpoint(root, 1, { ...payload(1), state: cyclic }), /state is not JSON-serialisable/);
    await expectCheckpointError(saveCheckpoint(root, 1, { ...payload(1), state: undefined }), /not JSON-serialisable/);
    expect(readdirSync(root)).toEqual([]);
  });

  it('cleans up the temp dir when encoding fails midway', async () => {
    const bad = payload(1);
    bad.optimizer.tensors.broken = { dtype: 'F32', shape: [4], data: new Float32Array(3) };
    await expectCheckpointError(saveCheckpoint(root, 2, bad), /"broken" has shape \[4\]/);
    expect(readdirSync(root)).toEqual([]);
  });
});

describe('corruption is reported precisely', () => {
  let path: string;
  beforeEach(async () => {
    await saveCheckpoint(root, 10, payload(1));
    await saveCheckpoint(root, 20, payload(2));
    path = await saveCheckpoint(root, 30, payload(3));
  });

  it('a flipped byte in model.safetensors', async () => {
    const file = join(path, 'model.safetensors');
    const bytes = readFileSync(file);
    bytes[bytes.length - 1] ^= 0x01;
    writeFileSync(file, bytes);
    const err = await expectCheckpointError(
      loadCheckpoint(path),
      /iter-000030 is unusable: model\.safetensors is corrupt: sha256 [0-9a-f]{64} does not match/,
      /Other checkpoints in .*: iter-000020, iter-000010\./,
    );
    expect(err.code).toBe('E_CHECKPOINT');
  });

  it('a truncated optimizer.safetensors', async () => {
    const file = join(path, 'optimizer.safetensors');
    const size = readFileSync(file).length;
    truncateSync(file, size - 5);
    await expectCheckpointError(
      loadCheckpoint(path),
      new RegExp(`optimizer\\.safetensors is corrupt: ${size - 5} bytes, the manifest says ${size}`),
    );
  });

  it('a deleted file', async () => {
    unlinkSync(join(path, 'optimizer.safetensors'));
    await expectCheckpointError(loadCheckpoint(path), /optimizer\.safetensors is missing/);
  });

  it('garbage in state.json', async () => {
    writeFileSync(join(path, 'state.json'), '{not json');
    await expectCheckpointError(loadCheckpoint(path), /state\.json is corrupt: 9 bytes, the manifest says \d+/);
  });

  it('state.json that matches its manifest entry but is not JSON', async () => {
    // A consistent manifest (e.g. written by a buggy tool) must still not produce a silent bad load.
    const garbage = Buffer.from('{not json');
    writeFileSync(join(path, 'state.json'), garbage);
    const manifestFile = join(path, 'manifest.json');
    const manifest = JSON.parse(readFileSync(manifestFile, 'utf8'));
    manifest.files['state.json'] = { sha256: createHash('sha256').update(garbage).digest('hex'), bytes: garbage.length };
    writeFileSync(manifestFile, JSON.stringify(manifest));
    await expectCheckpointError(loadCheckpoint(path), /state\.json is not valid JSON/);
  });

  it('a missing or unparsable manifest', async () => {
    writeFileSync(join(path, 'manifest.json'), '{"format": "horizon-checkpoint/1", ');
    await expectCheckpointError(loadCheckpoint(path), /manifest\.json is corrupt/);
    unlinkSync(join(path, 'manifest.json'));
    await expectCheckpointError(loadCheckpoint(path), /manifest\.json is missing/);
  });

  it('a checkpoint copied under another iteration name', async () => {
    const copy = join(root, 'iter-000040');
    mkdirSync(copy);
    for (const name of readdirSync(path)) writeFileSync(join(copy, name), readFileSync(join(path, name)));
    await expectCheckpointError(loadCheckpoint(copy), /manifest\.json says iteration 30 but the directory is named for 40/);
  });

  it('a directory that does not exist', async () => {
    await expectCheckpointError(
      loadCheckpoint(join(root, 'iter-000099')),
      /does not exist\. Other checkpoints in .*: iter-000030, iter-000020, iter-000010\./,
    );
  });

  it('latestValidCheckpoint skips corrupt checkpoints and verifyCheckpoint names the file', async () => {
    expect(await latestValidCheckpoint(root)).toBe(path);
    truncateSync(join(path, 'model.safetensors'), 10);
    await expectCheckpointError(verifyCheckpoint(path), /model\.safetensors is corrupt/);
    expect(await latestValidCheckpoint(root)).toBe(join(root, 'iter-000020'));
  });
});

describe('listing, atomicity and pruning', () => {
  it('lists checkpoints by iteration, ignoring temp/trash dirs, stray files and other names', async () => {
    await saveCheckpoint(root, 100, payload(1));
    await saveCheckpoint(root, 9, payload(2));
    await saveCheckpoint(root, 1_000_000, payload(3));
    // What a crash mid-save leaves behind: a temp dir with some files but no manifest.
    const crashed = join(root, '.tmp-iter-000200-999999-abcd1234');
    mkdirSync(crashed);
    writeFileSync(join(crashed, 'model.safetensors'), 'partial');
    writeFileSync(join(root, 'iter-000300'), 'a file, not a directory');
    mkdirSync(join(root, 'notes'));
    const listed = await listCheckpoints(root);
    expect(listed.map((e) => e.iteration)).toEqual([9, 100, 1_000_000]);
    expect(listed[2].path).toBe(join(root, 'iter-1000000'));
    expect(await latestValidCheckpoint(root)).toBe(join(root, 'iter-1000000'));
    expect(await listCheckpoints(join(root, 'missing'))).toEqual([]);
    expect(await latestValidCheckpoint(join(root, 'missing'))).toBeUndefined();
  });

  it('a renamed-in-place directory without a manifest is not a valid checkpoint', async () => {
    await saveCheckpoint(root, 1, payload(1));
    mkdirSync(join(root, checkpointName(2)));
    writeFileSync(join(root, checkpointName(2), 'model.safetensors'), 'x');
    expect(await latestValidCheckpoint(root)).toBe(join(root, 'iter-000001'));
  });

  it('prunes to the newest N, always keeps the newest valid one, and removes dead temp dirs', async () => {
    for (const iteration of [1, 2, 3, 4, 5]) await saveCheckpoint(root, iteration, payload(iteration));
    const deadTemp = join(root, '.tmp-iter-000006-999999-deadbeef');
    const liveTemp = join(root, `.tmp-iter-000007-${process.pid}-feedbeef`);
    mkdirSync(deadTemp);
    mkdirSync(liveTemp);
    // Corrupt the newest two: keep=2 would otherwise leave no usable checkpoint.
    unlinkSync(join(root, 'iter-000005', 'state.json'));
    truncateSync(join(root, 'iter-000004', 'model.safetensors'), 3);
    const removed = await pruneCheckpoints(root, 2);
    expect(removed.sort()).toEqual([join(root, 'iter-000001'), join(root, 'iter-000002'), deadTemp].sort());
    expect(readdirSync(root).sort()).toEqual([liveTemp.slice(root.length + 1), 'iter-000003', 'iter-000004', 'iter-000005'].sort());
    expect(await latestValidCheckpoint(root)).toBe(join(root, 'iter-000003'));
    await expect(pruneCheckpoints(root, 0)).rejects.toBeInstanceOf(ConfigError);
  });

  it('never prunes the iterations it is told to keep (the warm start)', async () => {
    for (const iteration of [0, 1, 2, 3]) await saveCheckpoint(root, iteration, payload(iteration));
    const removed = await pruneCheckpoints(root, 1, { alwaysKeep: [0] });
    expect(removed.sort()).toEqual([join(root, 'iter-000001'), join(root, 'iter-000002')].sort());
    expect(readdirSync(root).sort()).toEqual(['iter-000000', 'iter-000003']);
  });
});
