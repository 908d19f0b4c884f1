/**
 * Learner throughput: tokens/s of one full LOOP training step (forward, clipped objective, backward,
 * global-norm clip, AdamW) on a synthetic minibatch, for several model sizes, on the backend chosen by
 * `--backend` (wasm on CPU; webgpu on the GPU machine). The PyTorch reference of the same model and step
 * (bench/reference/learner_step.py) runs in the same command on the GPU machine (bench/gpu.sh).
 *
 *   npx tsx bench/learner.ts --backend wasm --sizes tiny,small
 *   bash .gpu/boot.sh node dist/gpu/learner.mjs --backend webgpu --sizes tiny,small,medium,large
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend, type BackendRequest } from '../models/backend.js';
import { TransformerPolicy } from '../models/transformer.js';
import { loopLoss } from '../trainer/algorithms/loop.js';
import { AdamW, clipGlobalNorm } from '../trainer/optim/adamw.js';
import { LEARNER_SIZES, learnerBenchConfig, syntheticMinibatch, type LearnerSize } from './learner-sizes.js';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm' },
    sizes: { type: 'string', default: 'tiny,small' },
    steps: { type: 'string', default: '5' },
    json: { type: 'string' },
  },
});

const backend = await selectBackend(values.backend as BackendRequest);
const rows: string[][] = [];
const results: Record<string, unknown>[] = [];
for (const name of values.sizes!.split(',')) {
  const size = LEARNER_SIZES[name as keyof typeof LEARNER_SIZES];
  if (!size) throw new Error(`unknown size ${name}; sizes: ${Object.keys(LEARNER_SIZES).join(', ')}`);
  const result = await measure(name, size, Number(values.steps));
  results.push(result);
  rows.push([
    name,
    String(result.params),
    `${size.batch}×${size.seqLen}`,
    result.stepMs.toFixed(1),
    Math.round(result.tokensPerSec).toLocaleString('en-US'),
    result.gradNorm.toPrecision(5),
  ]);
}
console.log(`learner step (LOOP loss + backward + clip + AdamW), backend ${backend.name}: ${backend.reason}`);
console.log(`machine: ${os.cpus()[0]?.model} ×${os.cpus().length}, node ${process.version}`);
console.log('');
console.log('| size | params | batch × seq | ms / step | tokens / s | first grad norm |');
console.log('|---|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
if (values.json) {
  const { writeFileSync } = await import('node:fs');
  writeFileSync(values.json, JSON.stringify({ backend: backend.name, results }, null, 2));
}

async function measure(name: string, size: LearnerSize, steps: number) {
  const policy = new TransformerPolicy(learnerBenchConfig(size), 1);
  const optimizer = new AdamW(policy.variables, { lr: 1e-5, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 });
  const { batch, seqLen } = size;
  const { tokens, mask, turnIds, advantages } = syntheticMinibatch(size);
  const oldLp = policy.logProbs({ tokens, batchSize: batch, seqLen });
  const oldLogProbs = (await oldLp.data()) as Float32Array;
  oldLp.dispose();
  let firstNorm = Number.NaN;
  const step = async () => {
    const { value, grads } = tf.variableGrads(() => {
      const out = loopLoss({
        newLogProbs: policy.logProbs({ tokens, batchSize: batch, seqLen }),
        oldLogProbs,
        mask,
        turnIds,
        advantages,
        divisor: batch,
        clipLow: 0.9,
        clipHigh: 1.1,
        ratio: 'token',
      });
      tf.dispose(Object.values(out.stats));
      return out.loss;
    }, policy.variables);
    const { grads: clipped, norm } = await clipGlobalNorm(grads, 1);
    if (Number.isNaN(firstNorm)) firstNorm = norm;
    optimizer.step(clipped);
    await value.data();
    tf.dispose([value, grads, clipped]);
  };
  await step(); // warm-up: kernel compilation, allocation
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) await step();
  const stepMs = (performance.now() - t0) / steps;
  const params = policy.paramCount;
  optimizer.dispose();
  policy.dispose();
  // The first step's gradient norm (same seed and data on every backend): a cross-backend sanity check.
  return { name, params, batch, seqLen, stepMs, tokensPerSec: (batch * seqLen) / (stepMs / 1000), gradNorm: firstNorm };
}
