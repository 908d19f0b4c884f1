/**
 * Gradient definitions for the tfjs kernels that the policy and the RL losses differentiate through.
 *
 * `@tensorflow/tfjs-core`'s Node build registers kernels' forward implementations but no gradients
 * (the `@tensorflow/tfjs` bundle normally adds them), so `tf.grad` / `tf.variableGrads` fail with
 * "gradient function not found" without this module. Importing it registers one gradient per kernel
 * below, skipping any kernel that already has one. Each entry states the derivative it implements;
 * `dy` is the upstream gradient, shapes follow numpy broadcasting.
 */
import * as tf from '@tensorflow/tfjs-core';

type Saved = tf.Tensor[];
type Attrs = tf.NamedAttrMap;
type Thunks = Record<string, () => tf.Tensor>;

/** Sum `grad` over the axes along which an input of `shape` was broadcast, then give it that shape. */
function unbroadcast(grad: tf.Tensor, shape: number[]): tf.Tensor {
  const axes = tf.broadcast_util.getReductionAxes(shape, grad.shape);
  return tf.reshape(axes.length > 0 ? tf.sum(grad, axes) : grad, shape);
}

function asFloat(x: tf.Tensor): tf.Tensor {
  return x.dtype === 'float32' ? x : tf.cast(x, 'float32');
}

/** dy of a reduction, reshaped with the reduced axes kept as size 1, so it broadcasts against x. */
function keepReducedDims(dy: tf.Tensor, x: tf.Tensor, axisAttr: unknown): { dyKept: tf.Tensor; axes: number[] } {
  const axes = tf.util.parseAxisParam(axisAttr as number | number[], x.shape);
  const keptShape = tf.backend_util.expandShapeToKeepDim(
    x.shape.filter((_, i) => !axes.includes(i)),
    axes,
  );
  return { dyKept: tf.reshape(dy, keptShape), axes };
}

const binary = (
  kernelName: string,
  grads: (dy: tf.Tensor, a: tf.Tensor, b: tf.Tensor) => { a: tf.Tensor; b: tf.Tensor },
): tf.GradConfig => ({
  kernelName,
  inputsToSave: ['a', 'b'],
  gradFunc: (dy, saved: Saved): Thunks => {
    const [a, b] = saved;
    return {
      a: () => unbroadcast(grads(dy as tf.Tensor, a, b).a, a.shape),
      b: () => unbroadcast(grads(dy as tf.Tensor, a, b).b, b.shape),
    };
  },
});

/** Unary kernel whose derivative is expressed through its input x. */
const unaryOfInput = (kernelName: string, dx: (dy: tf.Tensor, x: tf.Tensor) => tf.Tensor): tf.GradConfig => ({
  kernelName,
  inputsToSave: ['x'],
  gradFunc: (dy, saved: Saved): Thunks => ({ x: () => dx(dy as tf.Tensor, saved[0]) }),
});

/** Unary kernel whose derivative is expressed through its output y. */
const unaryOfOutput = (kernelName: string, dx: (dy: tf.Tensor, y: tf.Tensor) => tf.Tensor): tf.GradConfig => ({
  kernelName,
  outputsToSave: [true],
  gradFunc: (dy, saved: Saved): Thunks => ({ x: () => dx(dy as tf.Tensor, saved[0]) }),
});

/** Piecewise-constant kernels (comparisons, rounding, argmax, …): derivative 0 w.r.t. every input. */
const zeroGradient = (kernelName: string, inputNames: string[]): tf.GradConfig => ({
  kernelName,
  saveAllInputs: false,
  inputsToSave: inputNames,
  gradFunc: (_dy, saved: Saved): Thunks => Object.fromEntries(inputNames.map((name, i) => [name, () => tf.zerosLike(asFloat(saved[i]))])),
});

/**
 * C = op(A)·op(B) with op = transpose when the flag is set:
 *   (A·B)    dA = dC·Bᵀ,    dB = Aᵀ·dC
 *   (A·Bᵀ)   dA = dC·B,     dB = dCᵀ·A
 *   (Aᵀ·B)   dA = B·dCᵀ,    dB = A·dC
 *   (Aᵀ·Bᵀ)  dA = Bᵀ·dCᵀ,   dB = dCᵀ·Aᵀ
 * Broadcast batch dimensions are summed out.
 */
