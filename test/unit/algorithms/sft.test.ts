/** The supervised warm-start loss against hand-computed values. */
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { TrainingError } from '../../../core/errors.js';
import '../../../models/gradients.js';
import { sftLoss } from '../../../trainer/algorithms/sft.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('sftLoss', () => {
  it('is the token-level mean NLL over output tokens, pooled across rows', () => {
    // Rows [ln ½, ln ¼, −∞] and [ln 1, ln ⅛, 9] with mask [1, 1, 0, 0, 1, 0]: three output tokens.
    // L = −(ln ½ + ln ¼ + ln ⅛)/3 = (1 + 2 + 3)·ln 2 / 3 = 2·ln 2 = 1.3862944.
    // (A per-row mean first would give ((ln 2 + ln 4)/2 + ln 8)/2 = 2.25·ln 2 instead.)
    // dL/dlogp = −1/3 on each output token, 0 elsewhere (also at −∞).
    const logProbs = tf.variable(
      tf.tensor2d([
        [Math.log(0.5), Math.log(0.25), Number.NEGATIVE_INFINITY],
        [0, Math.log(0.125), 9],
      ]),
    );
    const mask = Float32Array.from([1, 1, 0, 0, 1, 0]);
    const { value, grads } = tf.variableGrads(() => sftLoss(logProbs as tf.Tensor2D, mask), [logProbs]);
    expect(value.dataSync()[0]).toBeCloseTo(2 * Math.LN2, 6);
    const g = Array.from(grads[logProbs.name].dataSync());
    g.forEach((x, i) => (mask[i] ? expect(x).toBeCloseTo(-1 / 3, 6) : expect(x).toBe(0)));
    tf.dispose([value, ...Object.values(grads), logProbs]);
  });

  it('rejects a mask of the wrong length or without output tokens', () => {
    const logProbs = tf.tensor2d([[-1, -2]]);
    expect(() => sftLoss(logProbs, new Float32Array(3))).toThrow(/expected 2/);
    expect(() => sftLoss(logProbs, new Float32Array(2))).toThrow(TrainingError);
    logProbs.dispose();
  });
});
