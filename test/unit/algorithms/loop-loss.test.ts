/**
 * LOOP step 8 (the clipped objective) and step 9 statistics, with hand-computed values and a tiny
 * stand-in policy (a variable of logits per position whose log-softmax gives the token log-probs), so
 * nothing here depends on the transformer. Spec invariants 4, 5, 6, 7 and 8.
 */
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { TrainingError } from '../../../core/errors.js';
import '../../../models/gradients.js';
import { Rng } from '../../../core/rng.js';
import {
  clipBounds,
  filterByAdvantage,
  groupRollouts,
  loopLoss,
  minibatchDivisor,
  planMinibatches,
  type LoopLossInputs,
  type LoopLossStats,
  type RatioMode,
} from '../../../trainer/algorithms/loop.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const { lo: LO, hi: HI } = clipBounds(0.1, 'paper'); // [0.9, 1.1]

interface Outcome {
  loss: number;
  stats: Record<keyof LoopLossStats, number>;
  /** d loss / d variable, flattened. */
  grad: Float32Array;
}

/** Runs `loopLoss` inside `tf.variableGrads` the way the learner does, reads everything, frees it all. */
function lossAndGrad(variable: tf.Variable, inputsFor: (v: tf.Variable) => LoopLossInputs): Outcome {
  let stats: LoopLossStats | undefined;
  const { value, grads } = tf.variableGrads(() => {
    const out = loopLoss(inputsFor(variable));
    stats = out.stats;
    return out.loss;
  }, [variable]);
  const outcome: Outcome = {
    loss: value.dataSync()[0],
    stats: Object.fromEntries(Object.entries(stats!).map(([k, t]) => [k, t.dataSync()[0]])) as Outcome['stats'],
    grad: new Float32Array(grads[variable.name].dataSync()),
  };
  tf.dispose([value, ...Object.values(grads), ...Object.values(stats!)]);
  return outcome;
}

/** Base inputs for a hand example where the variable *is* the [1, T] row of new log-probs. */
function handInputs(
  v: tf.Variable,
  fields: Partial<LoopLossInputs> & Pick<LoopLossInputs, 'oldLogProbs' | 'mask' | 'advantages' | 'divisor'>,
): LoopLossInputs {
  return {
    newLogProbs: v as tf.Tensor2D,
    turnIds: new Int32Array(fields.mask.length),
    clipLow: LO,
    clipHigh: HI,
    ratio: 'token',
    ...fields,
  };
}

/** Stand-in policy: `logits` [N, V], one row per (rollout, position) or one per position shared by rows. */
function policyLogProbs(logits: tf.Tensor2D, tokens: readonly number[], rows: number, cols: number): tf.Tensor2D {
  return tf.tidy(() => {
    const vocab = logits.shape[1];
    const perPosition = logits.shape[0] === rows * cols ? logits : tf.tile(logits, [rows, 1]);
    const picked = tf.mul(tf.logSoftmax(perPosition), tf.oneHot(tf.tensor1d(tokens as number[], 'int32'), vocab));
    return tf.reshape(tf.sum(picked, 1), [rows, cols]) as tf.Tensor2D;
  });
}

function softmax(row: ArrayLike<number>): number[] {
  const max = Math.max(...Array.from(row));
  const exps = Array.from(row, (z) => Math.exp(z - max));
  const total = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / total);
}

function randomLogits(rng: Rng, rows: number, vocab: number): tf.Variable {
  const values = Float32Array.from({ length: rows * vocab }, () => rng.normal());
  return tf.variable(tf.tensor2d(values, [rows, vocab]));
}

const ln = Math.log;