const batchMatMulGrad: tf.GradConfig = {
  kernelName: tf.BatchMatMul,
  inputsToSave: ['a', 'b'],
  gradFunc: (dyIn, saved: Saved, attrs: Attrs): Thunks => {
    const dy = dyIn as tf.Tensor;
    const [a, b] = saved;
    const { transposeA, transposeB } = attrs as unknown as tf.BatchMatMulAttrs;
    const mm = (x: tf.Tensor, y: tf.Tensor, tx: boolean, ty: boolean) => tf.matMul(x, y, tx, ty);
    let da: () => tf.Tensor;
    let db: () => tf.Tensor;
    if (!transposeA && !transposeB) {
      da = () => mm(dy, b, false, true);
      db = () => mm(a, dy, true, false);
    } else if (!transposeA && transposeB) {
      da = () => mm(dy, b, false, false);
      db = () => mm(dy, a, true, false);
    } else if (transposeA && !transposeB) {
      da = () => mm(b, dy, false, true);
      db = () => mm(a, dy, false, false);
    } else {
      da = () => mm(b, dy, true, true);
      db = () => mm(dy, a, true, true);
    }
    return { a: () => unbroadcast(da(), a.shape), b: () => unbroadcast(db(), b.shape) };
  },
};

/** softmax y along `dim`: dx = y ⊙ (dy − Σ(dy ⊙ y)). */
const softmaxGrad: tf.GradConfig = {
  kernelName: tf.Softmax,
  outputsToSave: [true],
  gradFunc: (dy, saved: Saved, attrs: Attrs): Thunks => {
    const [y] = saved;
    const dim = (attrs as unknown as tf.SoftmaxAttrs).dim;
    return {
      logits: () => {
        const weighted = tf.mul(dy as tf.Tensor, y);
        return tf.mul(y, tf.sub(dy as tf.Tensor, tf.sum(weighted, dim, true)));
      },
    };
  },
};

/** Σ over axes: every summed element receives dy. */
const sumGrad: tf.GradConfig = {
  kernelName: tf.Sum,
  inputsToSave: ['x'],
  gradFunc: (dy, saved: Saved, attrs: Attrs): Thunks => {
    const [x] = saved;
    return { x: () => tf.mul(keepReducedDims(dy as tf.Tensor, x, attrs.axis).dyKept, tf.onesLike(asFloat(x))) };
  },
};

/** mean over axes: every element receives dy / (number of elements averaged). */
const meanGrad: tf.GradConfig = {
  kernelName: tf.Mean,
  inputsToSave: ['x'],
  gradFunc: (dy, saved: Saved, attrs: Attrs): Thunks => {
    const [x] = saved;
    return {
      x: () => {
        const { dyKept, axes } = keepReducedDims(dy as tf.Tensor, x, attrs.axis);
        const count = axes.reduce((n, axis) => n * x.shape[axis], 1);
        return tf.mul(tf.div(dyKept, count), tf.onesLike(asFloat(x)));
      },
    };
  },
};

/** max / min over axes: dy flows to every element equal to the extreme value. */
const extremumGrad = (kernelName: string, axisAttr: 'reductionIndices' | 'axis'): tf.GradConfig => ({
  kernelName,
  inputsToSave: ['x'],
  outputsToSave: [true],
  gradFunc: (dy, saved: Saved, attrs: Attrs): Thunks => {
    const [x, y] = saved;
    return {
      x: () => {
        const { dyKept } = keepReducedDims(dy as tf.Tensor, x, attrs[axisAttr]);
        const yKept = keepReducedDims(y, x, attrs[axisAttr]).dyKept;
        return tf.mul(dyKept, tf.cast(tf.equal(x, yKept), 'float32'));
      },
    };
  },
});

const reshapeGrad: tf.GradConfig = {
  kernelName: tf.Reshape,
  inputsToSave: ['x'],
  gradFunc: (dy, saved: Saved): Thunks => ({ x: () => tf.reshape(dy as tf.Tensor, saved[0].shape) }),
};

