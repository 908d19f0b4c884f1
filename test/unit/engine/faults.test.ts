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
const small = resolvePolicyConfig({
  dModel: 32,
  nLayers: 2,
  nHeads: 4,
  maxSeqLen: 4096,
  ropeTheta: 10000,
  normEps: 1e-5,
  qkvBias: false,
  initStd: 0.05,
  vocabSize: 50,
});

function batch(B: number, T: number, seed: number) {
  const rng = new Rng(seed);
  return { tokens: Int32Array.from({ length: B * T }, () => rng.int(50)), batchSize: B, seqLen: T };
}

describe.skipIf(!rt)('engine faults', () => {
  it('a model larger than the device allows is refused with its size, before anything is allocated', async () => {
    const huge = resolvePolicyConfig({
      dModel: 4096,
      nLayers: 8,
      nHeads: 32,
      maxSeqLen: 64,
      ropeTheta: 10000,
      normEps: 1e-5,
      qkvBias: false,
      initStd: 0.02,
      vocabSize: 50,
    });
    const error = await EngineModel.create(rt!, huge, 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GpuError);
    expect((error as GpuError).code).toBe('E_GPU');
    expect((error as Error).message).toMatch(
      /arena 'the 1611\.4M-parameter policy\/params' needs 6\.0 GiB, more than this device's largest buffer/,
    );
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

describe.skipIf(!rt?.engine.caps.shaderF16)('mixed precision (f16 matmul operands) with dynamic loss scaling', () => {
  it('an overflowing loss scale skips the step, changes nothing and halves; a later step applies', async () => {
    const model = await EngineModel.create(rt!, small, 6, {
      precision: 'f16',
      lossScale: { initial: 2 ** 24, growthInterval: 1000, dynamic: true },
    });
    try {
      model.setOptimizer({ lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, gradClip: 1 });
      const { tokens } = batch(2, 12, 7);
      const mask = Float32Array.from({ length: 24 }, (_, k) => (k % 12 > 5 ? 1 : 0));
      const input = {
        batch: { tokens, batchSize: 2, seqLen: 12 },
        temperature: 1,
        oldLogProbs: new Float32Array(24),
        mask,
        tokenWeights: Float32Array.from(mask, (m) => m / 12),
        advantages: Float32Array.from([1, -1]),
        ratio: 'token' as const,
        clipLow: 0.8,
        clipHigh: 1.2,
        outputTokenCount: 12,
        activeRowCount: 2,
      };
      const before = await model.getWeights();
      // 2²⁴ × the gradient of the log-probs overflows f16 (max 65504) in the first backward matmul.
      const first = await model.trainSurrogate(input);
      expect(first.applied).toBe(false);
      expect(first.skippedSteps).toBe(1);
      expect(first.lossScale).toBe(2 ** 24);
      const after = await model.getWeights();
      for (const name of model.parameterNames) expect(Array.from(after[name].data)).toEqual(Array.from(before[name].data));
      // Halving until the scaled gradients fit f16: then the update happens, with a finite norm.
      let report = first;
      for (let k = 0; k < 24 && !report.applied; k++) report = await model.trainSurrogate(input);
      expect(report.applied).toBe(true);
      expect(report.lossScale).toBeLessThan(2 ** 24);
      expect(Number.isFinite(report.gradNorm) && report.gradNorm > 0).toBe(true);
      expect((await model.getOptimizerState()).step).toBe(1);
    } finally {
      model.dispose();
    }
  });
});
