/**
 * A 2-D matrix product whose gradient stays on the wasm backend's fast path.
 *
 * tfjs-backend-wasm runs XNNPACK only for plain 2-D products without transpose flags; tfjs's own
 * MatMul gradient uses `transposeA/B`, which drops to a slow generic kernel. This version computes the
 * same gradients, dA = dY·Bᵀ and dB = Aᵀ·dY, with explicit transposes followed by plain products.
 * Other backends fuse the transpose into the product, so there the flags are kept.
 */
import * as tf from '@tensorflow/tfjs-core';
// Registers the kernel gradients that tf.grad / tf.variableGrads need (tfjs-core ships none in Node).
import './gradients.js';

const customMatMul = tf.customGrad((...inputs: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const [a, b, save] = inputs as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
  save([a, b]);
  return {
    value: tf.matMul(a, b),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [savedA, savedB] = saved as [tf.Tensor2D, tf.Tensor2D];
      const upstream = dy as tf.Tensor2D;
      if (tf.getBackend() === 'wasm') {
        return [tf.matMul(upstream, tf.transpose(savedB)), tf.matMul(tf.transpose(savedA), upstream)];
      }
      return [tf.matMul(upstream, savedB, false, true), tf.matMul(savedA, upstream, true, false)];
    },
  };
});

/** `a · b` for a: [m, k], b: [k, n] → [m, n], differentiable in both arguments. */
export function matMul2d(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  if (a.rank !== 2 || b.rank !== 2 || a.shape[1] !== b.shape[0]) {
    throw new RangeError(`matMul2d needs [m, k] · [k, n], got [${a.shape}] · [${b.shape}]`);
  }
  return customMatMul(a, b) as tf.Tensor2D;
}