describe('loopLoss: the clipped objective by hand (token ratios)', () => {
  it('A > 0: a token with r > 1 + ε gets zero gradient; the denominator counts output tokens (invariants 4, 6)', () => {
    // One rollout, T = 3, mask [1, 1, 0], A = 1, M = 2, bounds [0.9, 1.1].
    // old = [ln .5, ln .5, 0]; new = [ln .6, ln .475, −∞] → r = [1.2, 0.95]; the third token is not output.
    // L = −(1/M)(1/|a|) Σ min(rA, clip(r)A) = −(1/2)(1/2)(min(1.2, 1.1) + 0.95) = −(1/4)(2.05) = −0.5125
    // dL/dnew_0 = 0 (clipped side); dL/dnew_1 = −(1/4)·A·r = −0.2375; dL/dnew_2 = 0 (mask 0).
    // Had |a| counted all 3 positions, L would be −(1/6)(2.05) = −0.3417.
    const v = tf.variable(tf.tensor2d([[ln(0.6), ln(0.475), Number.NEGATIVE_INFINITY]]));
    const out = lossAndGrad(v, (x) =>
      handInputs(x, {
        oldLogProbs: Float32Array.from([ln(0.5), ln(0.5), 0]),
        mask: Float32Array.from([1, 1, 0]),
        advantages: Float32Array.from([1]),
        divisor: 2,
      }),
    );
    expect(out.loss).toBeCloseTo(-0.5125, 6);
    expect(out.grad[0]).toBe(0);
    expect(out.grad[1]).toBeCloseTo(-0.2375, 6);
    expect(out.grad[2]).toBe(0);
    // Stats: 1 of 2 output tokens clipped; ratio mean (1.2 + 0.95)/2 = 1.075, max 1.2;
    // approx_kl = −(ln 1.2 + ln 0.95) = −(0.1823216 − 0.0512933) = −0.1310283.
    expect(out.stats.clipfrac).toBeCloseTo(0.5, 6);
    expect(out.stats.ratio_mean).toBeCloseTo(1.075, 5);
    expect(out.stats.ratio_max).toBeCloseTo(1.2, 5);
    expect(out.stats.approx_kl).toBeCloseTo(-0.1310283, 5);
    expect(out.stats.loss).toBeCloseTo(-0.5125, 6);
    expect(out.stats.policy_loss).toBeCloseTo(-0.5125, 6);
    expect(out.stats.kl_ref).toBe(0);
    v.dispose();
  });

  it('A < 0: r < lo is clipped (zero gradient), r > hi is not (invariant 6)', () => {
    // T = 4, mask [1, 1, 1, 0], A = −1, M = 2, |a| = 3 → token weight 1/6. r = [0.8, 1.05, 1.3].
    //   r = 0.8:  min(−0.8, −0.9)  = −0.9  (clipped, gradient 0)
    //   r = 1.05: min(−1.05, −1.05) = −1.05 (gradient −(1/6)·A·r = 0.175)
    //   r = 1.3:  min(−1.3, −1.1)  = −1.3  (unclipped: the pessimistic side, gradient (1/6)·1.3 = 0.2166667)
    // L = −(1/6)(−0.9 − 1.05 − 1.3) = 3.25/6 = 0.5416667; clipfrac = 1/3.
    const old = [ln(0.5), ln(0.2), ln(0.1), -3];
    const v = tf.variable(tf.tensor2d([[ln(0.4), ln(0.21), ln(0.13), 42]]));
    const out = lossAndGrad(v, (x) =>
      handInputs(x, {
        oldLogProbs: Float32Array.from(old),
        mask: Float32Array.from([1, 1, 1, 0]),
        advantages: Float32Array.from([-1]),
        divisor: 2,
      }),
    );
    expect(out.loss).toBeCloseTo(0.5416667, 5);
    expect(out.grad[0]).toBe(0);
    expect(out.grad[1]).toBeCloseTo(0.175, 5);
    expect(out.grad[2]).toBeCloseTo(0.2166667, 5);
    expect(out.grad[3]).toBe(0);
    expect(out.stats.clipfrac).toBeCloseTo(1 / 3, 6);
    v.dispose();
  });

  it('the lower bound follows clipLow: r = 0.905, A < 0 is inside [0.9, 1.1] but below 1/1.1', () => {
    // One token, M = 1, A = −1. Paper: unclipped, dL/dnew = −A·r = 0.905. Code (lo = 0.90909): clipped → 0.
    const run = (mode: 'paper' | 'code'): Outcome => {
      const v = tf.variable(tf.tensor2d([[ln(0.905)]]));
      const { lo, hi } = clipBounds(0.1, mode);
      const out = lossAndGrad(v, (x) =>
        handInputs(x, {
          oldLogProbs: Float32Array.from([0]),
          mask: Float32Array.from([1]),
          advantages: Float32Array.from([-1]),
          divisor: 1,
          clipLow: lo,
          clipHigh: hi,
        }),
      );
      v.dispose();
      return out;
    };
    expect(run('paper').grad[0]).toBeCloseTo(0.905, 5);
    expect(run('paper').stats.clipfrac).toBe(0);
    expect(run('code').grad[0]).toBe(0);
    expect(run('code').stats.clipfrac).toBe(1);
  });
});