/** transpose by perm: dx = transpose(dy, perm⁻¹). */
const transposeGrad: tf.GradConfig = {
  kernelName: tf.Transpose,
  gradFunc: (dy, _saved: Saved, attrs: Attrs): Thunks => {
    const undo = tf.backend_util.getUndoAxesPermutation((attrs as unknown as tf.TransposeAttrs).perm);
    return { x: () => tf.transpose(dy as tf.Tensor, undo) };
  },
};

/** concat along axis: dx_i = the slice of dy that came from input i. */
const concatGrad: tf.GradConfig = {
  kernelName: tf.Concat,
  saveAllInputs: true,
  gradFunc: (dy, saved: Saved, attrs: Attrs): Thunks => {
    const axis = tf.util.parseAxisParam((attrs as unknown as tf.ConcatAttrs).axis, saved[0].shape)[0];
    const sizes = saved.map((t) => t.shape[axis]);
    // Split once, eagerly: per-input thunks that each split dy would cost N² slices. The pieces live
    // in the engine's backward scope, which disposes them when the gradient pass ends.
    const pieces = tf.split(dy as tf.Tensor, sizes, axis);
    return Object.fromEntries(pieces.map((piece, i) => [String(i), () => piece]));
  },
};

/** split into pieces: dx = concat(dy_i); unused pieces arrive as zeros. */
const splitGrad: tf.GradConfig = {
  kernelName: tf.SplitV,
  gradFunc: (dys, _saved: Saved, attrs: Attrs): Thunks => {
    const { axis } = attrs as unknown as tf.SplitVAttrs;
    const pieces = Array.isArray(dys) ? dys : [dys];
    return { x: () => tf.concat(pieces, axis) };
  },
};

/** slice [begin, begin+size): dx = dy zero-padded back to x's shape. */
const sliceGrad: tf.GradConfig = {
  kernelName: tf.Slice,
  inputsToSave: ['x'],
  gradFunc: (dy, saved: Saved, attrs: Attrs): Thunks => {
    const [x] = saved;
    const { begin, size } = attrs as unknown as tf.SliceAttrs;
    const [start, extent] = tf.slice_util.parseSliceParams(x, begin, size);
    const paddings = x.shape.map((dim, i) => [start[i], dim - start[i] - extent[i]] as [number, number]);
    return { x: () => tf.pad(dy as tf.Tensor, paddings) };
  },
};

/** stack along axis: dx_i = dy's slice i along that axis. */
const packGrad: tf.GradConfig = {
  kernelName: tf.Pack,
  gradFunc: (dy, _saved: Saved, attrs: Attrs): Thunks => {
    const { axis } = attrs as unknown as tf.PackAttrs;
    const pieces = tf.unstack(dy as tf.Tensor, axis); // eagerly, as in concatGrad
    return Object.fromEntries(pieces.map((piece, i) => [String(i), () => piece]));
  },
};

/** unstack along axis: dx = stack(dy_i). */
const unpackGrad: tf.GradConfig = {
  kernelName: tf.Unpack,
  gradFunc: (dys, _saved: Saved, attrs: Attrs): Thunks => {
    const { axis } = attrs as unknown as tf.UnpackAttrs;
    return { value: () => tf.stack(Array.isArray(dys) ? dys : [dys], axis) };
  },
};

/** tile: dx sums the upstream gradient of every copy. */
const tileGrad: tf.GradConfig = {
  kernelName: tf.Tile,
  inputsToSave: ['x'],
  gradFunc: (dy, saved: Saved): Thunks => {
    const [x] = saved;
    return {
      x: () => {
        // View dy [r₀·d₀, r₁·d₁, …] as [r₀, d₀, r₁, d₁, …] and sum the repeat axes.
        const reps = (dy as tf.Tensor).shape.map((dim, i) => dim / x.shape[i]);
        const interleaved = x.shape.flatMap((dim, i) => [reps[i], dim]);
        const repeatAxes = x.shape.map((_, i) => 2 * i);
        return tf.reshape(tf.sum(tf.reshape(dy as tf.Tensor, interleaved), repeatAxes), x.shape);
      },
    };
  },
};

