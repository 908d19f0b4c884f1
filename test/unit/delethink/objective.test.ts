/**
 * The Delethink objective (trainer/algorithms/delethink.ts) with hand-computed numbers: GRPO advantages
 * (invariant 5), token weights 1/(ℓ(τ)·N) and the re-chunking invariance (invariant 6), golden values of
 * the clip-higher, dual-clip and truncated-importance terms with their gradients, the LongCoT reduction,
 * trace minibatches, and the budget trimming of the test-time-scaling evaluation.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { TrainingError } from '../../../core/errors.js';
import { Rng } from '../../../core/rng.js';
import { selectBackend } from '../../../models/backend.js';
import { ByteTokenizer, EOT_ID } from '../../../models/tokenizer.js';
import { verifyAnswer } from '../../../rewards/answer.js';
import {
  DELETHINK_OBJECTIVE_DEFAULTS,
  accuracyByBudget,
  delethinkLoss,
  groupTraceAdvantages,
  grpoAdvantages,
  segmentResponses,
  traceMinibatches,
  traceWeights,
  trimTraceToBudget,
  truncatedImportanceWeights,
  type DelethinkLossInputs,
} from '../../../trainer/algorithms/delethink.js';
import type { DelethinkTracing } from '../../../rollout/delethink.js';
import { groupAdvantages, truncatedImportanceWeights as loopTruncatedImportanceWeights } from '../../../trainer/algorithms/loop.js';

beforeAll(async () => {
  await selectBackend('cpu');
});

const PAPER = DELETHINK_OBJECTIVE_DEFAULTS;

/** Loss value and d loss / d newLogProbs of one call, tensors disposed. */
function lossAndGradient(inputs: Omit<DelethinkLossInputs, 'newLogProbs'>, newLogProbs: number[], shape: [number, number]) {
  const x = tf.tensor2d(newLogProbs, shape);
  let stats: Record<string, number> = {};
  const { value, grads } = tf.tidy(() =>
    tf.valueAndGrads((v: tf.Tensor) => {
      const out = delethinkLoss({ ...inputs, newLogProbs: v as tf.Tensor2D });
      stats = Object.fromEntries(Object.entries(out.stats).map(([k, t]) => [k, t.dataSync()[0]]));
      tf.dispose(Object.values(out.stats));
      return out.loss;
    })([x]),
  );
  const result = { loss: value.dataSync()[0], grad: Array.from(grads[0].dataSync(), (g) => g + 0), stats };
  tf.dispose([x, value, ...grads]);
  return result;
}

describe('GRPO advantages (invariant 5)', () => {
  it('normalises by the unbiased std + 1e-6 and sums to 0', () => {
    const a = grpoAdvantages([1, 0, 0, 0]);
    // mean 0.25, unbiased variance (0.5625 + 3·0.0625)/3 = 0.25 → std 0.5.
    const expected = [0.75, -0.25, -0.25, -0.25].map((d) => d / (0.5 + 1e-6));
    a.forEach((v, i) => expect(v).toBeCloseTo(expected[i], 12));
    expect(a.reduce((s, v) => s + v, 0)).toBeCloseTo(0, 12);
  });

  it('is exactly 0 for an all-equal group and for a group of one', () => {
    expect(grpoAdvantages([0.3, 0.3, 0.3])).toEqual([0, 0, 0]);
    expect(grpoAdvantages([1])).toEqual([0]);
    expect(() => grpoAdvantages([1, Number.NaN])).toThrow(TrainingError);
  });

  it('groups traces by query and gives each trace one advantage', () => {
    const a = groupTraceAdvantages([
      { groupId: 'q1', reward: 1 },
      { groupId: 'q2', reward: 0 },
      { groupId: 'q1', reward: 0 },
      { groupId: 'q2', reward: 0 },
    ]);
    const s = 1 / (Math.SQRT1_2 + 1e-6); // group q1: [1, 0] → ±0.5 / (std √½ + 1e-6)
    expect(a[0]).toBeCloseTo(0.5 * s, 10);
    expect(a[2]).toBeCloseTo(-0.5 * s, 10);
    expect([a[1], a[3]]).toEqual([0, 0]);
  });
});