describe('loopLoss: per-turn and per-trajectory ratios by hand', () => {
  // One rollout, T = 5: turns [0, 0, 0, 1, 1], mask [1, 1, 0, 1, 1] (position 2 = end-of-turn, not output).
  // new − old = [0.1, 0.05, 5 (ignored), −0.02, 0.01]; M = 1; |a| = 4.
  const old = [-1, -1, -1, -1, -1];
  const delta = [0.1, 0.05, 5, -0.02, 0.01];
  const fields = (ratio: RatioMode, advantage: number) => ({
    oldLogProbs: Float32Array.from(old),
    mask: Float32Array.from([1, 1, 0, 1, 1]),
    turnIds: Int32Array.from([0, 0, 0, 1, 1]),
    advantages: Float32Array.from([advantage]),
    divisor: 1,
    ratio,
  });
  const newRow = () => tf.variable(tf.tensor2d([old.map((o, i) => o + delta[i])]));

  it('turn: one ratio per turn applied to each of its output tokens', () => {
    // turn 0: r = exp(0.1 + 0.05) = 1.1618342 → A > 0, clipped at 1.1, gradient 0 for both tokens.
    // turn 1: r = exp(−0.02 + 0.01) = 0.9900498.
    // L = −(1/4)(2·1.1 + 2·0.9900498) = −(1/4)(4.1800997) = −1.0450249
    // each token of turn 1 moves r of both its turn's tokens: dL/dnew_t = −(1/4)·2·r·A = −0.4950249.
    const v = newRow();
    const out = lossAndGrad(v, (x) => handInputs(x, fields('turn', 1)));
    expect(out.loss).toBeCloseTo(-1.0450249, 5);
    expect(Array.from(out.grad).map((g) => +g.toFixed(6))).toEqual([0, 0, 0, -0.495025, -0.495025]);
    // 2 of 4 output tokens clipped; ratio mean (2·1.1618342 + 2·0.9900498)/4 = 1.075942; KL −0.14.
    expect(out.stats.clipfrac).toBeCloseTo(0.5, 6);
    expect(out.stats.ratio_mean).toBeCloseTo(1.075942, 5);
    expect(out.stats.ratio_max).toBeCloseTo(1.1618342, 5);
    expect(out.stats.approx_kl).toBeCloseTo(-0.14, 5);
    v.dispose();
  });

  it('trajectory: one ratio exp(Σ log r) for the rollout', () => {
    // r = exp(0.1 + 0.05 − 0.02 + 0.01) = exp(0.14) = 1.1502738.
    // A = +1: clipped at 1.1 → L = −(1/4)(4·1.1) = −1.1, gradient 0 everywhere, clipfrac 1.
    const up = newRow();
    const clipped = lossAndGrad(up, (x) => handInputs(x, fields('trajectory', 1)));
    expect(clipped.loss).toBeCloseTo(-1.1, 5);
    expect(Array.from(clipped.grad).every((g) => g === 0)).toBe(true);
    expect(clipped.stats.clipfrac).toBe(1);
    up.dispose();
    // A = −1: min(−1.1502738, −1.1) = −1.1502738 (unclipped) → L = −(1/4)·4·(−r) = r = 1.1502738;
    // dL/dnew_t = r = 1.1502738 on every output token, 0 on the end-of-turn token.
    const down = newRow();
    const unclipped = lossAndGrad(down, (x) => handInputs(x, fields('trajectory', -1)));
    expect(unclipped.loss).toBeCloseTo(1.1502738, 5);
    expect(Array.from(unclipped.grad).map((g) => +g.toFixed(5))).toEqual([1.15027, 1.15027, 0, 1.15027, 1.15027]);
    down.dispose();
  });

  it('turn ratios need a turn id on every output token', () => {
    const v = newRow();
    const bad = { ...fields('turn', 1), turnIds: Int32Array.from([0, 0, 0, -1, 1]) };
    expect(() => loopLoss(handInputs(v, bad))).toThrow(/turn id -1/);
    v.dispose();
  });
});

