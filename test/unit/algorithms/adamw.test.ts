/** AdamW and global-norm clipping against hand-computed updates. */
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { CheckpointError, ConfigError, TrainingError } from '../../../core/errors.js';
import { AdamW, clipGlobalNorm, type AdamWOptions } from '../../../trainer/optim/adamw.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const OPTIONS: AdamWOptions = { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };

function values(t: tf.Tensor): number[] {
  return Array.from(t.dataSync());
}

/** Applies one step with `grad` (a plain array) and frees the gradient tensor. */
function stepWith(opt: AdamW, variable: tf.Variable, grad: number[]): void {
  const g = tf.tensor(grad, variable.shape);
  opt.step({ [variable.name]: g });
  g.dispose();
}

describe('AdamW.step', () => {
  it('matches two hand-computed steps', async () => {
    // θ = [1, −2], η = 0.1, λ = 0.01, β = (0.9, 0.999).
    // Step 1, g = [0.5, −0.1]:
    //   decay: θ·(1 − 0.1·0.01) = θ·0.999 = [0.999, −1.998]
    //   m = 0.1·g = [0.05, −0.01];  v = 0.001·g² = [0.00025, 0.00001]
    //   m̂ = m/0.1 = g;  v̂ = v/0.001 = g²  → update η·g/|g| = [0.1, −0.1] (ε negligible)
    //   θ = [0.899, −1.898]
    // Step 2, g = [−0.5, 0.3]:
    //   decay: θ·0.999 = [0.898101, −1.896102]
    //   m = 0.9·[0.05, −0.01] + 0.1·[−0.5, 0.3] = [−0.005, 0.021]
    //   v = 0.999·[0.00025, 0.00001] + 0.001·[0.25, 0.09] = [0.00049975, 0.00009999]
    //   m̂ = m/(1 − 0.9²) = m/0.19 = [−0.0263158, 0.1105263]
    //   v̂ = v/(1 − 0.999²) = v/0.001999 = [0.25, 0.0500200];  √v̂ = [0.5, 0.2236515]
    //   update = 0.1·m̂/√v̂ = [−0.0052632, 0.0494187]
    //   θ = [0.898101 + 0.0052632, −1.896102 − 0.0494187] = [0.9033642, −1.9455207]
    const theta = tf.variable(tf.tensor1d([1, -2]));
    const opt = new AdamW([theta], OPTIONS);
    stepWith(opt, theta, [0.5, -0.1]);
    expect(values(theta)[0]).toBeCloseTo(0.899, 6);
    expect(values(theta)[1]).toBeCloseTo(-1.898, 6);
    stepWith(opt, theta, [-0.5, 0.3]);
    expect(values(theta)[0]).toBeCloseTo(0.9033642, 5);
    expect(values(theta)[1]).toBeCloseTo(-1.9455207, 5);
    expect(opt.steps).toBe(2);
    const state = await opt.getState();
    expect(Array.from(state.tensors[`m:${theta.name}`].data)[0]).toBeCloseTo(-0.005, 7);
    expect(Array.from(state.tensors[`v:${theta.name}`].data)[1]).toBeCloseTo(0.00009999, 9);
    opt.dispose();
    theta.dispose();
  });

  it('weight decay is decoupled: a zero gradient shrinks θ by exactly (1 − η·λ)', async () => {
    // g = 0 → m = v = 0 → Adam term 0/(0 + ε) = 0; θ = 2·(1 − 0.1·0.1) = 1.98.
    // L2-in-the-gradient Adam would see g = λθ = 0.2 and step by ≈ η: θ ≈ 1.9.
    const theta = tf.variable(tf.tensor1d([2]));
    const opt = new AdamW([theta], { ...OPTIONS, weightDecay: 0.1 });
    stepWith(opt, theta, [0]);
    expect(values(theta)[0]).toBeCloseTo(1.98, 6);
    opt.dispose();
    theta.dispose();
  });

  it('the decay does not depend on the gradient scale (Adam is scale-invariant, decay is not in it)', async () => {
    const run = (scale: number): number[] => {
      const theta = tf.variable(tf.tensor1d([1, -1, 3]));
      const opt = new AdamW([theta], { ...OPTIONS, weightDecay: 0.2 });
      stepWith(opt, theta, [0.1 * scale, -0.3 * scale, 0.05 * scale]);
      const out = values(theta);
      opt.dispose();
      theta.dispose();
      return out;
    };
    // θ·(1 − 0.02) − 0.1·sign(g): [0.98 − 0.1, −0.98 + 0.1, 2.94 − 0.1]
    const small = run(1);
    const large = run(1000);
    expect(small.map((x) => +x.toFixed(5))).toEqual([0.88, -0.88, 2.84]);
    large.forEach((x, i) => expect(x).toBeCloseTo(small[i], 5));
  });

  it('leaves variables without a gradient untouched and rejects unknown names and wrong shapes', async () => {
    const a = tf.variable(tf.tensor1d([1, 1]));
    const b = tf.variable(tf.tensor1d([5]));
    const opt = new AdamW([a, b], OPTIONS);
    stepWith(opt, a, [1, 1]);
    expect(values(b)).toEqual([5]);
    const g = tf.tensor1d([1, 2, 3]);
    expect(() => opt.step({ [a.name]: g })).toThrow(TrainingError);
    expect(() => opt.step({ 'no-such-variable': g })).toThrow(/no-such-variable/);
    g.dispose();
    opt.dispose();
    a.dispose();
    b.dispose();
  });

  it('setLearningRate changes η for later steps', async () => {
    // θ = 1, g = 1, λ = 0: first step moves by η = 0.5 → 0.5.
    const theta = tf.variable(tf.tensor1d([1]));
    const opt = new AdamW([theta], { ...OPTIONS, weightDecay: 0 });
    opt.setLearningRate(0.5);
    expect(opt.learningRate).toBe(0.5);
    stepWith(opt, theta, [1]);
    expect(values(theta)[0]).toBeCloseTo(0.5, 6);
    expect(() => opt.setLearningRate(0)).toThrow(ConfigError);
    opt.dispose();
    theta.dispose();
  });

  it('validates its options', async () => {
    const theta = tf.variable(tf.tensor1d([1]));
    expect(() => new AdamW([theta], { ...OPTIONS, lr: -1 })).toThrow(/lr/);
    expect(() => new AdamW([theta], { ...OPTIONS, beta1: 1 })).toThrow(/beta1/);
    expect(() => new AdamW([theta], { ...OPTIONS, beta2: -0.1 })).toThrow(ConfigError);
    expect(() => new AdamW([theta], { ...OPTIONS, eps: 0 })).toThrow(/eps/);
    expect(() => new AdamW([theta], { ...OPTIONS, weightDecay: Number.NaN })).toThrow(/weightDecay/);
    expect(() => new AdamW([theta, theta], OPTIONS)).toThrow(/two variables/);
    theta.dispose();
  });

  it('allocates nothing per step beyond its moments, and frees them on dispose', async () => {
    const theta = tf.variable(
      tf.tensor2d([
        [1, 2],
        [3, 4],
      ]),
    );
    const before = tf.memory().numTensors;
    const opt = new AdamW([theta], OPTIONS);
    expect(tf.memory().numTensors).toBe(before + 2);
    for (let i = 0; i < 3; i++) stepWith(opt, theta, [0.1, -0.2, 0.3, -0.4]);
    expect(tf.memory().numTensors).toBe(before + 2);
    opt.dispose();
    expect(tf.memory().numTensors).toBe(before);
    theta.dispose();
  });
});

