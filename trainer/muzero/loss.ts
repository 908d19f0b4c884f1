/**
 * The MuZero loss over a K-step unroll (spec "Loss"; Schrittwieser et al. 2020, eq. 1 and appendix G),
 * in the paper's order:
 *
 *   s⁰ = h(o_t);  p⁰, v⁰ = f(s⁰)
 *   for k = 1..K:  r^k, s^k = g(s^{k−1}, a_{t+k−1});  p^k, v^k = f(s^k);  then s^k ← scaleGradient(s^k, ½)
 *                  before it feeds the next dynamics step (as in the published pseudocode)
 *   l_k = CE(π_{t+k}, p^k)·[t+k inside] + λ_v·CE(φ(z_{t+k}), v^k) + [k ≥ 1]·CE(φ(u_{t+k}), r^k)
 *   L = mean_b w_b·(l_0 + Σ_{k≥1} scaleGradient(l_k, 1/K)) + c_L2·Σ_θ ‖θ‖²
 *
 * φ is the two-hot encoding of support.ts; w_b the importance weights of the prioritised replay.
 * scaleGradient leaves the forward value alone, so the reported loss is the unscaled sum.
 */
import * as tf from '@tensorflow/tfjs-core';
import { MuZeroLossOptionsSchema, type MuZeroLossOptions } from '../../configs/muzero.js';
import type { MuZeroNetworks } from '../../models/muzero/networks.js';
import { scaleGradient } from '../../models/muzero/ops.js';
import type { UnrollBatch } from './replay.js';

/** Declared in configs/muzero.ts, with the run config that embeds it. */
export { MuZeroLossOptionsSchema, type MuZeroLossOptions };

/** The loss scalar and its parts (all tensors owned by the caller). */
export interface MuZeroLossOutput {
  /** The total loss L. */
  readonly loss: tf.Scalar;
  /** Σ_k of the batch means of each term (unweighted by w, unscaled by 1/K), for metrics. */
  readonly policyLoss: tf.Scalar;
  readonly valueLoss: tf.Scalar;
  readonly rewardLoss: tf.Scalar;
  readonly l2Loss: tf.Scalar;
  /** [B] v⁰ on the transformed scale y = E[bin] (decode with support.fromTransformed). */
  readonly initialValueTransformed: tf.Tensor1D;
}

/** Two-hot targets [(K+1) · B · bins] of the scalars [(K+1) · B]. */
export function twoHotTargets(networks: MuZeroNetworks, scalars: Float32Array): Float32Array {
  const bins = networks.support.size;
  const out = new Float32Array(scalars.length * bins);
  for (let i = 0; i < scalars.length; i++) networks.support.encode(scalars[i], out, i * bins);
  return out;
}

/** −Σ_j target_j · log softmax(logits)_j per row → [B]. */
function crossEntropy(logits: tf.Tensor2D, target: tf.Tensor2D): tf.Tensor1D {
  return tf.neg(tf.sum(tf.mul(target, tf.logSoftmax(logits)), 1)) as tf.Tensor1D;
}

/** The loss for one sampled batch. Call inside tf.variableGrads / tf.tidy. */
export function muzeroLoss(networks: MuZeroNetworks, batch: UnrollBatch, options: MuZeroLossOptions): MuZeroLossOutput {
  const { batchSize: B, unrollSteps: K, observationSize: O, numActions: A } = batch;
  const bins = networks.support.size;
  const valueTargets = twoHotTargets(networks, batch.valueTargets);
  const rewardTargets = twoHotTargets(networks, batch.rewardTargets);
  const step2d = (data: Float32Array, k: number, width: number) =>
    tf.tensor2d(data.subarray(k * B * width, (k + 1) * B * width), [B, width]);
  const step1d = (data: Float32Array, k: number) => tf.tensor1d(data.subarray(k * B, (k + 1) * B));
  const weights = tf.tensor1d(batch.weights);

  let state = networks.represent(tf.tensor2d(batch.observations, [B, O]));
  /** The state g consumes next: s⁰ as is, then each s^k with its gradient scaled. */
  let dynamicsInput = state;
  let perSample: tf.Tensor1D = tf.zeros([B]);
  const policyParts: tf.Scalar[] = [];
  const valueParts: tf.Scalar[] = [];
  const rewardParts: tf.Scalar[] = [];
  let initialValueTransformed: tf.Tensor1D | undefined;
  for (let k = 0; k <= K; k++) {
    let rewardTerm: tf.Tensor1D | undefined;
    if (k >= 1) {
      const actions = batch.actions.subarray((k - 1) * B, k * B);
      const next = networks.dynamics(dynamicsInput, networks.oneHot(actions));
      state = next.state;
      dynamicsInput = scaleGradient(next.state, options.dynamicsGradientScale);
      rewardTerm = crossEntropy(next.rewardLogits, step2d(rewardTargets, k, bins));
      rewardParts.push(tf.mean(rewardTerm));
    }
    const { policyLogits, valueLogits } = networks.predict(state);
    if (k === 0) initialValueTransformed = networks.expectedTransformed(valueLogits);
    const policyTerm = tf.mul(crossEntropy(policyLogits, step2d(batch.policyTargets, k, A)), step1d(batch.policyMask, k));
    const valueTerm = crossEntropy(valueLogits, step2d(valueTargets, k, bins));
    policyParts.push(tf.mean(policyTerm));
    valueParts.push(tf.mean(valueTerm));
    let term = tf.add(policyTerm, tf.mul(valueTerm, options.valueLossWeight)) as tf.Tensor1D;
    if (rewardTerm) term = tf.add(term, rewardTerm);
    perSample = tf.add(perSample, k === 0 ? term : scaleGradient(term, 1 / K));
  }
  const l2Loss = tf.mul(sumScalars(networks.variables.map((v) => tf.sum(tf.square(v)) as tf.Scalar)), options.l2) as tf.Scalar;
  const loss = tf.add(tf.mean(tf.mul(perSample, weights)), l2Loss) as tf.Scalar;
  return {
    loss,
    policyLoss: sumScalars(policyParts),
    valueLoss: sumScalars(valueParts),
    rewardLoss: rewardParts.length > 0 ? sumScalars(rewardParts) : tf.scalar(0),
    l2Loss,
    initialValueTransformed: initialValueTransformed as tf.Tensor1D,
  };
}

/** Σ of scalars by pairwise adds. */
function sumScalars(terms: tf.Scalar[]): tf.Scalar {
  let level = terms;
  while (level.length > 1) {
    const next: tf.Scalar[] = [];
    for (let i = 0; i < level.length; i += 2) next.push(i + 1 < level.length ? (tf.add(level[i], level[i + 1]) as tf.Scalar) : level[i]);
    level = next;
  }
  return level[0];
}
