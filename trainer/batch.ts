/**
 * Turning collected trajectories into training rows and padded minibatch arrays.
 * A row is one segment (LOOP: one per rollout); the advantage of a rollout applies to all its rows.
 */
import { PAD_ID as PAD } from '../models/tokenizer.js';
import type { TokenBatch } from '../models/transformer.js';
import type { Segment, Trajectory } from '../rollout/trajectory.js';
import { traceWeights } from './algorithms/delethink.js';

/** One training row: a segment and the advantage of the rollout it belongs to. */
export interface TrainingRow {
  readonly rolloutId: string;
  readonly segment: Segment;
  readonly advantage: number;
  readonly policyVersion: number;
}

/** Right-padded arrays of a set of rows: every per-token array is [B·T]. */
export interface PackedRows {
  readonly batch: TokenBatch;
  /** 1 at policy output tokens, else 0. */
  readonly mask: Float32Array;
  /** Agent turn per token (−1 for padding and pre-turn tokens). */
  readonly turnIds: Int32Array;
  /** Sampler log-probs (0 off the mask). */
  readonly samplerLogProbs: Float32Array;
  /** [B] advantages. */
  readonly advantages: Float32Array;
}

/** Pack `rows[indices]` right-padded to the longest of them. */
export function packRows(rows: readonly TrainingRow[], indices: readonly number[]): PackedRows {
  const seqLen = Math.max(2, ...indices.map((i) => rows[i].segment.tokens.length));
  const B = indices.length;
  const tokens = new Int32Array(B * seqLen).fill(PAD);
  const mask = new Float32Array(B * seqLen);
  const turnIds = new Int32Array(B * seqLen).fill(-1);
  const samplerLogProbs = new Float32Array(B * seqLen);
  const advantages = new Float32Array(B);
  indices.forEach((rowIndex, b) => {
    const { segment, advantage } = rows[rowIndex];
    const base = b * seqLen;
    for (let t = 0; t < segment.tokens.length; t++) {
      tokens[base + t] = segment.tokens[t];
      mask[base + t] = segment.isOutput[t];
      turnIds[base + t] = segment.turn[t];
      samplerLogProbs[base + t] = segment.isOutput[t] ? segment.logProbs[t] : 0;
    }
    advantages[b] = advantage;
  });
  return { batch: { tokens, batchSize: B, seqLen }, mask, turnIds, samplerLogProbs, advantages };
}

/** Training rows of trajectories with their advantages (same order). */
export function rowsOf(trajectories: readonly Trajectory[], advantages: readonly number[]): TrainingRow[] {
  return trajectories.flatMap((t, i) =>
    t.segments.map((segment) => ({ rolloutId: t.rolloutId, segment, advantage: advantages[i], policyVersion: t.policyVersion })),
  );
}

/** Chunk `n` row indices into slices of at most `size` (for no-grad passes). */
export function chunks(n: number, size: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < n; i += size) out.push(Array.from({ length: Math.min(size, n - i) }, (_, j) => i + j));
  return out;
}

/** How a minibatch's token terms are weighted (config `loop.aggregation`). */
export type Aggregation = 'fixed-divisor' | 'trace-length' | 'token-mean';

/**
 * Per-row token weights of one minibatch for `trace-length` and `token-mean` (`fixed-divisor` is
 * `loopLoss`'s own 1/(M·|a(x)|) and returns undefined). Rows sharing a `rolloutId` are the chunks of one
 * trace and are always in the same minibatch.
 *   trace-length: w = 1/(ℓ(τ)·N), ℓ(τ) = output tokens over all chunks of the trace, N = traces in the
 *                 minibatch (docs/delethink.md, "The objective"): a trace weighs the same however it is chunked.
 *                 This is Delethink's `traceWeights` over the minibatch's rows.
 *   token-mean:   w = 1/Σ output tokens of the minibatch (every token weighs the same).
 * Rows without output tokens get 0. Example: traces a (chunks of 3 and 1 output tokens) and b (2):
 * trace-length → a's rows 1/(4·2) = 0.125, b's row 1/(2·2) = 0.25; token-mean → 1/6 each.
 */
export function aggregationWeights(
  rows: readonly TrainingRow[],
  indices: readonly number[],
  aggregation: Aggregation,
): Float32Array | undefined {
  if (aggregation === 'fixed-divisor') return undefined;
  const outputs = indices.map((i) => rows[i].segment.isOutput.reduce<number>((a, m) => a + m, 0));
  if (aggregation === 'token-mean') {
    const total = outputs.reduce((a, b) => a + b, 0);
    return Float32Array.from(outputs, (n) => (n > 0 ? 1 / total : 0));
  }
  return traceWeights(indices.map((i, k) => ({ trace: rows[i].rolloutId, outputTokens: outputs[k] })));
}

/** Row indices grouped by `rolloutId` in first-seen order: the units minibatches are planned over. */
export function unitsOf(rows: readonly TrainingRow[]): number[][] {
  const units = new Map<string, number[]>();
  rows.forEach((r, i) => {
    const unit = units.get(r.rolloutId);
    if (unit) unit.push(i);
    else units.set(r.rolloutId, [i]);
  });
  return [...units.values()];
}
