/**
 * The engine's correctness on the machine it runs on, for every matmul path the adapter offers
 * (the unit tests cover f32 and f16 on lavapipe in CI; the tensor-core path exists only on a GPU).
 * Prints, per path: matmul error against float64 on odd shapes in all layouts, and one whole training
 * step of a small policy against the tfjs reference (wasm) — log-probs, loss, every gradient.
 *
 *   npx tsx bench/engine-check.ts                          (here: lavapipe, f32 and f16)
 *   bash .gpu/boot.sh node dist/gpu/engine-check.mjs       (the GPU machine: also f16-matrix)
 * Exits 1 when a check exceeds its tolerance.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../core/rng.js';
import { selectBackend } from '../models/backend.js';
import { openEngineDevice } from '../models/engine/device.js';
import { matmul, pickMatmulPath, type MatmulPath } from '../models/engine/kernels/matmul.js';
import { EngineModel } from '../models/engine/model.js';
import { Arena, Runtime } from '../models/engine/runtime.js';
import { TransformerPolicy, resolvePolicyConfig } from '../models/transformer.js';
import { loopLoss } from '../trainer/algorithms/loop.js';
import { engineBatch } from '../trainer/policy-trainer.js';

/** Tolerances, relative to the reference's largest magnitude: f32 exact to rounding; f16 operands ~2⁻¹¹. */
const TOLERANCE: Record<MatmulPath, { matmul: number; grads: number; logProbs: number }> = {
  f32: { matmul: 1e-5, grads: 1e-4, logProbs: 1e-5 },
  f16: { matmul: 5e-3, grads: 5e-2, logProbs: 5e-3 },
  'f16-matrix': { matmul: 5e-3, grads: 5e-2, logProbs: 5e-3 },
};

await selectBackend('wasm');
const device = await openEngineDevice();
const rt = new Runtime(device);
console.log(`engine check on ${device.caps.adapter}${device.caps.software ? ' (software)' : ''}`);
const lines: string[] = [];
let failed = false;
for (const path of ['f32', 'f16', 'f16-matrix'] as const) {
  if (pickMatmulPath(device.caps, path).path !== path) {
    lines.push(`| ${path} | not offered by this adapter | | | |`);
    continue;
  }
  const mm = await matmulError(path);
  const step = await stepError(path);
  const tol = TOLERANCE[path];
  const ok = mm <= tol.matmul && step.grads <= tol.grads && step.logProbs <= tol.logProbs && step.loss <= tol.grads;
  failed ||= !ok;
  lines.push(
    `| ${path} | ${mm.toExponential(2)} | ${step.logProbs.toExponential(2)} | ${step.loss.toExponential(2)} | ${step.grads.toExponential(2)} (${step.worst}) | ${ok ? 'ok' : 'FAIL'} |`,
  );
}
console.log('');
console.log('| path | matmul (all layouts, odd shapes) | log-probs | loss | worst gradient | within tolerance |');
console.log('|---|---|---|---|---|---|');
for (const line of lines) console.log(line);
process.exit(failed ? 1 : 0);

async function matmulError(path: MatmulPath): Promise<number> {
  const rng = new Rng(3);
  let worst = 0;
  for (const [m, n, k] of [
    [1, 1, 1],
    [17, 33, 65],
    [130, 67, 129],
    [256, 512, 384],
  ]) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        const arena = new Arena(device, 'check', 4 * (m * k + k * n + m * n) + 4096);
        const a = Float32Array.from({ length: m * k }, () => rng.normal());
        const b = Float32Array.from({ length: k * n }, () => rng.normal());
        const ta = arena.alloc('a', [m * k]);
        const tb = arena.alloc('b', [k * n]);
        const tc = arena.alloc('c', [m * n]);
        rt.write(ta, a);
        rt.write(tb, b);
        const rec = rt.record();
        await matmul(rt, rec, { a: ta, b: tb, c: tc, m, n, k, transA, transB, path });
        rec.submit();
        const c = await rt.readNumbers(tc);
        let scale = 1e-6;
        const expected = new Float64Array(m * n);
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            let sum = 0;
            for (let p = 0; p < k; p++) sum += a[transA ? p * m + i : i * k + p] * b[transB ? j * k + p : p * n + j];
            expected[i * n + j] = sum;
            scale = Math.max(scale, Math.abs(sum));
          }
        }
        for (let q = 0; q < m * n; q++) worst = Math.max(worst, Math.abs(c[q] - expected[q]) / scale);
        rt.forgetBuffer(arena.id);
        arena.destroy();
      }
    }
  }
  return Number.isNaN(worst) ? Number.POSITIVE_INFINITY : worst;
}