describe('loopLoss: KL penalty to a reference (k3)', () => {
  it('adds klCoef · (1/M) Σ_x (1/|a|) Σ_t (e^d − d − 1), d = ref − new', () => {
    // mask [1, 1, 0], A = 0 (so only the KL term moves), M = 1, klCoef = 0.5, new = old = [−1, −2, −∞].
    // ref = [−0.9, −2.2, 7] → d = [0.1, −0.2]:
    //   k3 = e^0.1 − 0.1 − 1 = 0.0051709;  e^−0.2 + 0.2 − 1 = 0.0187308
    //   kl_ref = (1/2)(0.0051709 + 0.0187308) = 0.0119508;  loss = 0.5 · 0.0119508 = 0.0059754
    //   dL/dnew_t = klCoef · (1/2) · (1 − e^d): 0.25·(1 − 1.1051709) = −0.0262927; 0.25·(1 − 0.8187308) = 0.0453173
    const v = tf.variable(tf.tensor2d([[-1, -2, Number.NEGATIVE_INFINITY]]));
    const out = lossAndGrad(v, (x) =>
      handInputs(x, {
        oldLogProbs: Float32Array.from([-1, -2, 0]),
        mask: Float32Array.from([1, 1, 0]),
        advantages: Float32Array.from([0]),
        divisor: 1,
        refLogProbs: Float32Array.from([-0.9, -2.2, 7]),
        klCoef: 0.5,
      }),
    );
    expect(out.stats.kl_ref).toBeCloseTo(0.0119508, 6);
    expect(out.loss).toBeCloseTo(0.0059754, 6);
    expect(Math.abs(out.stats.policy_loss)).toBe(0); // −0: the negated sum of zeros
    expect(out.grad[0]).toBeCloseTo(-0.0262927, 6);
    expect(out.grad[1]).toBeCloseTo(0.0453173, 6);
    expect(out.grad[2]).toBe(0);
    v.dispose();
  });

  it('klCoef > 0 without reference log-probs is an error', () => {
    const v = tf.variable(tf.tensor2d([[-1]]));
    expect(() =>
      loopLoss(
        handInputs(v, {
          oldLogProbs: Float32Array.from([-1]),
          mask: Float32Array.from([1]),
          advantages: Float32Array.from([1]),
          divisor: 1,
          klCoef: 0.1,
        }),
      ),
    ).toThrow(TrainingError);
    v.dispose();
  });
});