describe('aggregation by trace length (invariant 6)', () => {
  it('weighs every token of a trace 1/(ℓ(τ)·N)', () => {
    const rows = [
      { trace: 'a', outputTokens: 3 },
      { trace: 'a', outputTokens: 1 },
      { trace: 'b', outputTokens: 2 },
      { trace: 'c', outputTokens: 0 },
    ];
    expect(Array.from(traceWeights(rows))).toEqual([1 / 12, 1 / 12, 1 / 6, 0].map(Math.fround));
    expect(Array.from(traceWeights(rows, 4))).toEqual([1 / 16, 1 / 16, 1 / 8, 0].map(Math.fround));
    expect(() => traceWeights([{ trace: 'a', outputTokens: -1 }])).toThrow(TrainingError);
  });

  it('gives the same loss and token gradients however a trace is cut into chunks', () => {
    // Trace a: 6 output tokens; trace b: 3. Per-token log-probs (new, old, sampler) follow the token.
    const aNew = [-1.0, -0.2, -2.5, -0.7, -1.1, -0.05];
    const aOld = [-1.2, -0.9, -1.0, -0.7, -0.3, -3.0];
    const aSam = [-1.1, -0.9, -2.0, -0.6, -0.3, -3.5];
    const bNew = [-0.4, -0.6, -2.0];
    const bOld = [-0.5, -0.1, -2.2];
    const bSam = [-0.5, -0.3, -2.2];
    const advantages = { a: 0.7, b: -1.3 };

    // Layout 1: one row per trace, 2 prompt tokens each, padded to T = 8.
    // Layout 2: trace a as chunks of 4 and 2 output tokens (prompts of 2 and 3), trace b one row; T = 6.
    type Row = { trace: 'a' | 'b'; prompt: number; from: number; to: number };
    const layouts: Array<{ T: number; rows: Row[] }> = [
      {
        T: 8,
        rows: [
          { trace: 'a', prompt: 2, from: 0, to: 6 },
          { trace: 'b', prompt: 2, from: 0, to: 3 },
        ],
      },
      {
        T: 6,
        rows: [
          { trace: 'b', prompt: 1, from: 0, to: 3 },
          { trace: 'a', prompt: 2, from: 0, to: 4 },
          { trace: 'a', prompt: 3, from: 4, to: 6 },
        ],
      },
    ];
    const results = layouts.map(({ T, rows }) => {
      const B = rows.length;
      const newLp = new Array<number>(B * T).fill(-9);
      const old = new Float32Array(B * T).fill(-9);
      const sampler = new Float32Array(B * T).fill(-9);
      const mask = new Float32Array(B * T);
      const where: Array<{ trace: string; token: number; index: number }> = [];
      rows.forEach((row, b) => {
        const src = row.trace === 'a' ? { n: aNew, o: aOld, s: aSam } : { n: bNew, o: bOld, s: bSam };
        for (let j = row.from; j < row.to; j++) {
          const index = b * T + row.prompt + (j - row.from);
          newLp[index] = src.n[j];
          old[index] = src.o[j];
          sampler[index] = src.s[j];
          mask[index] = 1;
          where.push({ trace: row.trace, token: j, index });
        }
      });
      const rowWeights = traceWeights(rows.map((r) => ({ trace: r.trace, outputTokens: r.to - r.from })));
      const adv = Float32Array.from(rows, (r) => advantages[r.trace]);
      const out = lossAndGradient({ oldLogProbs: old, samplerLogProbs: sampler, mask, advantages: adv, rowWeights, ...PAPER }, newLp, [
        B,
        T,
      ]);
      const gradOf = new Map(where.map((w) => [`${w.trace}${w.token}`, out.grad[w.index]]));
      const maskedGrad = out.grad.filter((_, i) => mask[i] === 0);
      return { loss: out.loss, gradOf, maskedGrad };
    });
    expect(results[1].loss).toBeCloseTo(results[0].loss, 6);
    for (const [token, g] of results[0].gradOf) expect(results[1].gradOf.get(token)).toBeCloseTo(g, 6);
    for (const r of results) expect(r.maskedGrad.every((g) => g === 0)).toBe(true);
    // Not a vacuous comparison: some tokens move, some are clipped.
    expect([...results[0].gradOf.values()].filter((g) => g !== 0).length).toBeGreaterThan(3);
    expect([...results[0].gradOf.values()].filter((g) => g === 0).length).toBeGreaterThan(0);
  });

  it('reduces to the LongCoT per-sequence token mean for one-chunk traces', () => {
    // Two traces of 2 and 4 output tokens at ratio 1 and w = 1: L = −(1/2)(A₁·2/2 + A₂·4/4).
    const T = 5;
    const mask = Float32Array.from([0, 1, 1, 0, 0, 0, 1, 1, 1, 1]);
    const zeros = new Float32Array(2 * T);
    const rowWeights = traceWeights([
      { trace: 'x', outputTokens: 2 },
      { trace: 'y', outputTokens: 4 },
    ]);
    const out = lossAndGradient(
      { oldLogProbs: zeros, samplerLogProbs: zeros, mask, advantages: Float32Array.from([1.5, -0.5]), rowWeights, ...PAPER },
      Array.from(zeros),
      [2, T],
    );
    expect(out.loss).toBeCloseTo(-(1.5 - 0.5) / 2, 6);
    // d/d log p = −w·A·r per output token: −1.5/(2·2) and +0.5/(4·2).
    expect(out.grad.map((g) => Number(g.toFixed(6)))).toEqual([0, -0.375, -0.375, 0, 0, 0, 0.0625, 0.0625, 0.0625, 0.0625]);
  });
});