/** clip to [lo, hi]: dy passes where lo ≤ x ≤ hi. */
const clipGrad: tf.GradConfig = {
  kernelName: tf.ClipByValue,
  inputsToSave: ['x'],
  gradFunc: (dy, saved: Saved, attrs: Attrs): Thunks => {
    const [x] = saved;
    const { clipValueMin, clipValueMax } = attrs as unknown as tf.ClipByValueAttrs;
    return {
      x: () => tf.mul(dy as tf.Tensor, tf.cast(tf.logicalAnd(tf.greaterEqual(x, clipValueMin), tf.lessEqual(x, clipValueMax)), 'float32')),
    };
  },
};

/** where(c, t, e): dt = dy where c, de = dy elsewhere; the condition has no gradient. */
const selectGrad: tf.GradConfig = {
  kernelName: tf.Select,
  inputsToSave: ['condition', 't', 'e'],
  gradFunc: (dy, saved: Saved): Thunks => {
    const [condition, t, e] = saved;
    const chosen = () => tf.cast(condition, 'float32');
    return {
      condition: () => tf.zerosLike(asFloat(condition)),
      t: () => unbroadcast(tf.mul(dy as tf.Tensor, chosen()), t.shape),
      e: () => unbroadcast(tf.mul(dy as tf.Tensor, tf.sub(1, chosen())), e.shape),
    };
  },
};

/** gather rows (axis 0): dx = Σ of dy rows landing on each index (needs UnsortedSegmentSum). */
const gatherGrad: tf.GradConfig = {
  kernelName: tf.GatherV2,
  inputsToSave: ['x', 'indices'],
  gradFunc: (dy, saved: Saved, attrs: Attrs): Thunks => {
    const [x, indices] = saved;
    const { axis, batchDims } = attrs as unknown as tf.GatherV2Attrs;
    const resolvedAxis = tf.util.parseAxisParam(axis, x.shape)[0];
    if (resolvedAxis !== 0 || batchDims !== 0) {
      throw new Error(`gather gradient is implemented for axis 0 without batch dims, got axis ${axis}, batchDims ${batchDims}`);
    }
    return {
      x: () => {
        const flatIndices = tf.reshape(indices, [-1]) as tf.Tensor1D;
        const rows = tf.reshape(dy as tf.Tensor, [flatIndices.shape[0], ...x.shape.slice(1)]);
        return tf.unsortedSegmentSum(rows, flatIndices, x.shape[0]);
      },
      indices: () => tf.zerosLike(asFloat(indices)),
    };
  },
};

/** Σ of inputs: each receives dy. */
const addNGrad: tf.GradConfig = {
  kernelName: tf.AddN,
  saveAllInputs: true,
  gradFunc: (dy, saved: Saved): Thunks => Object.fromEntries(saved.map((_, i) => [String(i), () => tf.clone(dy as tf.Tensor)])),
};

/** x^p: dx = dy·p·x^(p−1); dp = dy·y·ln x where x > 0. */
const powGrad: tf.GradConfig = {
  kernelName: tf.Pow,
  inputsToSave: ['a', 'b'],
  outputsToSave: [true],
  gradFunc: (dy, saved: Saved): Thunks => {
    const [a, b, y] = saved;
    return {
      a: () => unbroadcast(tf.mul(dy as tf.Tensor, tf.mul(asFloat(b), tf.pow(a, tf.sub(asFloat(b), 1)))), a.shape),
      b: () => {
        const logA = tf.where(tf.greater(a, 0), tf.log(a), tf.zerosLike(a));
        return unbroadcast(tf.mul(dy as tf.Tensor, tf.mul(y, logA)), b.shape);
      },
    };
  },
};

