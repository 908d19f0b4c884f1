/**
 * The engine's whole training step against the tfjs reference (TransformerPolicy + loopLoss + AdamW on
 * wasm): same initial weights, log-probs, loss and statistics, every gradient, and the weights and AdamW
 * moments after three steps. f32 path: ≤ 1e-4 relative (scaled by each tensor's magnitude).
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../../core/rng.js';
import { selectBackend } from '../../../models/backend.js';
import { EngineModel, type SurrogateBatch } from '../../../models/engine/model.js';
import { TransformerPolicy, resolvePolicyConfig, type ResolvedPolicyConfig } from '../../../models/transformer.js';
import { loopLoss, type LoopLossInputs } from '../../../trainer/algorithms/loop.js';
import { sftLoss } from '../../../trainer/algorithms/sft.js';
import { AdamW, clipGlobalNorm } from '../../../trainer/optim/adamw.js';
import { engineBatch } from '../../../trainer/policy-trainer.js';
import { requireRuntime } from './helpers.js';

const rt = await requireRuntime();

/** Largest |a − b| relative to the reference tensor's largest magnitude. */
function scaledError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let worst = 0;
  let scale = 1e-6;
  for (let k = 0; k < expected.length; k++) scale = Math.max(scale, Math.abs(expected[k]));
  for (let k = 0; k < expected.length; k++) worst = Math.max(worst, Math.abs(actual[k] - expected[k]) / scale);
  return Number.isNaN(worst) ? Number.POSITIVE_INFINITY : worst;
}

/** tfjs stores linear weights [in, out]; Hugging Face layout is [out, in]. */
async function referenceGradients(policy: TransformerPolicy, grads: Record<string, tf.Tensor>): Promise<Record<string, Float32Array>> {
  const out: Record<string, Float32Array> = {};
  for (let k = 0; k < policy.variables.length; k++) {
    const g = grads[policy.variables[k].name];
    const exported =
      g.shape.length === 2 && !['model.embed_tokens.weight', 'lm_head.weight'].includes(policy.parameterNames[k]) ? tf.transpose(g) : g;
    out[policy.parameterNames[k]] = (await exported.data()) as Float32Array;
    if (exported !== g) exported.dispose();
  }
  return out;
}

interface Case {
  readonly name: string;
  readonly config: ResolvedPolicyConfig;
  readonly B: number;
  readonly T: number;
  readonly ratio: 'token' | 'turn' | 'trajectory';
  readonly dualClip?: number;
  readonly importance?: boolean;
}

const base = { ropeTheta: 10000, normEps: 1e-5, initStd: 0.05, vocabSize: 37 };
const CASES: Case[] = [
  {
    name: 'tiny MHA, token ratio',
    config: resolvePolicyConfig({ ...base, dModel: 32, nLayers: 2, nHeads: 4, maxSeqLen: 32, qkvBias: false }),
    B: 3,
    T: 11,
    ratio: 'token',
  },
  {
    name: 'GQA with q/k/v bias, dual clip, importance weights, turn ratio',
    config: resolvePolicyConfig({ ...base, dModel: 48, nLayers: 2, nHeads: 6, nKvHeads: 2, maxSeqLen: 40, qkvBias: true, ffnHidden: 40 }),
    B: 2,
    T: 19,
    ratio: 'turn',
    dualClip: 3,
    importance: true,
  },
  {
    name: 'one layer, trajectory ratio, odd sizes',
    config: resolvePolicyConfig({ ...base, dModel: 20, nLayers: 1, nHeads: 2, maxSeqLen: 16, qkvBias: false, ffnHidden: 27 }),
    B: 5,
    T: 7,
    ratio: 'trajectory',
  },
  {
    name: 'untied output layer (lm_head.weight), token ratio',
    config: resolvePolicyConfig({
      ...base,
      dModel: 24,
      nLayers: 2,
      nHeads: 3,
      nKvHeads: 1,
      maxSeqLen: 24,
      qkvBias: false,
      tieEmbeddings: false,
    }),
    B: 3,
    T: 9,
    ratio: 'token',
  },
];

function makeBatch(c: Case, seed: number) {
  const rng = new Rng(seed);
  const { B, T } = c;
  const tokens = Int32Array.from({ length: B * T }, () => rng.int(c.config.vocabSize));
  const mask = new Float32Array(B * T);
  const turnIds = new Int32Array(B * T).fill(-1);
  for (let b = 0; b < B; b++) {
    for (let t = 2; t < T; t++) {
      if (b === B - 1 && B > 2) continue; // a row without output tokens
      if ((t + b) % 5 !== 0) {
        mask[b * T + t] = 1;
        turnIds[b * T + t] = t < T / 2 ? 0 : 1;
      }
    }
  }
  const advantages = Float32Array.from({ length: B }, (_, b) => (b % 2 === 0 ? 0.8 : -0.6) * (1 + b / 10));
  const importance = c.importance ? Float32Array.from({ length: B * T }, (_, k) => (mask[k] ? 0.5 + rng.next() : 1)) : undefined;
  return { tokens, mask, turnIds, advantages, importance };
}

