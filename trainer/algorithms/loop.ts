/**
 * LOOP — leave-one-out PPO for long-horizon interactive agents (Chen et al. 2025, "Reinforcement Learning
 * for Long-Horizon Interactive LLM Agents", arXiv 2502.01600). The whole update, in the paper's order:
 *
 *   5. leave-one-out advantages per group            → `groupAdvantages`, `groupRollouts`
 *   6. drop rollouts with |A| < 0.01                  → `filterByAdvantage`
 *   7. (old log-probs recomputed by the learner before the first update; then every ratio starts at 1)
 *   8. N_epoch epochs of shuffled minibatches of M    → `planMinibatches`, `minibatchDivisor`
 *      clipped objective with a fixed divisor M       → `clipBounds`, `loopLoss`
 *   9. abort on a NaN loss or a large sequence KL     → `shouldAbort`
 *
 * The ablations of the paper (per-turn / per-trajectory ratios, std-normalised advantages, group-mean
 * baseline, KL to a reference, on-policy full batch) are options of these functions, not separate code.
 * Everything here is pure: plain arrays in, plain arrays or tensors out; the learner owns the model.
 */
import * as tf from '@tensorflow/tfjs-core';
import { TrainingError } from '../../core/errors.js';
import type { Rng } from '../../core/rng.js';

// ─────────────────────────────────────────────────────────────────────────────────────────────────────
// 5. Advantages
// ─────────────────────────────────────────────────────────────────────────────────────────────────────

/** How a group's returns become advantages (config `loop.advantage`, `loop.normalize`). */
export interface AdvantageOptions {
  /** `leave-one-out`: A_k = R_k − mean_{j≠k} R_j (LOOP, RLOO). `group-mean`: A_k = R_k − mean R (GRPO). */
  readonly baseline: 'leave-one-out' | 'group-mean';
  /** `std`: divide by the group's sample standard deviation (LOOP RwNorm, GRPO). LOOP itself: `none`. */
  readonly normalize: 'none' | 'std';
}

/** Added to the group std before dividing, so a near-constant group cannot blow advantages up. */
const STD_EPSILON = 1e-6;

/**
 * Advantages of one group of K' finished rollouts of the same task (step 5 of docs/loop.md).
 *
 * Leave-one-out: A_k = R_k − mean_{j≠k} R_j = K'/(K'−1) · (R_k − mean R); these sum to 0 and scale
 * linearly with the rewards. Group mean: A_k = R_k − mean R. With `normalize: 'std'` either is divided
 * by (sample std of R + 1e-6), the std with Bessel's correction as in common GRPO implementations.
 *
 * Edge cases: a group of one rollout has no baseline to compare with, so its advantage is 0 (and the
 * |A| filter then drops it); an empty group gives []. A group whose returns are all equal gives exactly
 * 0 for every member (returns are shifted by R_1 first, so no rounding residue survives).
 *
 * Example: returns [1, 0, 0.5, 0.5], leave-one-out → mean 0.5, factor 4/3 → [2/3, −2/3, 0, 0].
 */
export function groupAdvantages(returns: readonly number[], opts: AdvantageOptions): number[] {
  const groupSize = returns.length;
  for (const r of returns) {
    if (!Number.isFinite(r)) {
      throw new TrainingError(`group return ${r} is not a finite number; every scored rollout needs a finite reward.total`, {
        context: { returns },
      });
    }
  }
  if (groupSize < 2) return returns.map(() => 0);
  // Shift by the first return: advantages are shift-invariant, and an all-equal group becomes exact zeros.
  const shifted = returns.map((r) => r - returns[0]);
  const mean = shifted.reduce((a, b) => a + b, 0) / groupSize;
  const scale = opts.baseline === 'leave-one-out' ? groupSize / (groupSize - 1) : 1;
  const advantages = shifted.map((r) => scale * (r - mean));
  if (opts.normalize === 'none') return advantages;
  const variance = shifted.reduce((acc, r) => acc + (r - mean) * (r - mean), 0) / (groupSize - 1);
  const std = Math.sqrt(variance);
  // std = 0 means every advantage is already exactly 0; 0 / ε stays 0.
  return advantages.map((a) => a / (std + STD_EPSILON));
}