describe('loopLoss with a stand-in policy', () => {
  // Three rollouts of one task, T = 4, V = 3. Returns [1, 0, 0.25]: LOO advantages
  //   A_1 = 1 − (0 + 0.25)/2 = 0.875;  A_2 = 0 − (1 + 0.25)/2 = −0.625;  A_3 = 0.25 − (1 + 0)/2 = −0.25.
  // Masks: position 0 is the prompt; row 1 has an end-of-turn token at 2 → |a| = [3, 2, 2].
  const rows = 3;
  const cols = 4;
  const vocab = 3;
  const tokens = [2, 0, 1, 2, 1, 1, 0, 2, 0, 2, 2, 1];
  const mask = Float32Array.from([0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 0]);
  const outputs = [3, 2, 2];
  const scored = groupRollouts(
    [1, 0, 0.25].map((reward, k) => ({ k, groupId: 'task', reward, cancelled: false })),
    { baseline: 'leave-one-out', normalize: 'none' },
  );
  const advantages = Float32Array.from(scored.map((s) => s.advantage));

  function inputsWith(logits: tf.Variable, old: Float32Array, divisor: number, ratio: RatioMode = 'token'): LoopLossInputs {
    return {
      newLogProbs: policyLogProbs(logits as tf.Tensor2D, tokens, rows, cols),
      oldLogProbs: old,
      mask,
      turnIds: new Int32Array(rows * cols),
      advantages,
      divisor,
      clipLow: LO,
      clipHigh: HI,
      ratio,
    };
  }

  /** Step 7: old log-probs recomputed with the current weights. */
  function recompute(logits: tf.Variable): Float32Array {
    const lp = policyLogProbs(logits as tf.Tensor2D, tokens, rows, cols);
    const values = new Float32Array(lp.dataSync());
    lp.dispose();
    return values;
  }

  it('computes the LOO advantages the comments use', () => {
    expect(Array.from(advantages)).toEqual([0.875, -0.625, -0.25]);
  });

  it('invariant 5: after recompute every ratio is 1, clipfrac 0, and the gradient is REINFORCE with the LOO baseline', () => {
    const logits = randomLogits(new Rng(11), rows * cols, vocab);
    const divisor = 4; // M larger than this minibatch: the fixed divisor of the spec.
    const out = lossAndGrad(logits, (v) => inputsWith(v, recompute(v), divisor));
    expect(out.stats.clipfrac).toBe(0);
    expect(out.stats.ratio_mean).toBeCloseTo(1, 6);
    expect(out.stats.ratio_max).toBeCloseTo(1, 6);
    expect(out.stats.approx_kl).toBeCloseTo(0, 6);
    // At r = 1 each rollout contributes (1/|a|)·Σ_t A = A: L = −(1/4)(0.875 − 0.625 − 0.25) = 0.
    expect(out.loss).toBeCloseTo(0, 6);
    // REINFORCE: ∂L/∂z_{b,t} = −(1/M)(1/|a_b|)·A_b·mask_{b,t}·(onehot(x_{b,t}) − softmax(z_{b,t})).
    const z = logits.dataSync();
    for (let b = 0; b < rows; b++) {
      for (let t = 0; t < cols; t++) {
        const i = b * cols + t;
        const p = softmax(z.slice(i * vocab, (i + 1) * vocab));
        for (let c = 0; c < vocab; c++) {
          const expected = mask[i] ? -(advantages[b] / (divisor * outputs[b])) * ((c === tokens[i] ? 1 : 0) - p[c]) : 0;
          expect(out.grad[i * vocab + c]).toBeCloseTo(expected, 6);
          // Invariant 4: exactly zero, not merely small, off the policy's tokens.
          if (!mask[i]) expect(out.grad[i * vocab + c]).toBe(0);
        }
      }
    }
    logits.dispose();
  });

  it('invariant 4: non-output positions get exactly zero gradient when ratios are far from 1', () => {
    const logits = randomLogits(new Rng(12), rows * cols, vocab);
    const old = recompute(logits).map((x, i) => x + (i % 3 === 0 ? 0.3 : -0.2) + (mask[i] ? 0 : 50));
    for (const ratio of ['token', 'turn', 'trajectory'] as const) {
      const out = lossAndGrad(logits, (v) => inputsWith(v, old, 2, ratio));
      let nonZeroOutputs = 0;
      for (let i = 0; i < rows * cols; i++) {
        for (let c = 0; c < vocab; c++) {
          const g = out.grad[i * vocab + c];
          if (!mask[i]) expect(g).toBe(0);
          else if (g !== 0) nonZeroOutputs++;
        }
      }
      expect(nonZeroOutputs).toBeGreaterThan(0);
      expect(Number.isFinite(out.loss)).toBe(true);
    }
    logits.dispose();
  });

  it('invariant 7: a half-full last minibatch gives half the gradient (the divisor stays M)', () => {
    // Shared logits [T, V] (one policy for every row). A full minibatch of two identical rollouts
    // (A = 0.875 each) and a half-full one holding one of them, both divided by M = 2:
    // L_half = ½·L_full exactly, so ∇L_half = ½·∇L_full.
    const shared = randomLogits(new Rng(13), cols, vocab);
    const row = tokens.slice(0, cols);
    const rowMask = mask.slice(0, cols);
    const run = (copies: number): Float32Array => {
      const old = (() => {
        const lp = policyLogProbs(shared as tf.Tensor2D, row, 1, cols);
        const values = new Float32Array(lp.dataSync()).map((x, t) => x + 0.05 * (t - 1));
        lp.dispose();
        return values;
      })();
      const repeat = (a: Float32Array): Float32Array => Float32Array.from(Array.from({ length: copies }, () => Array.from(a)).flat());
      return lossAndGrad(shared, (v) => ({
        newLogProbs: policyLogProbs(v as tf.Tensor2D, Array(copies).fill(row).flat(), copies, cols),
        oldLogProbs: repeat(old),
        mask: repeat(rowMask),
        turnIds: new Int32Array(copies * cols),
        advantages: new Float32Array(copies).fill(0.875),
        divisor: 2,
        clipLow: LO,
        clipHigh: HI,
        ratio: 'token',
      })).grad;
    };
    const full = run(2);
    const half = run(1);
    const norm = (g: Float32Array) => Math.sqrt(g.reduce((a, x) => a + x * x, 0));
    expect(norm(full)).toBeGreaterThan(0);
    expect(norm(half) / norm(full)).toBeCloseTo(0.5, 6);
    half.forEach((g, i) => expect(g).toBeCloseTo(0.5 * full[i], 7));
    shared.dispose();
  });

  it('invariant 8: one epoch, one full-batch minibatch, per-trajectory ratio = RLOO', () => {
    // Four rollouts of one task with different lengths, shared logits [T, V].
    // Returns [1, 0, 0.5, 0.25], mean 0.4375: A = 4/3·(R − mean) = [0.75, −0.5833333, 0.0833333, −0.25].
    // RLOO gradient (Ahmadian et al. 2024): ∇L = −(1/n) Σ_x A(x) ∇ log p_θ(x), log p_θ(x) = Σ_{t∈a(x)} log p_θ(x_t),
    // so ∂L/∂z_t = −(1/n) Σ_x A(x)·mask_{x,t}·(onehot(x_t) − softmax(z_t)).
    const n = 4;
    const T = 5;
    const rlooTokens = [1, 0, 2, 2, 1, 0, 1, 1, 2, 0, 2, 2, 0, 1, 1, 1, 0, 0, 2, 1];
    const rlooMask = Float32Array.from([0, 1, 1, 1, 1, 0, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1]);
    const kept = filterByAdvantage(
      groupRollouts(
        [1, 0, 0.5, 0.25].map((reward, k) => ({ k, groupId: 'g', reward, cancelled: false })),
        { baseline: 'leave-one-out', normalize: 'none' },
      ),
      0.01,
    );
    expect(kept.map((s) => s.advantage.toFixed(7))).toEqual(['0.7500000', '-0.5833333', '0.0833333', '-0.2500000']);
    const plan = planMinibatches(kept.length, 32, 1, new Rng(5), true);
    expect(plan).toHaveLength(1);
    expect(plan[0]).toHaveLength(1);
    const order = plan[0][0];
    const divisor = minibatchDivisor(32, kept.length, true);
    expect(divisor).toBe(n);

    const shared = randomLogits(new Rng(14), T, vocab);
    const pick = <A extends ArrayLike<number>>(a: A) => order.flatMap((k) => Array.from(a).slice(k * T, (k + 1) * T));
    const batchTokens = pick(rlooTokens);
    const batchMask = Float32Array.from(pick(rlooMask));
    const batchAdvantages = Float32Array.from(order.map((k) => kept[k].advantage));
    const old = (() => {
      const lp = policyLogProbs(shared as tf.Tensor2D, batchTokens, n, T);
      const values = new Float32Array(lp.dataSync());
      lp.dispose();
      return values;
    })();
    const run = (ratio: RatioMode) =>
      lossAndGrad(shared, (v) => ({
        newLogProbs: policyLogProbs(v as tf.Tensor2D, batchTokens, n, T),
        oldLogProbs: old,
        mask: batchMask,
        turnIds: new Int32Array(n * T),
        advantages: batchAdvantages,
        divisor,
        clipLow: LO,
        clipHigh: HI,
        ratio,
      })).grad;

    const z = shared.dataSync();
    const rloo = new Float32Array(T * vocab);
    for (let x = 0; x < n; x++) {
      for (let t = 0; t < T; t++) {
        if (!rlooMask[x * T + t]) continue;
        const p = softmax(z.slice(t * vocab, (t + 1) * vocab));
        for (let c = 0; c < vocab; c++) {
          rloo[t * vocab + c] += -(kept[x].advantage / n) * ((c === rlooTokens[x * T + t] ? 1 : 0) - p[c]);
        }
      }
    }
    const trajectory = run('trajectory');
    trajectory.forEach((g, i) => expect(g).toBeCloseTo(rloo[i], 6));
    // The per-token ratio normalises by |a(x)| (lengths 4, 2, 3, 4 differ), so it is not RLOO.
    const token = run('token');
    expect(Math.max(...Array.from(token, (g, i) => Math.abs(g - rloo[i])))).toBeGreaterThan(1e-3);
    shared.dispose();
  });

  it('frees every intermediate tensor; the caller disposes loss, grads and stats', () => {
    const logits = randomLogits(new Rng(15), rows * cols, vocab);
    const old = recompute(logits);
    const before = tf.memory().numTensors;
    for (const ratio of ['token', 'turn', 'trajectory'] as const) {
      lossAndGrad(logits, (v) => ({ ...inputsWith(v, old, 4, ratio), refLogProbs: old, klCoef: 0.1 }));
    }
    expect(tf.memory().numTensors).toBe(before);
    logits.dispose();
  });

  it('rejects inputs whose lengths do not match [B, T]', () => {
    const logits = randomLogits(new Rng(16), rows * cols, vocab);
    expect(() => tf.tidy(() => loopLoss({ ...inputsWith(logits, new Float32Array(5), 4) }).loss)).toThrow(
      /oldLogProbs has 5 entries, expected 12/,
    );
    expect(() => tf.tidy(() => loopLoss({ ...inputsWith(logits, recompute(logits), 4), advantages: new Float32Array(2) }).loss)).toThrow(
      TrainingError,
    );
    logits.dispose();
  });
});

