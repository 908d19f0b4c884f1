/**
 * The Delethink objective (Aghajohari et al. 2025, "The Markovian Thinker", arXiv 2510.06557;
 * docs/delethink.md, "The objective"), in the paper's order:
 *
 *   G traces per query; A_g = (R_g − mean R)/(std R + 1e-6), unbiased std    → `grpoAdvantages`,
 *                                                                               `groupTraceAdvantages`
 *   A_g broadcast to every output token of every chunk of trace g             → one row per chunk
 *                                                                               (`Trajectory.segments`),
 *                                                                               each row carries A_g
 *   each chunk is a training row; only its response tokens are trained       → `mask` (carryover = prompt)
 *   per-token PPO clip ε_low = 0.2, ε_high = 0.26 ("clip-higher")             → `delethinkLoss` (1)
 *   dual clip c = 3 for A < 0                                                 → `delethinkLoss` (2)
 *   truncated importance sampling, × min(p_old / p_rollout, 2), a constant    → `delethinkLoss` (3),
 *                                                                               `truncatedImportanceWeights`
 *   J = (1/N_traces) Σ_traces (1/ℓ(τ)) Σ_chunks Σ_tokens, ℓ(τ) = Σ_l |y_l|    → `traceWeights`, (4)
 *   no KL term, no entropy bonus                                              → (nothing)
 *   2 optimizer steps per RL step (minibatches of whole traces)               → `traceMinibatches`
 *   LongCoT: the same objective on one-chunk traces (= per-sequence token mean) → the same functions
 *   test-time scaling: right-trim each trace to a budget, then score          → `trimTraceToBudget`,
 *                                                                               `accuracyByBudget`
 *
 * The objective is LOOP's surrogate (`trainer/algorithms/loop.ts`) with other settings, not a second
 * implementation: GRPO advantages are `groupAdvantages` with a group-mean baseline and std normalisation,
 * the loss is `loopLoss` with per-token ratios, row weights 1/(ℓ(τ)·N), a dual clip and constant TIS
 * weights, and whole-trace minibatches are `planMinibatches` over traces. The learner's `trace-length`
 * aggregation (`trainer/batch.ts` `aggregationWeights`) is `traceWeights`. This file names the paper's
 * terms and checks the paper's parameters.
 *
 * Everything here is pure: plain arrays in, plain arrays or tensors out; the learner owns the model.
 * Array layouts follow `trainer/batch.ts` (`packRows`): B rows right-padded to T, flattened [B·T].
 */
import * as tf from '@tensorflow/tfjs-core';
import { TrainingError } from '../../core/errors.js';
import type { Rng } from '../../core/rng.js';
// Gradients of the kernels used by the loss (tfjs-core alone registers none).
import '../../models/gradients.js';
import { finalWindowTokens, type DelethinkTracing } from '../../rollout/delethink.js';
import type { Segment } from '../../rollout/trajectory.js';
import { groupAdvantages, groupRollouts, loopLoss, planMinibatches, truncatedImportanceWeights, type AdvantageOptions } from './loop.js';

/**
 * (3) w_t = min(exp(log p_old − log p_rollout), cap) on output tokens, 1 elsewhere (LOOP's off-policy
 * correction, always on here): corrects for the sampler's numerics and policy version differing from the
 * learner's. Example: old −1, rollout −1.5, cap 2 → e^0.5 = 1.6487; old −1, rollout −3 → min(e², 2) = 2.
 */
export { truncatedImportanceWeights };

/** The paper's objective constants (config knobs `loop.clipEpsilon` / `clipHighEpsilon` / `dualClip`, TIS cap). */
export const DELETHINK_OBJECTIVE_DEFAULTS = Object.freeze({ clipLow: 0.2, clipHigh: 0.26, dualClip: 3, tisCap: 2 });

// ─────────────────────────────────────────────────────────────────────────────────────────────────────
// Advantages (GRPO), broadcast over the chunks of a trace
// ─────────────────────────────────────────────────────────────────────────────────────────────────────

/** GRPO as a setting of `groupAdvantages`: baseline = group mean, divided by (unbiased std + 1e-6). */
const GRPO: AdvantageOptions = Object.freeze({ baseline: 'group-mean', normalize: 'std' });