/** The fields of a finished or cancelled rollout that grouping needs; the learner's record extends it. */
export interface RolloutOutcome {
  /** Rollouts of the same task in the same iteration share it. */
  readonly groupId: string;
  /** Scalar return R (the reward's `total`, LOOP: in [0, 1]). Ignored when `cancelled`. */
  readonly reward: number;
  /** True for a straggler cancelled by the early stop (step 3 of docs/loop.md): dropped, never scored as zero. */
  readonly cancelled: boolean;
}

/** A rollout that survived grouping, with the advantage shared by all its output tokens. */
export interface ScoredRollout<T> {
  readonly rollout: T;
  readonly advantage: number;
}

/**
 * Groups rollouts by `groupId` and scores each group with `groupAdvantages` (steps 3 and 5 of docs/loop.md).
 * Cancelled stragglers are removed before the baseline is formed, so a group of K = 6 with two
 * cancelled members is scored as a group of K' = 4 (invariant 10). Output keeps the input order of the
 * non-cancelled rollouts.
 *
 * Example: group g = [R 1, R 0, cancelled R 0] → scored as [1, 0] → advantages [1, −1].
 */
export function groupRollouts<T extends RolloutOutcome>(rollouts: readonly T[], opts: AdvantageOptions): ScoredRollout<T>[] {
  const members = new Map<string, number[]>();
  rollouts.forEach((rollout, index) => {
    if (rollout.cancelled) return;
    const group = members.get(rollout.groupId);
    if (group) group.push(index);
    else members.set(rollout.groupId, [index]);
  });
  const advantageOf = new Map<number, number>();
  for (const [groupId, indices] of members) {
    const returns = indices.map((i) => rollouts[i].reward);
    let advantages: number[];
    try {
      advantages = groupAdvantages(returns, opts);
    } catch (err) {
      throw new TrainingError(`group ${groupId} has a non-finite return; check the environment's score()`, {
        cause: err,
        context: { groupId, returns },
      });
    }
    indices.forEach((rolloutIndex, k) => advantageOf.set(rolloutIndex, advantages[k]));
  }
  const scored: ScoredRollout<T>[] = [];
  rollouts.forEach((rollout, index) => {
    const advantage = advantageOf.get(index);
    if (advantage !== undefined) scored.push({ rollout, advantage });
  });
  return scored;
}

// ─────────────────────────────────────────────────────────────────────────────────────────────────────
// 6. Filter
// ─────────────────────────────────────────────────────────────────────────────────────────────────────

/**
 * Keeps the rollouts with |A| ≥ `threshold` (step 6 of docs/loop.md, paper: 0.01). This removes every member of an
 * all-equal group (A = 0 exactly), which would otherwise only dilute the minibatch. Order is kept.
 */
export function filterByAdvantage<T extends { readonly advantage: number }>(scored: readonly T[], threshold: number): T[] {
  if (!(threshold >= 0)) throw new TrainingError(`advantage filter threshold must be ≥ 0, got ${threshold}`);
  return scored.filter((s) => Math.abs(s.advantage) >= threshold);
}

// ─────────────────────────────────────────────────────────────────────────────────────────────────────
// 8. Minibatches
// ─────────────────────────────────────────────────────────────────────────────────────────────────────

/**
 * Minibatch plan for one iteration (step 8 of docs/loop.md): for each of `epochs` epochs, a fresh shuffle of the
 * rollout indices 0..n−1 (across tasks), cut into minibatches of `size`; the last one may be smaller.
 * `fullBatch` puts every rollout in one minibatch per epoch (on-policy RLOO / GRPO).
 * Shape: [epoch][minibatch][rollout index]. n = 0 gives epochs with no minibatches.
 */