const configs: tf.GradConfig[] = [
  batchMatMulGrad,
  // a + b, a − b, a ⊙ b, a / b (d/db = −dy·a/b²).
  binary(tf.Add, (dy) => ({ a: dy, b: dy })),
  binary(tf.Sub, (dy) => ({ a: dy, b: tf.neg(dy) })),
  binary(tf.Multiply, (dy, a, b) => ({ a: tf.mul(dy, asFloat(b)), b: tf.mul(dy, asFloat(a)) })),
  binary(tf.RealDiv, (dy, a, b) => ({ a: tf.div(dy, b), b: tf.neg(tf.div(tf.mul(dy, a), tf.square(b))) })),
  // max(a, b) / min(a, b): dy goes to the selected operand; ties go to a.
  binary(tf.Maximum, (dy, a, b) => ({
    a: tf.mul(dy, tf.cast(tf.greaterEqual(a, b), 'float32')),
    b: tf.mul(dy, tf.cast(tf.less(a, b), 'float32')),
  })),
  binary(tf.Minimum, (dy, a, b) => ({
    a: tf.mul(dy, tf.cast(tf.lessEqual(a, b), 'float32')),
    b: tf.mul(dy, tf.cast(tf.greater(a, b), 'float32')),
  })),
  // (a − b)²: d/da = 2(a − b)·dy.
  binary(tf.SquaredDifference, (dy, a, b) => ({ a: tf.mul(dy, tf.mul(2, tf.sub(a, b))), b: tf.mul(dy, tf.mul(-2, tf.sub(a, b))) })),
  powGrad,
  addNGrad,
  unaryOfInput(tf.Neg, (dy) => tf.neg(dy)),
  unaryOfOutput(tf.Exp, (dy, y) => tf.mul(dy, y)), //                  d eˣ = eˣ
  unaryOfInput(tf.Log, (dy, x) => tf.div(dy, x)), //                   d ln x = 1/x
  unaryOfInput(tf.Log1p, (dy, x) => tf.div(dy, tf.add(x, 1))), //      d ln(1+x) = 1/(1+x)
  unaryOfInput(tf.Square, (dy, x) => tf.mul(dy, tf.mul(2, x))), //     d x² = 2x
  unaryOfOutput(tf.Sqrt, (dy, y) => tf.div(dy, tf.mul(2, y))), //      d √x = 1/(2√x)
  unaryOfOutput(tf.Rsqrt, (dy, y) => tf.mul(dy, tf.mul(-0.5, tf.mul(y, tf.square(y))))), // d x^(−½) = −½·y³
  unaryOfOutput(tf.Reciprocal, (dy, y) => tf.neg(tf.mul(dy, tf.square(y)))), // d 1/x = −y²
  unaryOfOutput(tf.Sigmoid, (dy, y) => tf.mul(dy, tf.mul(y, tf.sub(1, y)))), // σ' = σ(1 − σ)
  unaryOfOutput(tf.Tanh, (dy, y) => tf.mul(dy, tf.sub(1, tf.square(y)))), // tanh' = 1 − tanh²
  unaryOfInput(tf.Softplus, (dy, x) => tf.mul(dy, tf.sigmoid(x))), //  d ln(1+eˣ) = σ(x)
  unaryOfInput(tf.Abs, (dy, x) => tf.mul(dy, tf.sign(x))),
  unaryOfInput(tf.Relu, (dy, x) => tf.mul(dy, tf.cast(tf.greater(x, 0), 'float32'))),
  unaryOfInput(tf.Cast, (dy) => tf.clone(dy)),
  unaryOfInput(tf.Identity, (dy) => tf.clone(dy)),
  softmaxGrad,
  sumGrad,
  meanGrad,
  extremumGrad(tf.Max, 'reductionIndices'),
  extremumGrad(tf.Min, 'axis'),
  reshapeGrad,
  transposeGrad,
  concatGrad,
  splitGrad,
  sliceGrad,
  packGrad,
  unpackGrad,
  tileGrad,
  clipGrad,
  selectGrad,
  gatherGrad,
  ...[tf.Greater, tf.GreaterEqual, tf.Less, tf.LessEqual, tf.Equal, tf.NotEqual, tf.LogicalAnd, tf.LogicalOr].map((k) =>
    zeroGradient(k, ['a', 'b']),
  ),
  ...[tf.LogicalNot, tf.Sign, tf.Floor, tf.Ceil, tf.Round, tf.ArgMax, tf.ArgMin, tf.OnesLike, tf.ZerosLike].map((k) =>
    zeroGradient(k, ['x']),
  ),
];

/** Kernels whose gradients this module provides (for tests and diagnostics). */
export const kernelsWithGradients: readonly string[] = configs.map((config) => config.kernelName);

for (const config of configs) {
  if (tf.getGradient(config.kernelName) == null) tf.registerGradient(config);
}