async function stepError(path: MatmulPath): Promise<{ logProbs: number; loss: number; grads: number; worst: string }> {
  const config = resolvePolicyConfig({
    dModel: 64,
    nLayers: 2,
    nHeads: 4,
    nKvHeads: 2,
    maxSeqLen: 64,
    ropeTheta: 10000,
    normEps: 1e-5,
    qkvBias: true,
    initStd: 0.05,
    vocabSize: 260,
  });
  const policy = new TransformerPolicy(config, 5);
  const model = await EngineModel.create(rt, config, 5, {
    precision: path,
    lossScale: { initial: 1, growthInterval: 1000, dynamic: false },
  });
  const B = 4;
  const T = 48;
  const rng = new Rng(11);
  const tokens = Int32Array.from({ length: B * T }, () => rng.int(260));
  const mask = Float32Array.from({ length: B * T }, (_, q) => (q % T > T / 3 ? 1 : 0));
  const turnIds = Int32Array.from(mask, (m) => (m ? 0 : -1));
  const advantages = Float32Array.from({ length: B }, (_, b) => (b % 2 ? 0.7 : -0.4));
  const batch = { tokens, batchSize: B, seqLen: T };
  const refLp = (await policy.logProbs(batch).data()) as Float32Array;
  const lp = await model.logProbs(batch);
  const old = Float32Array.from(refLp, (x, q) => (mask[q] ? x + 0.2 * (rng.next() - 0.5) : 0));
  const loss = { oldLogProbs: old, mask, turnIds, advantages, divisor: B, clipLow: 0.9, clipHigh: 1.1, ratio: 'token' as const };
  const { value, grads } = tf.variableGrads(() => {
    const out = loopLoss({ ...loss, newLogProbs: policy.logProbs(batch) });
    tf.dispose(Object.values(out.stats));
    return out.loss;
  }, policy.variables);
  const refLoss = (await value.data())[0];
  const stats = await model.surrogateGradients(
    engineBatch({ packed: { batch, mask, turnIds, samplerLogProbs: old, advantages }, temperature: 1, loss }),
  );
  const engineGrads = await model.lastGradients();
  let worstGrad = 0;
  let worstName = '';
  for (let q = 0; q < policy.variables.length; q++) {
    const name = policy.parameterNames[q];
    const g = grads[policy.variables[q].name];
    const hf = g.shape.length === 2 && name !== 'model.embed_tokens.weight' ? tf.transpose(g) : g;
    const err = scaledError(engineGrads[name].data, (await hf.data()) as Float32Array);
    if (err > worstGrad || Number.isNaN(err)) {
      worstGrad = Number.isNaN(err) ? Number.POSITIVE_INFINITY : err;
      worstName = name;
    }
  }
  tf.dispose([value, ...Object.values(grads)]);
  model.dispose();
  policy.dispose();
  return {
    logProbs: scaledError(lp, refLp),
    loss: Math.abs(stats.loss - refLoss) / Math.max(Math.abs(refLoss), 1e-6),
    grads: worstGrad,
    worst: worstName,
  };
}

function scaledError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let scale = 1e-6;
  let worst = 0;
  for (let q = 0; q < expected.length; q++) scale = Math.max(scale, Math.abs(expected[q]));
  for (let q = 0; q < expected.length; q++) worst = Math.max(worst, Math.abs(actual[q] - expected[q]) / scale);
  return Number.isNaN(worst) ? Number.POSITIVE_INFINITY : worst;
}