export function planMinibatches(n: number, size: number, epochs: number, rng: Rng, fullBatch: boolean): number[][][] {
  if (!Number.isInteger(n) || n < 0) throw new TrainingError(`rollout count must be an integer ≥ 0, got ${n}`);
  if (!Number.isInteger(size) || size < 1) throw new TrainingError(`minibatch size must be an integer ≥ 1, got ${size}`);
  if (!Number.isInteger(epochs) || epochs < 1) throw new TrainingError(`epochs must be an integer ≥ 1, got ${epochs}`);
  const plan: number[][][] = [];
  for (let epoch = 0; epoch < epochs; epoch++) {
    const order = rng.shuffle(Array.from({ length: n }, (_, i) => i));
    const step = fullBatch ? Math.max(n, 1) : size;
    const minibatches: number[][] = [];
    for (let start = 0; start < n; start += step) minibatches.push(order.slice(start, start + step));
    plan.push(minibatches);
  }
  return plan;
}

/**
 * The fixed divisor of the loss (step 8 of docs/loop.md): the configured M, even for a smaller last minibatch, so a
 * half-full minibatch moves the weights about half as far. With `fullBatch` the one minibatch holds all
 * n rollouts and M = n, which makes the loss the batch mean of RLOO / GRPO.
 */
export function minibatchDivisor(minibatchSize: number, rolloutCount: number, fullBatch: boolean): number {
  return fullBatch ? Math.max(rolloutCount, 1) : minibatchSize;
}

/** Ratio clip bounds [lo, hi] of the objective. */
export interface ClipBounds {
  readonly lo: number;
  readonly hi: number;
}

/**
 * Clip bounds for ε (step 8 of docs/loop.md): hi = 1 + ε; lo = 1 − ε in the paper, 1/(1 + ε) in the reference code
 * (config `loop.clipLow`). ε = 0.1 → paper [0.9, 1.1], code [0.90909…, 1.1].
 */
export function clipBounds(epsilon: number, mode: 'paper' | 'code'): ClipBounds {
  if (!(epsilon > 0 && epsilon < 1)) throw new TrainingError(`clip ε must be in (0, 1), got ${epsilon}`);
  return { lo: mode === 'paper' ? 1 - epsilon : 1 / (1 + epsilon), hi: 1 + epsilon };
}

/** Importance-ratio granularity (config `loop.ratio`). */
export type RatioMode = 'token' | 'turn' | 'trajectory';

/**
 * One minibatch of B rollouts padded to T tokens, flattened row-major ([B·T] means index b·T + t).
 * `newLogProbs` is the only tensor and the only differentiable input.
 */
export interface LoopLossInputs {
  /** log p_θ(x_t) of the token at each position under the current weights: [B, T]. */
  readonly newLogProbs: tf.Tensor2D;
  /** log p_old(x_t) (recomputed at step 7): [B·T]; read only where `mask` = 1. */
  readonly oldLogProbs: Float32Array;
  /** 1 where the policy generated the token (a(x)), 0 for prompt, environment and padding: [B·T]. */
  readonly mask: Float32Array;
  /** Agent turn of each token, −1 for none: [B·T]. Read only for `ratio: 'turn'`, on output tokens. */
  readonly turnIds: Int32Array;
  /** A(x) of each rollout (step 5): [B]. */
  readonly advantages: Float32Array;
  /** The fixed M of step 8 (see `minibatchDivisor`). Ignored when `rowWeights` is given. */
  readonly divisor: number;
  /**
   * Per-row token weight w_b: [B]. When given, every output token of row b weighs w_b instead of
   * 1/(M·|a(x)|) — other aggregations of the same surrogate: Delethink's 1/(ℓ(τ)·N_traces) (a trace's
   * chunks are rows sharing ℓ(τ)), or a token mean 1/Σ|a(x)| (Mem-α).
   */
  readonly rowWeights?: Float32Array;
  /**
   * Dual clip c > 1 (Ye et al. 2020): for A < 0 the per-token term is max(min(r·A, clip(r)·A), c·A), so a
   * huge ratio on a negative-advantage token cannot produce an unbounded loss. Absent = off.
   */
  readonly dualClip?: number;
  /** Lower ratio bound (see `clipBounds`). */
  readonly clipLow: number;
  /** Upper ratio bound 1 + ε. */
  readonly clipHigh: number;
  /** `token` (LOOP), `turn` (one ratio per agent turn) or `trajectory` (one per rollout, bandit / RLOO). */
  readonly ratio: RatioMode;
  /** log p_ref(x_t) of a frozen reference policy: [B·T]. Required when `klCoef` > 0. */
  readonly refLogProbs?: Float32Array;
  /** Weight of the KL-to-reference penalty (GRPO); 0 or absent for LOOP. */
  readonly klCoef?: number;
  /**
   * Truncated importance weights min(p_old/p_sampler, C) per token for off-policy (stale) samples: [B·T].
   * Absent = 1 everywhere (synchronous training, where the sampler's policy is the old policy).
   */
  readonly importanceWeights?: Float32Array;
}