describe('loopLoss: row weights and dual clip (other aggregations of the same surrogate)', () => {
  it('rowWeights replace 1/(M·|a(x)|): each output token of row b weighs w_b', () => {
    // Two rows, T = 2, all output, A = [1, 1], ratios 1 (new = old). w = [0.25, 0.1].
    // L = −(0.25·(1 + 1) + 0.1·(1 + 1)) = −0.7; dL/dnew = −w_b·A·r = [−0.25, −0.25, −0.1, −0.1].
    const old = [ln(0.5), ln(0.4), ln(0.3), ln(0.2)];
    const v = tf.variable(tf.tensor2d([old.slice(0, 2), old.slice(2)]));
    const out = lossAndGrad(v, (x) =>
      handInputs(x, {
        oldLogProbs: Float32Array.from(old),
        mask: Float32Array.from([1, 1, 1, 1]),
        advantages: Float32Array.from([1, 1]),
        divisor: 999,
        rowWeights: Float32Array.from([0.25, 0.1]),
      }),
    );
    expect(out.loss).toBeCloseTo(-0.7, 6);
    expect(Array.from(out.grad)).toEqual([-0.25, -0.25, -0.1, -0.1].map((g) => expect.closeTo(g, 6)));
    v.dispose();
  });

  it('dual clip bounds a negative-advantage token at c·A and zeroes its gradient; A > 0 is unaffected', () => {
    // Row 0: A = −1, r = 5 → min(−5, −1.1) = −5, dual clip c = 3: max(−5, −3) = −3 (gradient 0).
    // Row 1: A = −1, r = 2 → min(−2, −1.1) = −2 > −3: kept, gradient −w·A·r = 2·w.
    // Row 2: A = +1, r = 5 → min(5, 1.1) = 1.1 (clipped, gradient 0); the dual clip only acts on A < 0.
    // w = 1 each: L = −(−3 − 2 + 1.1) = 3.9.
    const old = [ln(0.1), ln(0.1), ln(0.1)];
    const v = tf.variable(tf.tensor2d([[ln(0.5)], [ln(0.2)], [ln(0.5)]]));
    const out = lossAndGrad(v, (x) =>
      handInputs(x, {
        oldLogProbs: Float32Array.from(old),
        mask: Float32Array.from([1, 1, 1]),
        advantages: Float32Array.from([-1, -1, 1]),
        divisor: 1,
        rowWeights: Float32Array.from([1, 1, 1]),
        dualClip: 3,
      }),
    );
    expect(out.loss).toBeCloseTo(3.9, 5);
    expect(out.grad[0]).toBe(0);
    expect(out.grad[1]).toBeCloseTo(2, 5);
    expect(out.grad[2]).toBe(0);
    v.dispose();
  });

  it('rejects a dual clip ≤ 1 and negative row weights', () => {
    const v = tf.variable(tf.tensor2d([[0]]));
    const base = { oldLogProbs: Float32Array.from([0]), mask: Float32Array.from([1]), advantages: Float32Array.from([1]), divisor: 1 };
    expect(() => lossAndGrad(v, (x) => handInputs(x, { ...base, dualClip: 1 }))).toThrow(/dualClip must be > 1/);
    expect(() => lossAndGrad(v, (x) => handInputs(x, { ...base, rowWeights: Float32Array.from([-1]) }))).toThrow(/rowWeights/);
    v.dispose();
  });
});