/** The engine's form of a minibatch, as the learner builds it (trainer/policy-trainer.ts). */
function engineInputs(
  inputs: Omit<LoopLossInputs, 'newLogProbs'>,
  B: number,
  T: number,
  tokens: Int32Array,
  temperature: number,
): SurrogateBatch {
  const batch = { tokens, batchSize: B, seqLen: T };
  return engineBatch({
    packed: { batch, mask: inputs.mask, turnIds: inputs.turnIds, samplerLogProbs: inputs.oldLogProbs, advantages: inputs.advantages },
    temperature,
    loss: inputs,
  });
}

describe.skipIf(!rt)('engine model vs the tfjs reference (f32)', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  for (const c of CASES) {
    it(`${c.name}: initial weights, log-probs, loss, stats and every gradient`, async () => {
      const policy = new TransformerPolicy(c.config, 11);
      const engine = await EngineModel.create(rt!, c.config, 11, { precision: 'f32' });
      try {
        const weights = await engine.getWeights();
        const reference = await policy.getWeightsAsync();
        for (const name of policy.parameterNames) expect(Array.from(weights[name].data)).toEqual(Array.from(reference[name].data));

        const { tokens, mask, turnIds, advantages, importance } = makeBatch(c, 5);
        const batch = { tokens, batchSize: c.B, seqLen: c.T };
        const temperature = 0.9;
        const refLp = policy.logProbs(batch, temperature);
        const refLpData = (await refLp.data()) as Float32Array;
        refLp.dispose();
        const lp = await engine.logProbs(batch, temperature);
        expect(scaledError(lp, refLpData)).toBeLessThan(1e-5);

        // Old log-probs a little off the current ones, so ratios ≠ 1 and some tokens clip.
        const rng = new Rng(9);
        const oldLogProbs = Float32Array.from(refLpData, (x, k) => (mask[k] ? x + 0.3 * (rng.next() - 0.5) : 0));
        const common: Omit<LoopLossInputs, 'newLogProbs'> = {
          oldLogProbs,
          mask,
          turnIds,
          advantages,
          divisor: c.B + 1,
          clipLow: 0.9,
          clipHigh: 1.1,
          ratio: c.ratio,
          dualClip: c.dualClip,
          importanceWeights: importance,
        };
        let refStats: Record<string, number> = {};
        const { value, grads } = tf.variableGrads(() => {
          const out = loopLoss({ ...common, newLogProbs: policy.logProbs(batch, temperature) });
          refStats = Object.fromEntries(Object.entries(out.stats).map(([k, v]) => [k, (v as tf.Scalar).dataSync()[0]]));
          tf.dispose(Object.values(out.stats));
          return out.loss;
        }, policy.variables);
        const refLoss = (await value.data())[0];
        const refGrads = await referenceGradients(policy, grads);
        tf.dispose([value, ...Object.values(grads)]);

        const { stats, grads: engineGrads } = await engine.gradientsOnly(engineInputs(common, c.B, c.T, tokens, temperature));
        expect(stats.loss).toBeCloseTo(refLoss, 6);
        for (const [name, v] of Object.entries(refStats)) expect(Math.abs(stats[name] - v), name).toBeLessThan(1e-5 * (1 + Math.abs(v)));
        for (const name of policy.parameterNames) {
          const err = scaledError(engineGrads[name].data, refGrads[name]);
          expect(err, `gradient of ${name}`).toBeLessThan(1e-4);
        }
      } finally {
        engine.dispose();
        policy.dispose();
      }
    });
  }

  it('logits in row chunks (a large vocabulary) give the same log-probs, loss and gradients', async () => {
    const c = { ...CASES[0], B: 5, T: 30 };
    const whole = await EngineModel.create(rt!, c.config, 12, { precision: 'f32' });
    // 64 rows of logits at a time: 150 positions go in three chunks, forward and backward.
    const chunked = await EngineModel.create(rt!, c.config, 12, { precision: 'f32', logitBudget: 64 * c.config.vocabSize });
    try {
      const { tokens, mask, turnIds, advantages } = makeBatch(c, 13);
      const batch = { tokens, batchSize: c.B, seqLen: c.T };
      const lp = await whole.logProbs(batch);
      expect(Array.from(await chunked.logProbs(batch))).toEqual(Array.from(lp));
      const old = Float32Array.from(lp, (x, k) => (mask[k] ? x + 0.1 : 0));
      const inputs = engineInputs(
        { oldLogProbs: old, mask, turnIds, advantages, divisor: c.B, clipLow: 0.9, clipHigh: 1.1, ratio: 'token' },
        c.B,
        c.T,
        tokens,
        1,
      );
      const a = await whole.gradientsOnly(inputs);
      const b = await chunked.gradientsOnly(inputs);
      expect(b.stats.loss).toBeCloseTo(a.stats.loss, 7);
      for (const name of whole.parameterNames) expect(scaledError(b.grads[name].data, a.grads[name].data), name).toBeLessThan(1e-5);
    } finally {
      whole.dispose();
      chunked.dispose();
    }
  });

  it('three AdamW steps with clipping: weights and moments match the reference optimizer', async () => {
    const c = CASES[0];
    const policy = new TransformerPolicy(c.config, 3);
    const engine = await EngineModel.create(rt!, c.config, 3, { precision: 'f32' });
    const opts = { lr: 3e-3, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.05 };
    const optimizer = new AdamW(policy.variables, opts);
    engine.setOptimizer({ ...opts, gradClip: 0.05 });
    try {
      const { tokens, mask, turnIds, advantages } = makeBatch(c, 21);
      const batch = { tokens, batchSize: c.B, seqLen: c.T };
      const lp0 = policy.logProbs(batch);
      const old = Float32Array.from((await lp0.data()) as Float32Array, (x, k) => (mask[k] ? x : 0));
      lp0.dispose();
      const common: Omit<LoopLossInputs, 'newLogProbs'> = {
        oldLogProbs: old,
        mask,
        turnIds,
        advantages,
        divisor: c.B,
        clipLow: 0.8,
        clipHigh: 1.2,
        ratio: 'token',
      };
      const norms: number[] = [];
      for (let step = 0; step < 3; step++) {
        const { value, grads } = tf.variableGrads(() => {
          const out = loopLoss({ ...common, newLogProbs: policy.logProbs(batch) });
          tf.dispose(Object.values(out.stats));
          return out.loss;
        }, policy.variables);
        const { grads: clipped, norm } = await clipGlobalNorm(grads, 0.05);
        optimizer.step(clipped);
        tf.dispose([value, ...Object.values(grads), ...Object.values(clipped)]);
        const report = await engine.trainSurrogate(engineInputs(common, c.B, c.T, tokens, 1));
        expect(report.applied).toBe(true);
        expect(report.gradNorm).toBeCloseTo(norm, 5);
        norms.push(norm);
      }
      expect(norms[0]).toBeGreaterThan(0.05); // clipping was active
      const weights = await engine.getWeights();
      const reference = await policy.getWeightsAsync();
      for (const name of policy.parameterNames) {
        if (name === 'model.embed_tokens.weight') {
          // Adam divides each gradient by its own running magnitude, so embedding entries whose gradient is
          // near zero (rows of tokens seen only through the tied output layer) amplify rounding: bound the
          // drift by a tenth of one step's size per step instead.
          const worst = Math.max(...Array.from(weights[name].data, (w, k) => Math.abs(w - (reference[name].data as Float32Array)[k])));
          expect(worst, name).toBeLessThan(0.1 * opts.lr * 3);
        } else {
          expect(scaledError(weights[name].data, reference[name].data), name).toBeLessThan(1e-4);
        }
      }
      const state = await engine.getOptimizerState();
      const refState = await optimizer.getState();
      expect(state.step).toBe(3);
      policy.variables.forEach((variable, k) => {
        const name = policy.parameterNames[k];
        const refM = refState.tensors[`m:${variable.name}`].data as Float32Array;
        const m = state.tensors[`m:${name}`].data as Float32Array;
        const [rows, cols] = reference[name].shape.length === 2 && name !== 'model.embed_tokens.weight' ? reference[name].shape : [0, 0];
        const refMHf = rows ? transpose(refM, cols, rows) : refM;
        expect(scaledError(m, refMHf), `m of ${name}`).toBeLessThan(1e-4);
      });
    } finally {
      optimizer.dispose();
      engine.dispose();
      policy.dispose();
    }
  });

  it('the supervised step minimises the same masked NLL as sftLoss', async () => {
    const c = CASES[2];
    const policy = new TransformerPolicy(c.config, 4);
    const engine = await EngineModel.create(rt!, c.config, 4, { precision: 'f32' });
    try {
      const { tokens, mask } = makeBatch(c, 8);
      const batch = { tokens, batchSize: c.B, seqLen: c.T };
      const { value, grads } = tf.variableGrads(() => sftLoss(policy.logProbs(batch), mask), policy.variables);
      const refLoss = (await value.data())[0];
      const refGrads = await referenceGradients(policy, grads);
      tf.dispose([value, ...Object.values(grads)]);
      engine.setOptimizer({ lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, gradClip: 1e9 });
      const report = await engine.trainNll(batch, mask);
      expect(report.stats.nll).toBeCloseTo(refLoss, 5);
      const engineGrads = await engine.lastGradients();
      for (const name of policy.parameterNames) expect(scaledError(engineGrads[name].data, refGrads[name]), name).toBeLessThan(1e-4);
    } finally {
      engine.dispose();
      policy.dispose();
    }
  });
});

/** [rows, cols] row-major → [cols, rows]. */
function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}
