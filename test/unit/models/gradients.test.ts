/**
 * Every gradient registered by models/gradients.ts against central finite differences of the forward
 * kernel, on the cpu backend. Each case differentiates f(x) = Σ op(x) ⊙ w with fixed random w (so
 * every output element matters with a different weight).
 */
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../../core/rng.js';
import { kernelsWithGradients } from '../../../models/gradients.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Deterministic float64 values in [lo, hi). */
function uniform(rng: Rng, n: number, lo = -1, hi = 1): Float64Array {
  return Float64Array.from({ length: n }, () => lo + (hi - lo) * rng.next());
}

interface Case {
  name: string;
  /** Input shapes; each input gets deterministic values from `domain`. */
  shapes: number[][];
  op: (...xs: tf.Tensor[]) => tf.Tensor;
  domain?: [number, number];
}

const cases: Case[] = [
  {
    name: 'matMul',
    shapes: [
      [3, 4],
      [4, 2],
    ],
    op: (a, b) => tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D),
  },
  {
    name: 'matMul Bᵀ',
    shapes: [
      [2, 3, 4],
      [2, 5, 4],
    ],
    op: (a, b) => tf.matMul(a, b, false, true),
  },
  {
    name: 'matMul Aᵀ',
    shapes: [
      [2, 4, 3],
      [2, 4, 5],
    ],
    op: (a, b) => tf.matMul(a, b, true, false),
  },
  {
    name: 'matMul AᵀBᵀ',
    shapes: [
      [4, 3],
      [5, 4],
    ],
    op: (a, b) => tf.matMul(a, b, true, true),
  },
  {
    name: 'matMul broadcast batch',
    shapes: [
      [2, 3, 4],
      [1, 4, 2],
    ],
    op: (a, b) => tf.matMul(a, b),
  },
  { name: 'add broadcast', shapes: [[2, 3], [3]], op: (a, b) => tf.add(a, b) },
  {
    name: 'sub broadcast',
    shapes: [
      [2, 1],
      [2, 3],
    ],
    op: (a, b) => tf.sub(a, b),
  },
  {
    name: 'mul broadcast',
    shapes: [
      [2, 3],
      [1, 3],
    ],
    op: (a, b) => tf.mul(a, b),
  },
  {
    name: 'div',
    shapes: [
      [2, 3],
      [2, 3],
    ],
    op: (a, b) => tf.div(a, b),
    domain: [0.5, 2],
  },
  { name: 'maximum', shapes: [[5], [5]], op: (a, b) => tf.maximum(a, b) },
  { name: 'minimum', shapes: [[5], [5]], op: (a, b) => tf.minimum(a, b) },
  { name: 'squaredDifference', shapes: [[4], [4]], op: (a, b) => tf.squaredDifference(a, b) },
  { name: 'pow', shapes: [[4], [4]], op: (a, b) => tf.pow(a, b), domain: [0.5, 2] },
  { name: 'addN', shapes: [[3], [3], [3]], op: (a, b, c) => tf.addN([a, b, c]) },
  { name: 'neg', shapes: [[4]], op: (x) => tf.neg(x) },
  { name: 'exp', shapes: [[4]], op: (x) => tf.exp(x) },
  { name: 'log', shapes: [[4]], op: (x) => tf.log(x), domain: [0.5, 2] },
  { name: 'log1p', shapes: [[4]], op: (x) => tf.log1p(x), domain: [0, 2] },
  { name: 'square', shapes: [[4]], op: (x) => tf.square(x) },
  { name: 'sqrt', shapes: [[4]], op: (x) => tf.sqrt(x), domain: [0.5, 2] },
  { name: 'rsqrt', shapes: [[4]], op: (x) => tf.rsqrt(x), domain: [0.5, 2] },
  { name: 'reciprocal', shapes: [[4]], op: (x) => tf.reciprocal(x), domain: [0.5, 2] },
  { name: 'sigmoid', shapes: [[4]], op: (x) => tf.sigmoid(x) },
  { name: 'tanh', shapes: [[4]], op: (x) => tf.tanh(x) },
  { name: 'softplus', shapes: [[4]], op: (x) => tf.softplus(x) },
  { name: 'abs', shapes: [[4]], op: (x) => tf.abs(x), domain: [0.2, 1] },
  { name: 'relu', shapes: [[4]], op: (x) => tf.relu(x) },
  { name: 'softmax', shapes: [[2, 5]], op: (x) => tf.softmax(x) },
  { name: 'logSoftmax', shapes: [[2, 5]], op: (x) => tf.logSoftmax(x) },
  { name: 'sum axis', shapes: [[2, 3, 4]], op: (x) => tf.sum(x, 1) },
  { name: 'sum keepDims', shapes: [[2, 3]], op: (x) => tf.sum(x, -1, true) },
  { name: 'mean axes', shapes: [[2, 3, 4]], op: (x) => tf.mean(x, [0, 2]) },
  { name: 'max', shapes: [[3, 4]], op: (x) => tf.max(x, 1) },
  { name: 'min', shapes: [[3, 4]], op: (x) => tf.min(x, 0) },
  { name: 'reshape', shapes: [[2, 6]], op: (x) => tf.reshape(x, [3, 4]) },
  { name: 'transpose', shapes: [[2, 3, 4]], op: (x) => tf.transpose(x, [2, 0, 1]) },
  {
    name: 'concat',
    shapes: [
      [2, 3],
      [2, 1],
      [2, 2],
    ],
    op: (a, b, c) => tf.concat([a, b, c], 1),
  },
  {
    name: 'split',
    shapes: [[2, 6]],
    op: (x) => {
      const [p, q] = tf.split(x, [2, 4], 1);
      return tf.concat([tf.mul(q, 2), p], 1);
    },
  },
  { name: 'split (one piece used)', shapes: [[4, 2]], op: (x) => tf.split(x, 2, 0)[1] },
  { name: 'slice', shapes: [[3, 4]], op: (x) => tf.slice(x, [1, 1], [2, -1]) },
  {
    name: 'stack',
    shapes: [
      [2, 3],
      [2, 3],
    ],
    op: (a, b) => tf.stack([a, b], 1),
  },
  {
    name: 'unstack',
    shapes: [[3, 2]],
    op: (x) => {
      const [p, q, r] = tf.unstack(x);
      return tf.concat([p, tf.mul(q, 3), r]);
    },
  },
  { name: 'tile', shapes: [[2, 3]], op: (x) => tf.tile(x, [2, 3]) },
  { name: 'clipByValue', shapes: [[6]], op: (x) => tf.clipByValue(x, -0.5, 0.5) },
  {
    name: 'where',
    shapes: [
      [2, 3],
      [2, 3],
    ],
    op: (a, b) => tf.where(tf.greater(a, b), tf.exp(a), tf.square(b)),
  },
  { name: 'gather rows', shapes: [[4, 3]], op: (x) => tf.gather(x, tf.tensor1d([2, 0, 2, 3], 'int32')) },
  { name: 'cast + identity', shapes: [[3]], op: (x) => tf.clone(tf.cast(x, 'float32')) },
  { name: 'comparison in a mask', shapes: [[5]], op: (x) => tf.mul(x, tf.cast(tf.greater(x, 0), 'float32')) },
];