describe('delethinkLoss golden values (one output token, row weight 1)', () => {
  // [A, log r, log p_old − log p_rollout, expected loss, expected d loss / d log p_θ]
  const cases: Array<[string, number, number, number, number, number]> = [
    ['A>0 inside the clip', 1, Math.log(1.1), 0, -1.1, -1.1],
    ['A>0 above 1 + ε_high (clip-higher: 1.26)', 1, Math.log(1.5), 0, -1.26, 0],
    ['A>0 below 1 − ε_low', 1, Math.log(0.5), 0, -0.5, -0.5],
    ['A<0 below 1 − ε_low', -1, Math.log(0.5), 0, 0.8, 0],
    ['A<0 between 1 + ε_high and c', -1, Math.log(2), 0, 2, 2],
    ['A<0 above c = 3 (dual clip)', -1, Math.log(4), 0, 3, 0],
    ['TIS weight e^{ln 1.5} = 1.5', 1, 0, Math.log(1.5), -1.5, -1.5],
    ['TIS weight truncated at 2', 1, 0, Math.log(3), -2, -2],
    ['TIS with a clipped token', -2, Math.log(4), Math.log(1.5), 9, 0],
  ];
  it.each(cases)('%s', (_, A, logRatio, oldMinusSampler, loss, grad) => {
    const old = -1.0;
    const out = lossAndGradient(
      {
        oldLogProbs: Float32Array.from([0, old]),
        samplerLogProbs: Float32Array.from([0, old - oldMinusSampler]),
        mask: Float32Array.from([0, 1]),
        advantages: Float32Array.from([A]),
        rowWeights: Float32Array.from([1]),
        ...PAPER,
      },
      [0, old + logRatio],
      [1, 2],
    );
    expect(out.loss).toBeCloseTo(loss, 5);
    expect(out.grad[0]).toBe(0);
    expect(out.grad[1]).toBeCloseTo(grad, 5);
  });

  it('reports clip, dual-clip and TIS statistics over output tokens', () => {
    // Four output tokens (A = 1): r 1.5 (clipped), r 1, r 1, r 1 with TIS weight 3 → 2 (capped); row 2 is padding.
    const mask = Float32Array.from([1, 1, 1, 1, 0, 0, 0, 0]);
    const T = 4;
    const rows = 2;
    const old = new Float32Array(rows * T);
    const sampler = Float32Array.from([0, 0, 0, -Math.log(3), 0, 0, 0, 0]);
    const out = lossAndGradient(
      {
        oldLogProbs: old,
        samplerLogProbs: sampler,
        mask,
        advantages: Float32Array.from([1, 1]),
        rowWeights: Float32Array.from([0.25, 0]),
        ...PAPER,
      },
      [Math.log(1.5), 0, 0, 0, 0, 0, 0, 0],
      [rows, T],
    );
    expect(out.stats.clip_fraction).toBeCloseTo(0.25, 6);
    expect(out.stats.tis_capped_fraction).toBeCloseTo(0.25, 6);
    expect(out.stats.tis_mean).toBeCloseTo((1 + 1 + 1 + 2) / 4, 6);
    expect(out.stats.ratio_max).toBeCloseTo(1.5, 5);
    expect(out.stats.approx_kl).toBeCloseTo(-Math.log(1.5) / 4, 6);
    const neg = lossAndGradient(
      {
        oldLogProbs: new Float32Array(2),
        samplerLogProbs: new Float32Array(2),
        mask: Float32Array.from([1, 1]),
        advantages: Float32Array.from([-1]),
        rowWeights: Float32Array.from([0.5]),
        ...PAPER,
      },
      [Math.log(4), Math.log(2)],
      [1, 2],
    );
    expect(neg.stats.dual_clip_fraction).toBeCloseTo(0.5, 6);
    expect(neg.stats.policy_loss).toBeCloseTo(neg.loss, 6);
  });

  it('reports per-token statistics across rows of different lengths, with a cap that float32 rounds', () => {
    // Row 0: one output token, A = −1, r = 4 → dual clip −3 (gradient 0). Row 1: three output tokens,
    // A = 1, r = [1.5, 1, 1] → [1.26 (clipped, gradient 0), 1, 1], the last with TIS weight min(1.5, 1.3).
    // Row weights [1, 1/3]: L = −(−3 + (1.26 + 1 + 1.3·1)/3) = 3 − 3.56/3; d/d log p_θ = −w·A·r·w_TIS.
    const T = 3;
    const mask = Float32Array.from([0, 1, 0, 1, 1, 1]);
    const old = new Float32Array(2 * T);
    const sampler = Float32Array.from([0, 0, 0, 0, 0, -Math.log(1.5)]);
    const out = lossAndGradient(
      {
        oldLogProbs: old,
        samplerLogProbs: sampler,
        mask,
        advantages: Float32Array.from([-1, 1]),
        rowWeights: Float32Array.from([1, 1 / 3]),
        ...PAPER,
        tisCap: 1.3,
      },
      [0, Math.log(4), 0, Math.log(1.5), 0, 0],
      [2, T],
    );
    const cap = Math.fround(1.3);
    expect(out.loss).toBeCloseTo(3 - (1.26 + 1 + cap) / 3, 5);
    expect(out.grad.map((g) => Number(g.toFixed(5)))).toEqual([0, 0, 0, 0, Number((-1 / 3).toFixed(5)), Number((-cap / 3).toFixed(5))]);
    // Means over the 4 output tokens, not over the 2 rows.
    expect(out.stats.approx_kl).toBeCloseTo(-(Math.log(4) + Math.log(1.5)) / 4, 6);
    expect(out.stats.ratio_mean).toBeCloseTo((4 + 1.5 + 1 + 1) / 4, 5);
    expect(out.stats.ratio_max).toBeCloseTo(4, 5);
    expect(out.stats.clip_fraction).toBeCloseTo(0.25, 6);
    expect(out.stats.dual_clip_fraction).toBeCloseTo(0.25, 6);
    expect(out.stats.tis_mean).toBeCloseTo((3 + cap) / 4, 6);
    expect(out.stats.tis_capped_fraction).toBeCloseTo(0.25, 6);
  });

  it('frees every intermediate tensor; the caller disposes loss and stats', () => {
    const x = tf.tensor2d([[-1, -0.5]]);
    const before = tf.memory().numTensors;
    const out = tf.tidy(() =>
      delethinkLoss({
        newLogProbs: x,
        oldLogProbs: Float32Array.from([-1, -1]),
        samplerLogProbs: Float32Array.from([-1, -2]),
        mask: Float32Array.from([1, 1]),
        advantages: Float32Array.from([-1]),
        rowWeights: Float32Array.from([0.5]),
        ...PAPER,
      }),
    );
    expect(Object.keys(out.stats).sort()).toEqual([
      'approx_kl',
      'clip_fraction',
      'dual_clip_fraction',
      'policy_loss',
      'ratio_max',
      'ratio_mean',
      'tis_capped_fraction',
      'tis_mean',
    ]);
    expect(tf.memory().numTensors).toBe(before + 1 + 8);
    tf.dispose([out.loss, ...Object.values(out.stats)]);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });

  it('is built on the shared LOOP code: same importance weights, advantages and minibatch checks', () => {
    expect(truncatedImportanceWeights).toBe(loopTruncatedImportanceWeights);
    const returns = [0.2, 0.9, 0.4, 0.4];
    expect(grpoAdvantages(returns)).toEqual(groupAdvantages(returns, { baseline: 'group-mean', normalize: 'std' }));
    expect(() => traceMinibatches(['a', 'b'], 0, 1, new Rng(1))).toThrow(TrainingError);
    expect(traceWeights([])).toEqual(new Float32Array(0));
    expect(() => traceWeights([], 0)).toThrow(/trace count N must be > 0/);
  });

  it('ignores masked positions even at −∞ and validates its inputs', () => {
    const base = {
      oldLogProbs: Float32Array.from([0, -1]),
      samplerLogProbs: Float32Array.from([0, -1]),
      mask: Float32Array.from([0, 1]),
      advantages: Float32Array.from([1]),
      rowWeights: Float32Array.from([1]),
      ...PAPER,
    };
    const out = lossAndGradient(base, [Number.NEGATIVE_INFINITY, -1], [1, 2]);
    expect(out.loss).toBeCloseTo(-1, 6);
    expect(out.grad).toEqual([0, -1]);
    const x = tf.zeros([1, 2]) as tf.Tensor2D;
    expect(() => delethinkLoss({ ...base, newLogProbs: x, dualClip: 1 })).toThrow(/dualClip c must be > 1/);
    expect(() => delethinkLoss({ ...base, newLogProbs: x, tisCap: 0.5 })).toThrow(/tisCap/);
    expect(() => delethinkLoss({ ...base, newLogProbs: x, mask: new Float32Array(3) })).toThrow(/mask has 3 entries, expected 2/);
    expect(() => delethinkLoss({ ...base, newLogProbs: x, rowWeights: Float32Array.from([Number.NaN]) })).toThrow(/row weights/);
    x.dispose();
  });
});