/**
 * GRPO advantages of one group of G traces of the same query: A_g = (R_g − mean R)/(std R + 1e-6) with
 * the unbiased (Bessel-corrected) std (`groupAdvantages` with `GRPO`). They sum to 0 (invariant 5). An
 * all-equal group gives exactly 0 for every trace; a group of one trace has no baseline and gets 0; a
 * non-finite return is a `TrainingError`.
 * Example: [1, 0, 0, 0] → mean 0.25, std 0.5 → [1.5, −0.5, −0.5, −0.5] (÷ (1 + 2e-6)).
 */
export function grpoAdvantages(returns: readonly number[]): number[] {
  return groupAdvantages(returns, GRPO);
}

/**
 * GRPO advantages of many traces at once, grouped by `groupId` (one group per query, `groupRollouts`);
 * output in input order. Every chunk row of trace g then carries advantages[g] (invariant 5: all tokens
 * of a trace share A).
 */
export function groupTraceAdvantages(traces: readonly { readonly groupId: string; readonly reward: number }[]): number[] {
  const outcomes = traces.map(({ groupId, reward }) => ({ groupId, reward, cancelled: false }));
  return groupRollouts(outcomes, GRPO).map((scored) => scored.advantage);
}

// ─────────────────────────────────────────────────────────────────────────────────────────────────────
// Aggregation by trace length (invariant 6)
// ─────────────────────────────────────────────────────────────────────────────────────────────────────

/** A chunk row as the aggregation sees it: which trace it belongs to and how many trained tokens it has. */
export interface ChunkRowSize {
  /** Trace id (the rollout id); rows of one trace share it. */
  readonly trace: string;
  /** |y_l|: output tokens of the row (mask = 1). */
  readonly outputTokens: number;
}

/**
 * The token weight of each chunk row: w = 1/(ℓ(τ)·N), ℓ(τ) = Σ of `outputTokens` over the rows of the
 * same trace in `rows`, N = `traceCount` (default: the number of distinct traces in `rows`). Every output
 * token of a trace then has the same weight whatever the chunking, and a trace's weights sum to 1/N
 * (invariant 6); a one-chunk trace gets 1/(|y|·N), the LongCoT per-sequence token mean. Rows without
 * output tokens get 0; no rows give []. Compute it over all rows of the traces involved (e.g. the whole
 * iteration) and pass N = traces per minibatch as a fixed divisor, or over one minibatch of whole traces
 * with the default N (the learner's `trace-length` aggregation, `aggregationWeights` in trainer/batch.ts).
 * Example: trace a has rows of 3 and 1 output tokens, trace b one row of 2 → [1/8, 1/8, 1/4].
 */
export function traceWeights(rows: readonly ChunkRowSize[], traceCount?: number): Float32Array {
  const lengths = new Map<string, number>();
  for (const row of rows) {
    if (!Number.isInteger(row.outputTokens) || row.outputTokens < 0) {
      throw new TrainingError(`traceWeights: outputTokens must be an integer ≥ 0, got ${row.outputTokens} (trace ${row.trace})`);
    }
    lengths.set(row.trace, (lengths.get(row.trace) ?? 0) + row.outputTokens);
  }
  if (traceCount !== undefined && !(traceCount > 0))
    throw new TrainingError(`traceWeights: the trace count N must be > 0, got ${traceCount}`);
  const N = traceCount ?? lengths.size;
  return Float32Array.from(rows, (row) => (row.outputTokens > 0 ? 1 / (lengths.get(row.trace)! * N) : 0));
}

/**
 * Minibatches of whole traces (so each trace's ℓ(τ) and weight are complete in one minibatch):
 * `planMinibatches` over the distinct trace ids of `rowTraces` (row i belongs to trace rowTraces[i]) —
 * per epoch a fresh shuffle of the traces cut into groups of `tracesPerMinibatch` — with each minibatch
 * listing the row indices of its traces in row order. The paper's 2 optimizer steps per RL step = one
 * epoch with tracesPerMinibatch = half the traces. Shape: [epoch][minibatch][row index].
 */
export function traceMinibatches(rowTraces: readonly string[], tracesPerMinibatch: number, epochs: number, rng: Rng): number[][][] {
  const rowsOfTrace = new Map<string, number[]>();
  rowTraces.forEach((trace, i) => {
    const rows = rowsOfTrace.get(trace);
    if (rows) rows.push(i);
    else rowsOfTrace.set(trace, [i]);
  });
  const traces = [...rowsOfTrace.values()];
  return planMinibatches(traces.length, tracesPerMinibatch, epochs, rng, false).map((epoch) =>
    epoch.map((minibatch) => minibatch.flatMap((trace) => traces[trace]).sort((a, b) => a - b)),
  );
}

