/**
 * Turning collected trajectories into training rows and padded minibatch arrays.
 * A row is one segment (LOOP: one per rollout); the advantage of a rollout applies to all its rows.
 */
import { PAD_ID as PAD } from '../models/tokenizer.js';
import type { TokenBatch } from '../models/transformer.js';
import type { Segment, Trajectory } from '../rollout/trajectory.js';

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
