/**
 * Learner throughput on horizon's GPU engine: tokens/s of one full LOOP training step (forward, clipped
 * objective, backward, global-norm clip, AdamW — one submit) at the sizes of bench/learner.ts, for each
 * matmul precision the adapter offers. The PyTorch reference of the same model and step
 * (bench/reference/learner_step.py) runs in the same command on the GPU machine (scripts/gpu/engine.sh).
 *
 *   npx tsx bench/engine-learner.ts --sizes tiny --precision f32          (lavapipe: slow, for a smoke test)
 *   bash .gpu/boot.sh node dist/gpu/engine-learner.mjs --sizes tiny,small,medium,large
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { openEngineDevice } from '../models/engine/device.js';
import { EngineModel } from '../models/engine/model.js';
import { pickMatmulPath } from '../models/engine/kernels/matmul.js';
import { Runtime } from '../models/engine/runtime.js';
import { LEARNER_SIZES, learnerBenchConfig, syntheticMinibatch, type LearnerSize } from './learner-sizes.js';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: 'tiny,small' },
    precision: { type: 'string', default: 'all' },
    steps: { type: 'string', default: '10' },
    json: { type: 'string' },
    profile: { type: 'boolean', default: false },
  },
});

const device = await openEngineDevice();
const rt = new Runtime(device);
const precisions =
  values.precision === 'all' ? (['f32', 'f16', 'f16-matrix'] as const) : (values.precision!.split(',') as ('f32' | 'f16' | 'f16-matrix')[]);
const rows: string[] = [];
const results: Record<string, unknown>[] = [];
console.log(`engine learner step on ${device.caps.adapter}${device.caps.software ? ' (software)' : ''}`);
for (const name of values.sizes!.split(',')) {
  const size = LEARNER_SIZES[name as keyof typeof LEARNER_SIZES];
  if (!size) throw new Error(`unknown size ${name}; sizes: ${Object.keys(LEARNER_SIZES).join(', ')}`);
  for (const precision of precisions) {
    const chosen = pickMatmulPath(device.caps, precision);
    if (chosen.path !== precision) {
      console.log(`skipping ${name} ${precision}: ${chosen.reason}`);
      continue;
    }
    const r = await measure(name, size, precision, Number(values.steps));
    results.push(r);
    rows.push(
      `| ${name} | ${r.params.toLocaleString('en-US')} | ${size.batch}×${size.seqLen} | ${precision} | ${r.stepMs.toFixed(2)} | ${Math.round(r.tokensPerSec).toLocaleString('en-US')} | ${r.pipelinedMs.toFixed(2)} | ${Math.round(r.pipelinedTokensPerSec).toLocaleString('en-US')} | ${r.recordMs.toFixed(2)} | ${r.dispatches} | ${r.firstGradNorm.toPrecision(5)} | ${r.skipped} |`,
    );
    console.log(rows.at(-1));
  }
}
console.log('');
console.log(
  '| size | params | batch × seq | matmuls | ms / step | tokens / s | ms / step, pipelined | tokens / s, pipelined | host ms to record a step | dispatches / step | first grad norm | overflow skips |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) console.log(r);
if (values.json) writeFileSync(values.json, JSON.stringify({ adapter: device.caps.adapter, results }, null, 2));
process.exit(0);

async function measure(name: string, size: LearnerSize, precision: 'f32' | 'f16' | 'f16-matrix', steps: number) {
  const model = await EngineModel.create(rt, learnerBenchConfig(size), 1, { precision });
  model.setOptimizer({ lr: 1e-5, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, gradClip: 1 });
  const { batch, seqLen } = size;
  const { tokens, mask, advantages } = syntheticMinibatch(size);
  const oldLogProbs = await model.logProbs({ tokens, batchSize: batch, seqLen });
  const perRow = seqLen - seqLen / 2;
  const tokenWeights = Float32Array.from(mask, (m) => (m ? 1 / (batch * perRow) : 0));
  const input = {
    batch: { tokens, batchSize: batch, seqLen },
    temperature: 1,
    oldLogProbs,
    mask,
    tokenWeights,
    advantages,
    ratio: 'token' as const,
    clipLow: 0.9,
    clipHigh: 1.1,
    outputTokenCount: batch * perRow,
    activeRowCount: batch,
  };
  const first = await model.trainSurrogate(input); // warm-up: kernel compilation, allocation
  const before = rt.dispatchCount;
  const t0 = performance.now();
  let last = first;
  for (let i = 0; i < steps; i++) last = await model.trainSurrogate(input);
  const stepMs = (performance.now() - t0) / steps;
  const dispatches = (rt.dispatchCount - before) / steps;
  // Pipelined: every step recorded and submitted before any statistics are awaited (the GPU never waits
  // for the host's read-back round trip).
  const t1 = performance.now();
  await Promise.all(Array.from({ length: steps }, () => model.trainSurrogate(input)));
  const pipelinedMs = (performance.now() - t1) / steps;
  // Host time to record one step (nothing submitted): the CPU cost of the engine's bookkeeping.
  const recordMs = await model.recordOnlyMs(input);
  if (values.profile && device.caps.timestamps) {
    // One more step with a GPU timestamp around every kernel (each in a pass of its own: slower overall).
    rt.profiling = true;
    await model.trainSurrogate(input);
    await device.device.queue.onSubmittedWorkDone();
    await new Promise((resolve) => setTimeout(resolve, 50));
    rt.profiling = false;
    const profile = rt.takeProfile();
    const total = profile.reduce((a, r) => a + r.ms, 0);
    console.log(`profile of one ${name} ${precision} step: ${total.toFixed(2)} ms of kernel time`);
    for (const r of profile.slice(0, 14))
      console.log(
        `  ${r.kernel.padEnd(48)} ${String(r.calls).padStart(4)} calls ${r.ms.toFixed(3).padStart(9)} ms ${((100 * r.ms) / total).toFixed(1).padStart(5)} %`,
      );
  }
  const params = model.paramCount;
  model.dispose();
  return {
    name,
    precision,
    params,
    batch,
    seqLen,
    stepMs,
    tokensPerSec: (batch * seqLen) / (stepMs / 1000),
    pipelinedMs,
    pipelinedTokensPerSec: (batch * seqLen) / (pipelinedMs / 1000),
    recordMs,
    dispatches,
    firstGradNorm: first.gradNorm,
    skipped: last.skippedSteps,
  };
}