// ─────────────────────────────────────────────────────────────────────────────────────────────────────
// The loss
// ─────────────────────────────────────────────────────────────────────────────────────────────────────

/**
 * One minibatch of B chunk rows padded to T tokens, flattened row-major ([B·T] = index b·T + t).
 * `newLogProbs` is the only tensor and the only differentiable input.
 */
export interface DelethinkLossInputs {
  /** log p_θ of each token under the current weights: [B, T]. */
  readonly newLogProbs: tf.Tensor2D;
  /** log p_old (the learner's recomputation before the update): [B·T]; read where `mask` = 1. */
  readonly oldLogProbs: Float32Array;
  /** log p_rollout, the sampler's log-probs when the tokens were generated: [B·T]; read where `mask` = 1. */
  readonly samplerLogProbs: Float32Array;
  /** 1 on the chunk's response tokens y_l, 0 on its prompt (query, head, carryover) and padding: [B·T]. */
  readonly mask: Float32Array;
  /** A of the trace each row belongs to: [B]. */
  readonly advantages: Float32Array;
  /** Token weight of each row, 1/(ℓ(τ)·N) (`traceWeights`): [B]. */
  readonly rowWeights: Float32Array;
  /** ε_low: the ratio is clipped below at 1 − ε_low (paper 0.2). */
  readonly clipLow: number;
  /** ε_high: the ratio is clipped above at 1 + ε_high (paper 0.26, "clip-higher"). */
  readonly clipHigh: number;
  /** c > 1: for A < 0 a token's objective is at least c·A (paper 3). */
  readonly dualClip: number;
  /** Cap of the truncated importance weight min(p_old / p_rollout, cap) (paper 2; Infinity = untruncated). */
  readonly tisCap: number;
}

/**
 * Minibatch statistics (names of the `losses/` namespace). Each is a scalar tensor kept alive outside
 * enclosing `tf.tidy` / `tf.variableGrads` scopes; the caller disposes them. All shares and means are
 * over output tokens (0 when there are none).
 */
export type DelethinkLossStats = {
  /** A copy of the returned loss. */
  readonly policy_loss: tf.Scalar;
  /** Share of output tokens where the PPO clip is active on the side that zeroes the gradient (A>0, r>1+ε_h or A<0, r<1−ε_l): `loopLoss`'s clipfrac. */
  readonly clip_fraction: tf.Scalar;
  /** Share of output tokens where the dual clip c·A is the objective (A < 0 and r > c). */
  readonly dual_clip_fraction: tf.Scalar;
  /** Mean over output tokens of log p_old − log p_θ (verl's `ppo_kl`, a per-token k1 estimate). */
  readonly approx_kl: tf.Scalar;
  /** Mean and largest ratio r = p_θ / p_old over output tokens. */
  readonly ratio_mean: tf.Scalar;
  readonly ratio_max: tf.Scalar;
  /** Mean truncated importance weight over output tokens, and the share of tokens at the cap. */
  readonly tis_mean: tf.Scalar;
  readonly tis_capped_fraction: tf.Scalar;
};

/**
 * The Delethink loss of one minibatch, to be called inside `tf.variableGrads`. Per output token t of row b
 * (trace τ(b)), with r_t = exp(log p_θ − log p_old) and A = advantages[b]:
 *
 *   (1) s_t  = min(r_t·A, clip(r_t, 1 − ε_low, 1 + ε_high)·A)            per-token PPO, clip-higher
 *   (2) s_t  = max(s_t, c·A)   when A < 0                                dual clip
 *   (3) w_t  = min(exp(log p_old − log p_rollout), cap)                  TIS weight, a constant (no gradient)
 *   (4) L    = −Σ_b rowWeights[b] · Σ_t mask_t · w_t · s_t               aggregation by trace length
 *
 * computed by `loopLoss` with ratio `token`, bounds [1 − ε_low, 1 + ε_high], `dualClip` c, `rowWeights`
 * and `importanceWeights` = (3). With rowWeights = 1/(ℓ(τ)·N) this is −J of the spec; a trace's loss (and
 * gradient) is the same however its tokens are cut into chunks (invariant 6), and one-chunk traces give
 * the LongCoT per-sequence mean. Masked positions contribute nothing and get exactly zero gradient, even
 * with −∞ log-probs.
 * Golden example (one token, A = −1, c = 3): r = 4 → s = max(−4, −3) = −3, gradient 0 (dual clip);
 * r = 2 → s = −2, ∂s/∂log p_θ = −2. With old − rollout = ln 3 and cap 2, w = 2.
 */
