/**
 * Supervised warm start: maximum likelihood of scripted demonstrations on the policy's own turns.
 */
import * as tf from '@tensorflow/tfjs-core';
import { TrainingError } from '../../core/errors.js';

/**
 * Mean negative log-likelihood over output tokens, pooled over the whole batch (a token-level mean, so
 * long demonstrations weigh more than short ones):
 *
 *   L = −Σ_{b,t} mask[b,t] · log p_θ(x_{b,t}) / Σ_{b,t} mask[b,t]
 *
 * `logProbs` is [B, T] (log-prob of the demonstrated token at each position, differentiable); `mask` is
 * [B·T] row-major, 1 on demonstrated policy tokens. Positions with mask 0 are ignored even when their
 * log-prob is −∞ and receive zero gradient. Example: log-probs [ln ½, ln ¼, −∞] with mask [1, 1, 0] →
 * (ln 2 + ln 4)/2 = 1.5 · ln 2 ≈ 1.0397.
 */
export function sftLoss(logProbs: tf.Tensor2D, mask: Float32Array): tf.Scalar {
  const [rows, cols] = logProbs.shape;
  if (mask.length !== rows * cols) {
    throw new TrainingError(`sftLoss: mask has ${mask.length} entries, expected ${rows * cols} for logProbs [${rows}, ${cols}]`);
  }
  let outputTokens = 0;
  for (let i = 0; i < mask.length; i++) if (mask[i] > 0) outputTokens++;
  if (outputTokens === 0) throw new TrainingError('sftLoss: the batch has no demonstrated policy token (mask is all 0)');
  return tf.tidy(() => {
    const isOutput = tf.greater(tf.tensor2d(mask, [rows, cols]), 0);
    const picked = tf.where(isOutput, logProbs, tf.zerosLike(logProbs));
    return tf.div(tf.neg(tf.sum(picked)), outputTokens) as tf.Scalar;
  });
}