/**
 * Truncated importance weights w_t = min(exp(old_t − sampler_t), cap) on output tokens (1 elsewhere):
 * the correction for tokens sampled by an older policy version than the one the update starts from.
 * Example: old −1.0, sampler −1.5, cap 2 → min(e^0.5, 2) = 1.6487…; old −1, sampler −3 → min(e², 2) = 2.
 */
export function truncatedImportanceWeights(
  oldLogProbs: Float32Array,
  samplerLogProbs: Float32Array,
  mask: Float32Array,
  cap: number,
): Float32Array {
  if (!(cap >= 1)) throw new TrainingError(`importance weight cap must be ≥ 1, got ${cap}`);
  const out = new Float32Array(mask.length);
  for (let i = 0; i < mask.length; i++) out[i] = mask[i] > 0 ? Math.min(Math.exp(oldLogProbs[i] - samplerLogProbs[i]), cap) : 1;
  return out;
}

/**
 * Minibatch statistics, metric names of the `losses/` namespace. Every entry is a scalar tensor that
 * survives enclosing `tf.tidy` / `tf.variableGrads` scopes (it is `tf.keep`-ed); the caller disposes it.
 */
export type LoopLossStats = {
  /** The full loss (policy + klCoef · kl_ref), a copy of the returned loss. */
  readonly loss: tf.Scalar;
  /** The clipped-objective part alone. */
  readonly policy_loss: tf.Scalar;
  /** Share of output tokens whose ratio sits outside the bounds on the side that zeroes the gradient. */
  readonly clipfrac: tf.Scalar;
  /** Share of output tokens whose term is the dual clip's c·A (A < 0 and r > c); 0 without `dualClip`. */
  readonly dual_clip_fraction: tf.Scalar;
  /** Sequence-level KL estimate −mean_x Σ_{t∈a(x)} log r_t over rows with output tokens (step 9). */
  readonly approx_kl: tf.Scalar;
  /** Mean over output tokens of the ratio the objective used (per token, turn or trajectory). */
  readonly ratio_mean: tf.Scalar;
  /** Largest such ratio (0 when the minibatch has no output token). */
  readonly ratio_max: tf.Scalar;
  /** k3 estimate of KL(p_θ ‖ p_ref), aggregated like the objective; 0 without a reference. */
  readonly kl_ref: tf.Scalar;
};

/**
 * Log-ratios are clamped to ±this before exp so float32 never overflows (e^20 ≈ 5·10⁸). Beyond it the
 * gradient is 0 — the objective already ignores such tokens unless A and the ratio disagree by 10⁸×.
 */
const LOG_RATIO_LIMIT = 20;

/**
 * The clipped LOOP objective of one minibatch (step 8 of docs/loop.md), to be called inside `tf.variableGrads`:
 *
 *   L = −(1/M) Σ_x (1/|a(x)|) Σ_{t∈a(x)} min(r_t·A(x), clip(r_t, lo, hi)·A(x))  [+ klCoef · kl_ref]
 *
 * The ratio r_t depends on `ratio`:
 *   token       r_t = exp(log p_θ(x_t) − log p_old(x_t))                       (LOOP)
 *   turn        r_t = exp(Σ_{s∈a(x), turn(s)=turn(t)} log r_s) for every output token t of that turn
 *   trajectory  r_t = exp(Σ_{s∈a(x)} log r_s) for every output token of the rollout   (bandit / RLOO)
 * The 1/|a(x)| token aggregation is the same in all three, so they differ only in the ratio. With a
 * per-trajectory ratio every term of a rollout is equal and (1/|a|)·Σ_t cancels: L = −(1/M) Σ_x min(r_x A,
 * clip(r_x) A), whose gradient at r = 1 is RLOO's −(1/M) Σ_x A(x) ∇ log p_θ(x).
 *
 * Tokens with mask 0 contribute nothing and get exactly zero gradient, whatever their log-probs (even
 * −∞). A row without output tokens contributes 0. The KL penalty uses k3 = exp(d) − d − 1 with
 * d = log p_ref − log p_θ per output token, weighted by 1/(M·|a(x)|) like the objective.
 *
 * Returns the scalar loss (disposed by `tf.variableGrads`' caller as its `value`) and `LoopLossStats`
 * (kept; the caller disposes them). Memory: `turn` builds a [B, T, U] turn-membership tensor, U = the
 * most turns in one row.
 */