export function delethinkLoss(inputs: DelethinkLossInputs): { loss: tf.Scalar; stats: DelethinkLossStats } {
  checkObjectiveInputs(inputs);
  const importanceWeights = truncatedImportanceWeights(inputs.oldLogProbs, inputs.samplerLogProbs, inputs.mask, inputs.tisCap);
  const { loss, stats } = loopLoss({
    newLogProbs: inputs.newLogProbs,
    oldLogProbs: inputs.oldLogProbs,
    mask: inputs.mask,
    turnIds: new Int32Array(inputs.newLogProbs.size).fill(-1), // read only by per-turn ratios
    advantages: inputs.advantages,
    divisor: 1, // unused: rowWeights set every token's weight
    rowWeights: inputs.rowWeights,
    dualClip: inputs.dualClip,
    clipLow: 1 - inputs.clipLow,
    clipHigh: 1 + inputs.clipHigh,
    ratio: 'token',
    importanceWeights,
  });

  // loopLoss's approx_kl is per row (−Σ log r / rows with output); the per-token mean rescales it by
  // rows / tokens. The TIS statistics read the constant weights on the CPU.
  let outputTokens = 0;
  let activeRows = 0;
  let tisSum = 0;
  let tisCapped = 0;
  const cols = inputs.newLogProbs.shape[1];
  const cap = Math.fround(inputs.tisCap); // the weights are float32: a cap like 1.3 is stored rounded
  for (let b = 0; b < inputs.advantages.length; b++) {
    let rowOutputs = 0;
    for (let i = b * cols; i < (b + 1) * cols; i++) {
      if (!(inputs.mask[i] > 0)) continue;
      rowOutputs++;
      tisSum += importanceWeights[i];
      if (importanceWeights[i] >= cap) tisCapped++;
    }
    outputTokens += rowOutputs;
    if (rowOutputs > 0) activeRows++;
  }
  const tokens = Math.max(outputTokens, 1);
  const derived = tf.tidy(() => ({
    approx_kl: tf.mul(stats.approx_kl, Math.max(activeRows, 1) / tokens) as tf.Scalar,
    tis_mean: tf.scalar(tisSum / tokens),
    tis_capped_fraction: tf.scalar(tisCapped / tokens),
  }));
  const delethinkStats: DelethinkLossStats = {
    policy_loss: stats.policy_loss,
    clip_fraction: stats.clipfrac,
    dual_clip_fraction: stats.dual_clip_fraction,
    ratio_mean: stats.ratio_mean,
    ratio_max: stats.ratio_max,
    ...derived,
  };
  tf.dispose([stats.loss, stats.approx_kl, stats.kl_ref]);
  for (const tensor of Object.values(delethinkStats)) tf.keep(tensor);
  return { loss, stats: delethinkStats };
}

/** The paper's parameters, in its terms; array shapes are checked by `loopLoss`. */
function checkObjectiveInputs(inputs: DelethinkLossInputs): void {
  const size = inputs.newLogProbs.size;
  if (inputs.samplerLogProbs.length !== size) {
    throw new TrainingError(
      `delethinkLoss: samplerLogProbs has ${inputs.samplerLogProbs.length} entries, expected ${size} for newLogProbs [${inputs.newLogProbs.shape.join(', ')}]`,
    );
  }
  if (!(inputs.clipLow >= 0 && inputs.clipLow < 1))
    throw new TrainingError(`delethinkLoss: clipLow ε_low must be in [0, 1), got ${inputs.clipLow}`);
  if (!(inputs.clipHigh >= 0)) throw new TrainingError(`delethinkLoss: clipHigh ε_high must be ≥ 0, got ${inputs.clipHigh}`);
  if (!(inputs.dualClip > 1)) throw new TrainingError(`delethinkLoss: dualClip c must be > 1, got ${inputs.dualClip}`);
  if (!(inputs.tisCap >= 1)) throw new TrainingError(`delethinkLoss: tisCap must be ≥ 1, got ${inputs.tisCap}`);
  for (const w of inputs.rowWeights)
    if (!(w >= 0 && Number.isFinite(w))) throw new TrainingError(`delethinkLoss: row weights must be finite and ≥ 0, got ${w}`);
}

