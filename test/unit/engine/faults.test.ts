/**
 * The engine's faults give clear errors and lose nothing: a model or a batch larger than the device can
 * hold is refused with what was asked for (and the model keeps working), a batch larger than every
 * earlier one gets a new activation bucket, and a lost device is reported on the next call.
 */
import { describe, expect, it } from 'vitest';
import { GpuError } from '../../../core/errors.js';
import { Rng } from '../../../core/rng.js';
import { openEngineDevice } from '../../../models/engine/device.js';
import { EngineModel } from '../../../models/engine/model.js';
import { Runtime } from '../../../models/engine/runtime.js';
import { resolvePolicyConfig } from '../../../models/transformer.js';
import { requireRuntime } from './helpers.js';

const rt = await requireRuntime();
const small = resolvePolicyConfig({ dModel: 32, nLayers: 2, nHeads: 4, maxSeqLen: 4096, ropeTheta: 10000, normEps: 1e-5, qkvBias: false, initStd: 0.05, vocabSize: 50 });

function batch(B: number, T: number, seed: number) {
  const rng = new Rng(seed);
  return { tokens: Int32Array.from({ length: B * T }, () => rng.int(50)), batchSize: B, seqLen: T };
}

describe.skipIf(!rt)('engine faults', () => {
  it('a model larger than the device allows is refused with its size, before anything is allocated', async () => {
    const huge = resolvePolicyConfig({ dModel: 4096, nLayers: 8, nHeads: 32, maxSeqLen: 64, ropeTheta: 10000, normEps: 1e-5, qkvBias: false, initStd: 0.02, vocabSize: 50 });
    const error = await EngineModel.create(rt!, huge, 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GpuError);
    expect((error as GpuError).code).toBe('E_GPU');
    expect((error as Error).message).toMatch(/arena 'the 1611\.4M-parameter policy\/params' needs 6\.0 GiB, more than this device's largest buffer/);
  });

  it('a batch too large for the device names its bucket and bytes, and the model still works afterwards', async () => {
    const model = await EngineModel.create(rt!, small, 2, { precision: 'f32' });
    try {
      const before = await model.logProbs(batch(2, 16, 1));
      const error = await model.logProbs(batch(1024, 4096, 2)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(GpuError);
      expect((error as Error).message).toMatch(/activations for 4,194,304 tokens \(bucket of 1024 rows\).* needs [\d.]+ GiB/);
      expect(Array.from(await model.logProbs(batch(2, 16, 1)))).toEqual(Array.from(before));
    } finally {
      model.dispose();
    }
  });

  it('a batch larger than every earlier one gets a new bucket with the same results', async () => {
    const model = await EngineModel.create(rt!, small, 3, { precision: 'f32' });
    try {
      const one = batch(1, 40, 9);
      const alone = await model.logProbs(one);
      await model.logProbs(batch(2, 8, 3)); // a small bucket first
      const big = batch(9, 40, 4);
      big.tokens.set(one.tokens, 0);
      const together = await model.logProbs(big);
      Array.from(alone).forEach((x, t) => expect(Math.abs(together[t] - x)).toBeLessThan(1e-5));
    } finally {
      model.dispose();
    }
  });

  it('a lost device is reported on the next call as a retryable GPU error', async () => {
    const device = await openEngineDevice();
    const runtime = new Runtime(device);
    const model = await EngineModel.create(runtime, small, 4, { precision: 'f32' });
    device.device.destroy();
    await device.device.lost;
    await Promise.resolve();
    const error = await model.logProbs(batch(1, 8, 5)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GpuError);
    expect((error as GpuError).retryable).toBe(true);
    expect((error as Error).message).toMatch(/GPU device was lost .*restart the process \(the learner resumes from its last checkpoint\)/);
  });
});
