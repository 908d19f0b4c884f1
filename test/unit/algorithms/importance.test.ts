/**
 * Truncated importance weighting for stale samples (rollout.maxStaleness > 0): the weights, and their
 * effect on the LOOP objective's gradient, with hand-computed values.
 */
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import '../../../models/gradients.js';
import { loopLoss, truncatedImportanceWeights, type LoopLossInputs } from '../../../trainer/algorithms/loop.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('truncatedImportanceWeights', () => {
  it('is min(exp(old − sampler), cap) on output tokens and 1 elsewhere', () => {
    const w = truncatedImportanceWeights(
      Float32Array.from([-1, -1, -1, -2]),
      Float32Array.from([-1.5, -3, -1, -9]),
      Float32Array.from([1, 1, 1, 0]),
      2,
    );
    expect(w[0]).toBeCloseTo(Math.exp(0.5), 6); // 1.6487
    expect(w[1]).toBe(2); // e² = 7.39 truncated to the cap
    expect(w[2]).toBe(1); // same policy
    expect(w[3]).toBe(1); // not an output token
  });

  it('refuses a cap below 1', () => {
    expect(() => truncatedImportanceWeights(new Float32Array(1), new Float32Array(1), new Float32Array(1), 0.5)).toThrow(/cap/);
  });
});

describe('loopLoss with importance weights', () => {
  /** Gradient of the loss w.r.t. the [1, 2] row of new log-probs (the variable), at ratio 1. */
  function gradient(weights?: Float32Array): Float32Array {
    const v = tf.variable(tf.tensor2d([[-1, -2]]));
    const inputs: LoopLossInputs = {
      newLogProbs: v as unknown as tf.Tensor2D,
      oldLogProbs: Float32Array.from([-1, -2]),
      mask: Float32Array.from([1, 1]),
      turnIds: Int32Array.from([0, 0]),
      advantages: Float32Array.from([0.5]),
      divisor: 1,
      clipLow: 0.9,
      clipHigh: 1.1,
      ratio: 'token',
      importanceWeights: weights,
    };
    const { value, grads } = tf.variableGrads(() => {
      const out = loopLoss(inputs);
      tf.dispose(Object.values(out.stats));
      return out.loss;
    }, [v]);
    const g = new Float32Array(grads[v.name].dataSync());
    tf.dispose([value, v, ...Object.values(grads)]);
    return g;
  }

  it('leaves the objective unchanged with all-one weights and scales each token’s gradient by its weight', () => {
    // At r = 1: dL/dlogp_t = −A · w_t / (M·|a|) = −0.5 · w_t / 2.
    const plain = gradient();
    expect(Array.from(plain)).toEqual([-0.25, -0.25]);
    expect(Array.from(gradient(Float32Array.from([1, 1])))).toEqual([-0.25, -0.25]);
    const weighted = gradient(Float32Array.from([2, 0.5]));
    expect(weighted[0]).toBeCloseTo(-0.5, 7);
    expect(weighted[1]).toBeCloseTo(-0.125, 7);
  });

  it('checks the weights’ length', () => {
    expect(() => gradient(Float32Array.from([1]))).toThrow(/importanceWeights has 1 entries, expected 2/);
  });
});