describe('trace minibatches', () => {
  it('keep the chunks of a trace together and cover every row once per epoch', () => {
    const rowTraces = ['a', 'a', 'b', 'c', 'c', 'c', 'd'];
    const plan = traceMinibatches(rowTraces, 2, 3, new Rng(4));
    expect(plan).toHaveLength(3);
    for (const epoch of plan) {
      expect(epoch).toHaveLength(2);
      expect(epoch.flat().sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6]);
      for (const minibatch of epoch) {
        const traces = new Set(minibatch.map((i) => rowTraces[i]));
        expect(traces.size).toBe(2);
        for (const t of traces) expect(minibatch.filter((i) => rowTraces[i] === t).length).toBe(rowTraces.filter((r) => r === t).length);
      }
    }
  });
});

describe('test-time scaling: trimming to a budget', () => {
  it('right-trims output tokens across chunks', () => {
    const chunks = [
      [1, 2, 3, 4],
      [5, 6],
      [7, 8],
    ];
    expect(trimTraceToBudget(chunks, 5)).toEqual({ responses: [[1, 2, 3, 4], [5]], thinkingTokens: 5, trimmed: true });
    expect(trimTraceToBudget(chunks, 6)).toEqual({
      responses: [
        [1, 2, 3, 4],
        [5, 6],
      ],
      thinkingTokens: 6,
      trimmed: true,
    });
    expect(trimTraceToBudget(chunks, 8)).toEqual({ responses: chunks, thinkingTokens: 8, trimmed: false });
    expect(trimTraceToBudget(chunks, 100).trimmed).toBe(false);
    expect(() => trimTraceToBudget(chunks, 0)).toThrow(TrainingError);
  });

  it('scores a trace cut before its answer as 0, and reads an answer split by a chunk boundary through the carryover', async () => {
    const tok = new ByteTokenizer();
    const chunk1 = tok.encode('0:3=3 1:4=7 </thi');
    const chunk2 = [...tok.encode('nk> \\boxed{7}'), EOT_ID];
    const tracing: DelethinkTracing = { chunkTokens: chunk1.length, carryoverTokens: 8, headTokens: 0, maxChunks: 4, carry: 'paper' };
    const score = (window: readonly number[]) => (verifyAnswer(tok.decode(window), '7', { requireEndOfThinking: true }).correct ? 1 : 0);
    const budgets = [chunk1.length, chunk1.length + chunk2.length - 2, chunk1.length + chunk2.length - 1, 1000];
    const rows = await accuracyByBudget([[chunk1, chunk2]], budgets, tracing, score);
    expect(rows.map((r) => r.accuracy)).toEqual([0, 0, 1, 1]);
    expect(rows.map((r) => r.trimmedShare)).toEqual([1, 1, 1, 0]);
    expect(rows[3].meanThinkingTokens).toBe(chunk1.length + chunk2.length);
    // Without a carryover the last response alone holds only half of the marker.
    const noCarry = await accuracyByBudget([[chunk1, chunk2]], [1000], { ...tracing, carryoverTokens: 0 }, score);
    expect(noCarry[0].accuracy).toBe(0);
  });

  it('reads chunk responses back from trajectory segments', () => {
    const segments = [
      { tokens: [1, 2, 10, 11], isOutput: [0, 0, 1, 1] as (0 | 1)[], logProbs: [0, 0, -1, -1], turn: [-1, -1, 0, 0] },
      { tokens: [1, 11, 12, EOT_ID], isOutput: [0, 0, 1, 0] as (0 | 1)[], logProbs: [0, 0, -1, 0], turn: [-1, -1, 1, 1] },
    ];
    expect(segmentResponses(segments)).toEqual([
      [10, 11],
      [12, EOT_ID],
    ]);
  });
});