export function loopLoss(inputs: LoopLossInputs): { loss: tf.Scalar; stats: LoopLossStats } {
  const prepared = prepareLossInputs(inputs);
  const { rows, cols } = prepared;
  const result = tf.tidy(() => {
    const outputMask = tf.tensor2d(inputs.mask, [rows, cols]);
    const isOutput = tf.greater(outputMask, 0);
    const zeros = tf.zerosLike(inputs.newLogProbs);

    // 8a. Per-token log-ratio log r_t = log p_θ − log p_old on a(x); `where` (not a product with the mask)
    // keeps non-output positions at exactly 0 even if their log-probs are −∞, and routes no gradient there.
    const oldLogProbs = tf.tensor2d(inputs.oldLogProbs, [rows, cols]);
    const tokenLogRatio = tf.where(isOutput, tf.sub(inputs.newLogProbs, oldLogProbs), zeros);

    // 8b. The ratio's granularity: each output token gets the summed log-ratio of its turn / rollout.
    let appliedLogRatio: tf.Tensor; // [B, T]
    if (inputs.ratio === 'token') {
      appliedLogRatio = tokenLogRatio;
    } else if (inputs.ratio === 'trajectory') {
      appliedLogRatio = tf.mul(tf.sum(tokenLogRatio, 1, true), outputMask);
    } else {
      const membership = tf.tensor3d(prepared.turnMembership!, [rows, cols, prepared.turnSlots]); // [B, T, U]
      const perTurn = tf.sum(tf.mul(tf.reshape(tokenLogRatio, [rows, cols, 1]), membership), 1, true); // [B, 1, U]
      appliedLogRatio = tf.sum(tf.mul(membership, perTurn), 2); // [B, T]
    }
    const ratio = tf.exp(tf.clipByValue(appliedLogRatio, -LOG_RATIO_LIMIT, LOG_RATIO_LIMIT));

    // 8c. Clipped surrogate min(r·A, clip(r, lo, hi)·A) per token.
    const advantages = tf.tensor2d(inputs.advantages, [rows, 1]);
    const unclipped = tf.mul(ratio, advantages);
    const clipped = tf.mul(tf.clipByValue(ratio, inputs.clipLow, inputs.clipHigh), advantages);
    const pessimistic = tf.minimum(unclipped, clipped);
    const dualBound = inputs.dualClip === undefined ? undefined : tf.mul(advantages, inputs.dualClip); // c·A: [B, 1]
    const surrogate =
      dualBound === undefined
        ? pessimistic
        : tf.where(tf.tile(tf.less(advantages, 0), [1, cols]), tf.maximum(pessimistic, dualBound), pessimistic);

    // 8d. Aggregation: weight mask/(M·|a(x)|) per token, precomputed on the CPU. With stale samples
    // (rollout.maxStaleness > 0) each token's term is also weighted by the truncated importance weight
    // min(p_old / p_sampler, C), a constant, correcting for the older policy that generated it.
    const tokenWeights = tf.tensor2d(prepared.tokenWeights, [rows, cols]);
    const weightedSurrogate = inputs.importanceWeights ? tf.mul(surrogate, tf.tensor2d(inputs.importanceWeights, [rows, cols])) : surrogate;
    const policyLoss = tf.neg(tf.sum(tf.mul(weightedSurrogate, tokenWeights))) as tf.Scalar;

    // Optional KL penalty to a reference policy (GRPO), k3 estimator, same aggregation.
    let klRef: tf.Scalar = tf.scalar(0);
    let loss = policyLoss;
    const klCoef = inputs.klCoef ?? 0;
    if (inputs.refLogProbs !== undefined) {
      const refLogProbs = tf.tensor2d(inputs.refLogProbs, [rows, cols]);
      const refMinusNew = tf.clipByValue(
        tf.where(isOutput, tf.sub(refLogProbs, inputs.newLogProbs), zeros),
        -LOG_RATIO_LIMIT,
        LOG_RATIO_LIMIT,
      );
      const k3 = tf.sub(tf.sub(tf.exp(refMinusNew), refMinusNew), 1);
      klRef = tf.sum(tf.mul(k3, tokenWeights)) as tf.Scalar;
      if (klCoef > 0) loss = tf.add(policyLoss, tf.mul(klRef, klCoef)) as tf.Scalar;
    }

    // 9. Statistics. clipfrac counts tokens clipped on the gradient-zeroing side:
    // A > 0 with r > hi, or A < 0 with r < lo.
    const positive = tf.greater(advantages, 0);
    const negative = tf.less(advantages, 0);
    const clippedSide = tf.logicalAnd(
      isOutput,
      tf.logicalOr(tf.logicalAnd(positive, tf.greater(ratio, inputs.clipHigh)), tf.logicalAnd(negative, tf.less(ratio, inputs.clipLow))),
    );
    const outputCount = Math.max(prepared.outputTokenCount, 1);
    const stats: LoopLossStats = {
      loss: tf.clone(loss),
      policy_loss: tf.clone(policyLoss),
      clipfrac: tf.div(tf.sum(tf.cast(clippedSide, 'float32')), outputCount) as tf.Scalar,
      dual_clip_fraction:
        dualBound === undefined
          ? tf.scalar(0)
          : (tf.div(
              tf.sum(tf.cast(tf.logicalAnd(tf.logicalAnd(isOutput, negative), tf.greater(dualBound, pessimistic)), 'float32')),
              outputCount,
            ) as tf.Scalar),
      approx_kl: tf.div(tf.neg(tf.sum(tokenLogRatio)), Math.max(prepared.activeRowCount, 1)) as tf.Scalar,
      ratio_mean: tf.div(tf.sum(tf.mul(ratio, outputMask)), outputCount) as tf.Scalar,
      ratio_max: tf.max(tf.where(isOutput, ratio, zeros)) as tf.Scalar,
      kl_ref: klRef,
    };
    return { loss, stats };
  });
  for (const tensor of Object.values(result.stats)) tf.keep(tensor);
  return result;
}