describe('registered gradients match finite differences', () => {
  for (const testCase of cases) {
    it(testCase.name, () => {
      const rng = new Rng(42);
      const [lo, hi] = testCase.domain ?? [-1, 1];
      // Values away from kinks (max/min/abs/relu/clip ties) by construction of the random draw.
      const inputs = testCase.shapes.map((shape) =>
        uniform(
          rng,
          shape.reduce((a, b) => a * b, 1),
          lo,
          hi,
        ),
      );
      const outShape = tf.tidy(() => testCase.op(...inputs.map((v, i) => tf.tensor(Float32Array.from(v), testCase.shapes[i]))).shape);
      const weights = tf.tensor(
        Float32Array.from(
          uniform(
            rng,
            outShape.reduce((a, b) => a * b, 1),
          ),
        ),
        outShape,
      );
      const objective = (...xs: tf.Tensor[]) => tf.sum(tf.mul(testCase.op(...xs), weights));

      const analytic = tf.tidy(() =>
        tf
          .grads(objective)(inputs.map((v, i) => tf.tensor(Float32Array.from(v), testCase.shapes[i])))
          .map((g) => Array.from(g.dataSync())),
      );
      const eps = 1e-2;
      const evaluate = (values: Float64Array[]): number =>
        tf.tidy(() => objective(...values.map((v, i) => tf.tensor(Float32Array.from(v), testCase.shapes[i]))).dataSync()[0]);
      inputs.forEach((values, inputIndex) => {
        const numeric = Array.from(values, (_, j) => {
          const plus = inputs.map((v) => Float64Array.from(v));
          const minus = inputs.map((v) => Float64Array.from(v));
          plus[inputIndex][j] += eps;
          minus[inputIndex][j] -= eps;
          return (evaluate(plus) - evaluate(minus)) / (2 * eps);
        });
        expect(analytic[inputIndex].length).toBe(numeric.length);
        analytic[inputIndex].forEach((g, j) => expect(g).toBeCloseTo(numeric[j], 2));
      });
      weights.dispose();
    });
  }

  it('registers the kernels the policy and losses differentiate through', () => {
    for (const kernel of [
      'BatchMatMul',
      'Softmax',
      'Rsqrt',
      'Sigmoid',
      'SplitV',
      'Concat',
      'GatherV2',
      'Select',
      'ClipByValue',
      'Minimum',
    ]) {
      expect(kernelsWithGradients).toContain(kernel);
      expect(tf.getGradient(kernel)).toBeDefined();
    }
  });

  it('leaves no tensors behind after a backward pass through split and stack', () => {
    const x = tf.tensor2d([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    const before = tf.memory().numTensors;
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.stack(tf.unstack(tf.concat(tf.split(t, 2, 1), 0)))))(x);
    expect(Array.from(g.dataSync())).toEqual([1, 1, 1, 1, 1, 1]);
    g.dispose();
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });
});
