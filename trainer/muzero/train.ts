/**
 * One MuZero learner update: sample → loss over the unroll (loss.ts) → gradients → optional global-norm
 * clip → AdamW (trainer/optim/adamw.ts, decoupled decay 0: the L2 term is in the loss, as in MuZero) →
 * new priorities |v⁰ − z_t| for the sampled positions.
 */
import * as tf from '@tensorflow/tfjs-core';
import { TrainingError } from '../../core/errors.js';
import { MuZeroTrainOptionsSchema, type MuZeroTrainOptions } from '../../configs/muzero.js';
import type { MuZeroNetworks } from '../../models/muzero/networks.js';
import { AdamW, clipGlobalNorm } from '../optim/adamw.js';
import { muzeroLoss, type MuZeroLossOptions } from './loss.js';
import type { UnrollBatch } from './replay.js';
import { trimGpuBufferPool } from '../../models/backend.js';

/** Declared in configs/muzero.ts, with the run config that embeds it. */
export { MuZeroTrainOptionsSchema, type MuZeroTrainOptions };

/** Adam over every network variable (decoupled weight decay 0; the loss carries the L2 penalty). */
export function createMuZeroOptimizer(
  networks: MuZeroNetworks,
  options: Pick<MuZeroTrainOptions, 'learningRate' | 'beta1' | 'beta2' | 'eps'>,
): AdamW {
  return new AdamW(networks.variables, {
    lr: options.learningRate,
    beta1: options.beta1,
    beta2: options.beta2,
    eps: options.eps,
    weightDecay: 0,
  });
}

/** What one update reports. */
export interface MuZeroStepStats {
  readonly loss: number;
  readonly policyLoss: number;
  readonly valueLoss: number;
  readonly rewardLoss: number;
  readonly l2Loss: number;
  /** Global gradient norm before clipping. */
  readonly gradNorm: number;
  /** [B] |v⁰ − z_t| per sample: the new replay priorities (before ε and α). */
  readonly priorities: Float32Array;
}

/**
 * Apply one update to `networks` from `batch`. Throws TrainingError on a non-finite loss or gradient
 * (nothing is applied then).
 */
export async function muzeroTrainStep(
  networks: MuZeroNetworks,
  optimizer: AdamW,
  batch: UnrollBatch,
  options: MuZeroLossOptions & { gradClip?: number },
): Promise<MuZeroStepStats> {
  let kept: Omit<ReturnType<typeof muzeroLoss>, 'loss'> | undefined;
  const { value, grads } = tf.variableGrads(() => {
    const out = muzeroLoss(networks, batch, options);
    kept = {
      policyLoss: tf.keep(out.policyLoss),
      valueLoss: tf.keep(out.valueLoss),
      rewardLoss: tf.keep(out.rewardLoss),
      l2Loss: tf.keep(out.l2Loss),
      initialValueTransformed: tf.keep(out.initialValueTransformed),
    };
    return out.loss;
  }, networks.variables);
  const parts = kept as NonNullable<typeof kept>;
  const clipped = options.gradClip !== undefined ? await clipGlobalNorm(grads, options.gradClip) : { grads, norm: await globalNorm(grads) };
  const [loss, policyLoss, valueLoss, rewardLoss, l2Loss] = await Promise.all(
    [value, parts.policyLoss, parts.valueLoss, parts.rewardLoss, parts.l2Loss].map(async (t) => (await t.data())[0]),
  );
  const values = (await parts.initialValueTransformed.data()) as Float32Array;
  const release = () => {
    tf.dispose([value, parts.policyLoss, parts.valueLoss, parts.rewardLoss, parts.l2Loss, parts.initialValueTransformed]);
    tf.dispose(Object.values(grads));
    if (clipped.grads !== grads) tf.dispose(Object.values(clipped.grads));
  };
  if (!Number.isFinite(loss) || !Number.isFinite(clipped.norm)) {
    release();
    throw new TrainingError(
      `MuZero update diverged: loss ${loss}, gradient norm ${clipped.norm}; lower muzero.train.learningRate or set gradClip`,
      {
        context: { loss, gradNorm: clipped.norm },
      },
    );
  }
  optimizer.step(clipped.grads);
  release();
  trimGpuBufferPool();
  const B = batch.batchSize;
  const priorities = new Float32Array(B);
  for (let b = 0; b < B; b++) priorities[b] = Math.abs(networks.support.fromTransformed(values[b]) - batch.valueTargets[b]);
  return { loss, policyLoss, valueLoss, rewardLoss, l2Loss, gradNorm: clipped.norm, priorities };
}

/** √(Σ_i Σ g_i²) over all gradients, read back as a number. */
async function globalNorm(grads: Record<string, tf.Tensor>): Promise<number> {
  const norm = tf.tidy(() => tf.sqrt(Object.values(grads).reduce<tf.Tensor>((sum, g) => tf.add(sum, tf.sum(tf.square(g))), tf.scalar(0))));
  const value = (await norm.data())[0];
  norm.dispose();
  return value;
}