/** CPU-side constants of one `loopLoss` call, after validating the inputs' shapes. */
interface PreparedLossInputs {
  readonly rows: number;
  readonly cols: number;
  /** mask / (M·|a(x)|) per token: [B·T]. */
  readonly tokenWeights: Float32Array;
  readonly outputTokenCount: number;
  /** Rows with at least one output token. */
  readonly activeRowCount: number;
  /** One-hot turn slot of each output token, [B·T·U]; only for `ratio: 'turn'`. */
  readonly turnMembership?: Float32Array;
  readonly turnSlots: number;
}

function prepareLossInputs(inputs: LoopLossInputs): PreparedLossInputs {
  const shape = inputs.newLogProbs.shape;
  if (shape.length !== 2) throw new TrainingError(`newLogProbs must be [B, T], got shape [${shape.join(', ')}]`);
  const [rows, cols] = shape;
  const size = rows * cols;
  const lengths: Record<string, [number, number]> = {
    oldLogProbs: [inputs.oldLogProbs.length, size],
    mask: [inputs.mask.length, size],
    turnIds: [inputs.turnIds.length, size],
    advantages: [inputs.advantages.length, rows],
  };
  if (inputs.refLogProbs !== undefined) lengths.refLogProbs = [inputs.refLogProbs.length, size];
  if (inputs.rowWeights !== undefined) lengths.rowWeights = [inputs.rowWeights.length, rows];
  if (inputs.importanceWeights !== undefined) lengths.importanceWeights = [inputs.importanceWeights.length, size];
  for (const [name, [actual, expected]] of Object.entries(lengths)) {
    if (actual !== expected) {
      throw new TrainingError(`loopLoss: ${name} has ${actual} entries, expected ${expected} for newLogProbs [${rows}, ${cols}]`, {
        context: { name, actual, expected },
      });
    }
  }
  if (inputs.rowWeights === undefined && !(inputs.divisor > 0))
    throw new TrainingError(`loopLoss: divisor M must be > 0, got ${inputs.divisor}`);
  if (inputs.rowWeights?.some((w) => !(w >= 0 && Number.isFinite(w))))
    throw new TrainingError('loopLoss: rowWeights must be finite and ≥ 0');
  if (inputs.dualClip !== undefined && !(inputs.dualClip > 1))
    throw new TrainingError(`loopLoss: dualClip must be > 1, got ${inputs.dualClip}`);
  if (!(inputs.clipLow > 0 && inputs.clipLow <= 1 && inputs.clipHigh >= 1)) {
    throw new TrainingError(`loopLoss: clip bounds must satisfy 0 < lo ≤ 1 ≤ hi, got [${inputs.clipLow}, ${inputs.clipHigh}]`);
  }
  const klCoef = inputs.klCoef ?? 0;
  if (!(klCoef >= 0)) throw new TrainingError(`loopLoss: klCoef must be ≥ 0, got ${klCoef}`);
  if (klCoef > 0 && inputs.refLogProbs === undefined) {
    throw new TrainingError('loopLoss: klCoef > 0 needs refLogProbs (log-probs of the reference policy)');
  }

  const tokenWeights = new Float32Array(size);
  let outputTokenCount = 0;
  let activeRowCount = 0;
  for (let b = 0; b < rows; b++) {
    let rowOutputs = 0;
    for (let t = 0; t < cols; t++) if (inputs.mask[b * cols + t] > 0) rowOutputs++;
    if (rowOutputs === 0) continue;
    outputTokenCount += rowOutputs;
    activeRowCount++;
    const weight = inputs.rowWeights ? inputs.rowWeights[b] : 1 / (inputs.divisor * rowOutputs);
    for (let t = 0; t < cols; t++) if (inputs.mask[b * cols + t] > 0) tokenWeights[b * cols + t] = weight;
  }

  if (inputs.ratio !== 'turn') return { rows, cols, tokenWeights, outputTokenCount, activeRowCount, turnSlots: 0 };

  // Map each row's turn ids to compact slots 0..U_b−1, then one-hot them into [B, T, U].
  const slotOf = new Int32Array(size).fill(-1);
  let turnSlots = 1;
  for (let b = 0; b < rows; b++) {
    const slots = new Map<number, number>();
    for (let t = 0; t < cols; t++) {
      const i = b * cols + t;
      if (!(inputs.mask[i] > 0)) continue;
      const turn = inputs.turnIds[i];
      if (turn < 0) {
        throw new TrainingError(
          `loopLoss: output token at row ${b}, position ${t} has turn id ${turn}; per-turn ratios need a turn ≥ 0 on every output token`,
        );
      }
      let slot = slots.get(turn);
      if (slot === undefined) {
        slot = slots.size;
        slots.set(turn, slot);
      }
      slotOf[i] = slot;
    }
    turnSlots = Math.max(turnSlots, slots.size);
  }
  const turnMembership = new Float32Array(size * turnSlots);
  for (let i = 0; i < size; i++) if (slotOf[i] >= 0) turnMembership[i * turnSlots + slotOf[i]] = 1;
  return { rows, cols, tokenWeights, outputTokenCount, activeRowCount, turnMembership, turnSlots };
}

// ─────────────────────────────────────────────────────────────────────────────────────────────────────
// 9. Abort check
// ─────────────────────────────────────────────────────────────────────────────────────────────────────

/**
 * True when the rest of the iteration's updates should be skipped (step 9 of docs/loop.md): the loss is not finite,
 * the KL estimate is NaN, or the sequence-level KL estimate −mean_x Σ log r_t exceeds `maxKl` (paper: 20).
 */
export function shouldAbort(loss: number, approxKl: number, maxKl: number): boolean {
  return !Number.isFinite(loss) || Number.isNaN(approxKl) || approxKl > maxKl;
}
