import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { Rng } from '../../../core/rng.js';
import { selectBackend } from '../../../models/backend.js';
import { matMul2d } from '../../../models/matmul.js';

function randomMatrix(rng: Rng, rows: number, cols: number): tf.Tensor2D {
  return tf.tensor2d(
    Float32Array.from({ length: rows * cols }, () => rng.normal()),
    [rows, cols],
  );
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

afterAll(async () => {
  await selectBackend('wasm');
});

describe.each(['wasm', 'cpu'] as const)('matMul2d on %s', (backend) => {
  it('computes the same product and gradients as tf.matMul', async () => {
    await selectBackend(backend);
    const rng = new Rng(7);
    const a = randomMatrix(rng, 5, 3);
    const b = randomMatrix(rng, 3, 4);
    const upstream = randomMatrix(rng, 5, 4);
    const before = tf.memory().numTensors;

    const ours = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(matMul2d(x as tf.Tensor2D, y as tf.Tensor2D), upstream)));
    const reference = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x as tf.Tensor2D, y as tf.Tensor2D), upstream)));
    const [oursA, oursB] = ours([a, b]);
    const [refA, refB] = reference([a, b]);
    const product = matMul2d(a, b);
    const refProduct = tf.matMul(a, b);

    expect(product.shape).toEqual([5, 4]);
    expect(maxAbsDiff(product, refProduct)).toBeLessThan(1e-5);
    expect(oursA.shape).toEqual([5, 3]);
    expect(oursB.shape).toEqual([3, 4]);
    expect(maxAbsDiff(oursA, refA)).toBeLessThan(1e-5);
    expect(maxAbsDiff(oursB, refB)).toBeLessThan(1e-5);
    // dA = dY·Bᵀ by hand for one entry: Σ_j upstream[0, j]·b[1, j].
    const up = upstream.arraySync();
    const bValues = b.arraySync();
    const expected = up[0].reduce((sum, u, j) => sum + u * bValues[1][j], 0);
    expect((oursA as tf.Tensor2D).arraySync()[0][1]).toBeCloseTo(expected, 5);

    tf.dispose([oursA, oursB, refA, refB, product, refProduct]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([a, b, upstream]);
  });

  it('rejects mismatched inner dimensions', async () => {
    await selectBackend(backend);
    const a = tf.zeros([2, 3]) as tf.Tensor2D;
    const b = tf.zeros([4, 2]) as tf.Tensor2D;
    expect(() => matMul2d(a, b)).toThrow(/\[m, k\] · \[k, n\]/);
    tf.dispose([a, b]);
  });
});