// ─────────────────────────────────────────────────────────────────────────────────────────────────────
// Test-time scaling: accuracy against the thinking budget (spec "Tracing", step 6)
// ─────────────────────────────────────────────────────────────────────────────────────────────────────

/** A trace's chunk responses y_1 … y_L (sampled tokens, stop token included). */
export type ChunkResponses = readonly (readonly number[])[];

/** A trace right-trimmed to a budget. */
export interface TrimmedTrace {
  /** The responses that survive, the last one possibly cut. */
  readonly responses: number[][];
  /** Σ |responses| ≤ budget. */
  readonly thinkingTokens: number;
  /** True when tokens were dropped. */
  readonly trimmed: boolean;
}

/**
 * Right-trim a trace to `budget` thinking tokens: keep whole chunks while they fit, cut the chunk where
 * the budget runs out, drop the rest. The answer is then read from the last surviving chunk (its
 * carryover and trimmed response, `finalWindowTokens`), so a trace cut before (or inside) its answer
 * scores 0. Example: responses of 4, 2, 2 tokens, budget 5 → [4, 1].
 */
export function trimTraceToBudget(chunks: ChunkResponses, budget: number): TrimmedTrace {
  if (!Number.isInteger(budget) || budget < 1) throw new TrainingError(`thinking budget must be an integer ≥ 1, got ${budget}`);
  const responses: number[][] = [];
  let used = 0;
  let total = 0;
  for (const chunk of chunks) {
    total += chunk.length;
    const room = budget - used;
    if (room <= 0) continue;
    const kept = chunk.slice(0, room);
    if (kept.length > 0) responses.push([...kept]);
    used += kept.length;
  }
  return { responses, thinkingTokens: used, trimmed: total > used };
}

/**
 * The chunk responses of a Delethink trajectory's segments (`rollout/delethink.ts` `chunkSegments`:
 * response tokens are the ones with turn ≥ 0, the stop token included whether trained or not).
 */
export function segmentResponses(segments: readonly Segment[]): number[][] {
  return segments.map((segment) => segment.tokens.filter((_, i) => segment.turn[i] >= 0));
}

/** Accuracy of a set of traces at one budget. */
export interface BudgetAccuracy {
  readonly budget: number;
  /** Mean score over the traces (scores are 0/1 for the built-in verifiers). */
  readonly accuracy: number;
  readonly traces: number;
  /** Mean thinking tokens after trimming. */
  readonly meanThinkingTokens: number;
  /** Share of traces the budget cut. */
  readonly trimmedShare: number;
}

/**
 * Accuracy against thinking budget (docs/delethink.md, "Tracing"): for every budget, trim every trace
 * (`trimTraceToBudget`) and score the window of its last surviving chunk — `finalWindowTokens` under the
 * `tracing` that produced the traces (its carryover and trimmed response; the response alone for LongCoT)
 * — with `score(window, traceIndex, budget)`, typically: decode and verify the final answer
 * (`rewards/answer.ts`), or a fresh env's `step` + `score`. Budgets are reported in the order given.
 */
export async function accuracyByBudget(
  traces: readonly ChunkResponses[],
  budgets: readonly number[],
  tracing: DelethinkTracing,
  score: (window: readonly number[], traceIndex: number, budget: number) => number | Promise<number>,
): Promise<BudgetAccuracy[]> {
  const out: BudgetAccuracy[] = [];
  for (const budget of budgets) {
    let total = 0;
    let thinking = 0;
    let trimmed = 0;
    for (let i = 0; i < traces.length; i++) {
      const trace = trimTraceToBudget(traces[i], budget);
      total += await score(
        finalWindowTokens(
          trace.responses.map((response) => ({ response })),
          tracing,
        ),
        i,
        budget,
      );
      thinking += trace.thinkingTokens;
      if (trace.trimmed) trimmed++;
    }
    const n = Math.max(traces.length, 1);
    out.push({ budget, accuracy: total / n, traces: traces.length, meanThinkingTokens: thinking / n, trimmedShare: trimmed / n });
  }
  return out;
}
