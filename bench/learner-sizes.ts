/**
 * The learner benchmarks' models and minibatch (bench/learner.ts on tfjs, bench/engine-learner.ts on the
 * engine; the same table as the PyTorch reference bench/reference/learner_step.py).
 */
import { Rng } from '../core/rng.js';
import { resolvePolicyConfig, type ResolvedPolicyConfig } from '../models/transformer.js';

/** Model sizes and the minibatch each is measured at. */
export const LEARNER_SIZES = {
  tiny: { dModel: 64, nLayers: 2, nHeads: 4, batch: 32, seqLen: 128 },
  small: { dModel: 256, nLayers: 4, nHeads: 4, batch: 16, seqLen: 256 },
  medium: { dModel: 512, nLayers: 8, nHeads: 8, batch: 16, seqLen: 256 },
  large: { dModel: 1024, nLayers: 12, nHeads: 16, batch: 8, seqLen: 512 },
} as const;

export type LearnerSize = (typeof LEARNER_SIZES)[keyof typeof LEARNER_SIZES];

/** The benchmark model of a size: byte vocabulary (260), no biases, tied embeddings. */
export function learnerBenchConfig(size: LearnerSize): ResolvedPolicyConfig {
  return resolvePolicyConfig({
    dModel: size.dModel,
    nLayers: size.nLayers,
    nHeads: size.nHeads,
    maxSeqLen: size.seqLen,
    ropeTheta: 10000,
    normEps: 1e-5,
    qkvBias: false,
    initStd: 0.02,
    vocabSize: 260,
  });
}

/**
 * The synthetic minibatch: random bytes, the second half of every row "policy output" (one turn), as in
 * a multi-turn episode; advantages ±0.5 by row.
 */
export function syntheticMinibatch(size: LearnerSize) {
  const { batch, seqLen } = size;
  const rng = new Rng(7);
  const output = (i: number) => i % seqLen >= seqLen / 2;
  return {
    tokens: Int32Array.from({ length: batch * seqLen }, () => rng.int(256)),
    mask: Float32Array.from({ length: batch * seqLen }, (_, i) => (output(i) ? 1 : 0)),
    turnIds: Int32Array.from({ length: batch * seqLen }, (_, i) => (output(i) ? 0 : -1)),
    advantages: Float32Array.from({ length: batch }, (_, b) => (b % 2 ? 0.5 : -0.5)),
  };
}
