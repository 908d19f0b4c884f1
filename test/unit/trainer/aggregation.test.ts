/**
 * Row weights of the aggregations (config `loop.aggregation`), by hand: Delethink's 1/(ℓ(τ)·N) and the
 * token mean; and the units minibatches are planned over (a trace's chunks stay together).
 */
import { describe, expect, it } from 'vitest';
import { aggregationWeights, unitsOf, type TrainingRow } from '../../../trainer/batch.js';

function row(rolloutId: string, outputs: number, prompt = 2): TrainingRow {
  const n = prompt + outputs;
  return {
    rolloutId,
    advantage: 1,
    policyVersion: 0,
    segment: {
      tokens: Array(n).fill(65),
      isOutput: [...Array(prompt).fill(0), ...Array(outputs).fill(1)],
      logProbs: Array(n).fill(0),
      turn: Array(n).fill(0),
    },
  };
}

describe('aggregationWeights', () => {
  // Trace a = chunks of 3 and 1 output tokens (ℓ = 4); trace b = one chunk of 2 (ℓ = 2); N = 2.
  const rows = [row('a', 3), row('b', 2), row('a', 1)];

  it('trace-length: 1/(ℓ(τ)·N) per row of trace τ', () => {
    expect(Array.from(aggregationWeights(rows, [0, 1, 2], 'trace-length')!)).toEqual([0.125, 0.25, 0.125]);
  });

  it('trace-length: a trace weighs the same however it is chunked (Σ_tokens w = 1/N)', () => {
    const whole = [row('a', 4), row('b', 2)];
    const w1 = aggregationWeights(rows, [0, 1, 2], 'trace-length')!;
    const w2 = aggregationWeights(whole, [0, 1], 'trace-length')!;
    expect(w1[0] * 3 + w1[2] * 1).toBeCloseTo(w2[0] * 4, 12);
    expect(w2[0] * 4).toBeCloseTo(0.5, 12);
  });

  it("trace-length counts only the minibatch's rows, in the order of indices; an empty minibatch gives []", () => {
    // Rows 2 (trace a, 1 output token: ℓ = 1 here) and 1 (trace b, 2 tokens); N = 2.
    expect(Array.from(aggregationWeights(rows, [2, 1], 'trace-length')!)).toEqual([0.5, 0.25]);
    expect(aggregationWeights(rows, [], 'trace-length')).toEqual(new Float32Array(0));
  });

  it('token-mean: 1/Σ output tokens of the minibatch', () => {
    expect(Array.from(aggregationWeights(rows, [0, 1, 2], 'token-mean')!)).toEqual([1 / 6, 1 / 6, 1 / 6].map((x) => Math.fround(x)));
  });

  it('fixed-divisor leaves the weights to loopLoss; rows without output weigh 0', () => {
    expect(aggregationWeights(rows, [0], 'fixed-divisor')).toBeUndefined();
    expect(Array.from(aggregationWeights([row('a', 0), row('a', 2)], [0, 1], 'trace-length')!)).toEqual([0, 0.5]);
  });
});

describe('unitsOf', () => {
  it('groups row indices by rollout in first-seen order', () => {
    expect(unitsOf([row('a', 1), row('b', 1), row('a', 1), row('c', 1)])).toEqual([[0, 2], [1], [3]]);
  });
});
