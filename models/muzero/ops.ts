/**
 * scaleGradient(x, s): the identity in the forward pass, dy·s in the backward pass (MuZero appendix G:
 * "scale the gradient at the start of the dynamics function by 1/2" and the 1/K scaling of the unroll
 * terms). Built on tf.customGrad, so no new kernel gradient is needed.
 */
import * as tf from '@tensorflow/tfjs-core';
import '../gradients.js';

const cache = new Map<number, (x: tf.Tensor) => tf.Tensor>();

function scaler(scale: number): (x: tf.Tensor) => tf.Tensor {
  let fn = cache.get(scale);
  if (fn === undefined) {
    fn = tf.customGrad((...inputs: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const x = inputs[0] as tf.Tensor;
      return { value: tf.clone(x), gradFunc: (dy: tf.Tensor | tf.Tensor[]) => [tf.mul(dy as tf.Tensor, scale)] };
    }) as (x: tf.Tensor) => tf.Tensor;
    cache.set(scale, fn);
  }
  return fn;
}

/** x in the forward pass; its gradient multiplied by `scale` in the backward pass. */
export function scaleGradient<T extends tf.Tensor>(x: T, scale: number): T {
  if (!Number.isFinite(scale)) throw new RangeError(`scaleGradient: scale must be finite, got ${scale}`);
  return scaler(scale)(x) as T;
}