describe('AdamW state', () => {
  it('round-trips: a restored optimizer continues exactly like the original', async () => {
    const original = tf.variable(
      tf.tensor2d([
        [0.5, -1],
        [2, 0],
      ]),
    );
    const opt = new AdamW([original], OPTIONS);
    stepWith(opt, original, [0.1, 0.2, -0.3, 0.4]);
    stepWith(opt, original, [-0.2, 0.1, 0.3, 0.05]);
    const state = await opt.getState();
    expect(state.step).toBe(2);
    expect(Object.keys(state.tensors).sort()).toEqual([`m:${original.name}`, `v:${original.name}`]);
    expect(state.tensors[`m:${original.name}`]).toMatchObject({ dtype: 'F32', shape: [2, 2] });

    // A fresh optimizer over a copy of the weights, keyed by the same name (as after loading a checkpoint).
    const weights = values(original);
    const name = original.name;
    opt.dispose();
    original.dispose();
    const restored = tf.variable(tf.tensor2d(weights, [2, 2]), true, name);
    const resumed = new AdamW([restored], OPTIONS);
    resumed.setState(state);
    expect(resumed.steps).toBe(2);
    stepWith(resumed, restored, [0.3, -0.1, 0.2, 0.2]);

    // Reference: the same three steps without interruption.
    const reference = tf.variable(
      tf.tensor2d([
        [0.5, -1],
        [2, 0],
      ]),
    );
    const refOpt = new AdamW([reference], OPTIONS);
    stepWith(refOpt, reference, [0.1, 0.2, -0.3, 0.4]);
    stepWith(refOpt, reference, [-0.2, 0.1, 0.3, 0.05]);
    stepWith(refOpt, reference, [0.3, -0.1, 0.2, 0.2]);
    expect(values(restored)).toEqual(values(reference));
    resumed.dispose();
    refOpt.dispose();
    restored.dispose();
    reference.dispose();
  });

  it('getState returns copies that later steps do not change', async () => {
    const theta = tf.variable(tf.tensor1d([1]));
    const opt = new AdamW([theta], OPTIONS);
    stepWith(opt, theta, [1]);
    const state = await opt.getState();
    const m = Array.from(state.tensors[`m:${theta.name}`].data);
    stepWith(opt, theta, [1]);
    expect(Array.from(state.tensors[`m:${theta.name}`].data)).toEqual(m);
    opt.dispose();
    theta.dispose();
  });

  it('rejects a state that does not match, naming the tensor, and changes nothing', async () => {
    const a = tf.variable(tf.tensor1d([1, 2]));
    const b = tf.variable(tf.tensor2d([[1]]));
    const opt = new AdamW([a, b], OPTIONS);
    stepWith(opt, a, [1, 1]);
    const good = await opt.getState();
    const expectCheckpointError = (state: typeof good, pattern: RegExp) => {
      let caught: unknown;
      try {
        opt.setState(state);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(CheckpointError);
      expect((caught as Error).message).toMatch(pattern);
    };
    const { [`v:${b.name}`]: _dropped, ...missing } = good.tensors;
    expectCheckpointError({ step: 1, tensors: missing }, new RegExp(`lacks "v:${b.name}"`));
    expectCheckpointError(
      { step: 1, tensors: { ...good.tensors, [`m:${a.name}`]: { dtype: 'F32', shape: [3], data: new Float32Array(3) } } },
      new RegExp(`"m:${a.name}" has shape \\[3\\]`),
    );
    expectCheckpointError(
      { step: 1, tensors: { ...good.tensors, 'm:stranger': { dtype: 'F32', shape: [1], data: new Float32Array(1) } } },
      /m:stranger/,
    );
    expectCheckpointError({ step: -1, tensors: good.tensors }, /step -1/);
    expect(opt.steps).toBe(1);
    expect(Array.from((await opt.getState()).tensors[`m:${a.name}`].data)).toEqual(Array.from(good.tensors[`m:${a.name}`].data));
    opt.dispose();
    a.dispose();
    b.dispose();
  });
});

describe('clipGlobalNorm', () => {
  it('scales by maxNorm/‖g‖ when the norm is larger and reports the pre-clip norm', async () => {
    // ‖g‖ = √(3² + 4²) = 5 over two tensors; maxNorm 1 → scale 0.2 → [0.6], [0.8].
    const grads = { a: tf.tensor1d([3]), b: tf.tensor1d([4]) };
    const { grads: clipped, norm } = await clipGlobalNorm(grads, 1);
    expect(norm).toBeCloseTo(5, 6);
    expect(values(clipped.a)[0]).toBeCloseTo(0.6, 6);
    expect(values(clipped.b)[0]).toBeCloseTo(0.8, 6);
    tf.dispose([...Object.values(grads), ...Object.values(clipped)]);
  });

  it('leaves gradients below the limit unchanged', async () => {
    // ‖g‖ = √(1 + 4 + 4) = 3 ≤ 10.
    const grads = {
      w: tf.tensor2d([
        [1, -2],
        [2, 0],
      ]),
    };
    const { grads: clipped, norm } = await clipGlobalNorm(grads, 10);
    expect(norm).toBeCloseTo(3, 6);
    expect(values(clipped.w)).toEqual([1, -2, 2, 0]);
    expect(clipped.w).not.toBe(grads.w);
    tf.dispose([...Object.values(grads), ...Object.values(clipped)]);
  });

  it('reports a non-finite norm without scaling; an empty set has norm 0', async () => {
    const grads = { w: tf.tensor1d([Number.NaN, 1]) };
    const { grads: clipped, norm } = await clipGlobalNorm(grads, 1);
    expect(Number.isNaN(norm)).toBe(true);
    expect(values(clipped.w)[1]).toBe(1);
    tf.dispose([...Object.values(grads), ...Object.values(clipped)]);
    expect(await clipGlobalNorm({}, 1)).toEqual({ grads: {}, norm: 0 });
    await expect(clipGlobalNorm({}, 0)).rejects.toThrow(ConfigError);
  });
});
