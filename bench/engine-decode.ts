/**
 * Decoding throughput on horizon's GPU engine: new tokens/s of batched generation (prefill of the
 * contexts, then the KV-cache loop with sampling on the GPU) at the model sizes `small` and `large` of
 * bench/learner.ts and batches 1, 64 and 256; the tfjs sampler of the same model for comparison at
 * batch 1 and 64 (`--tfjs`). The PyTorch loop of bench/reference/decode.py runs in the same GPU call
 * (scripts/gpu/engine.sh).
 *
 *   npx tsx bench/engine-decode.ts --sizes small --batches 1,4 --new 16        (lavapipe: smoke test)
 *   bash .gpu/boot.sh node dist/gpu/engine-decode.mjs --sizes small,large --batches 1,64,256
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Rng } from '../core/rng.js';
import { EngineDecoder } from '../models/engine/decoder.js';
import { openEngineDevice } from '../models/engine/device.js';
import { EngineModel } from '../models/engine/model.js';
import { Runtime } from '../models/engine/runtime.js';
import { resolvePolicyConfig } from '../models/transformer.js';
import { LEARNER_SIZES } from './learner-sizes.js';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: 'small,large' },
    batches: { type: 'string', default: '1,64,256' },
    context: { type: 'string', default: '64' },
    new: { type: 'string', default: '128' },
    precision: { type: 'string', default: 'auto' },
    sync: { type: 'string', default: '16' },
    json: { type: 'string' },
  },
});

const device = await openEngineDevice();
const rt = new Runtime(device);
const context = Number(values.context);
const fresh = Number(values.new);
const rows: string[] = [];
const results: Record<string, unknown>[] = [];
console.log(
  `engine decode on ${device.caps.adapter}${device.caps.software ? ' (software)' : ''}: context ${context} + ${fresh} new tokens per row, temperature 1`,
);
for (const name of values.sizes!.split(',')) {
  const size = LEARNER_SIZES[name as keyof typeof LEARNER_SIZES];
  if (!size) throw new Error(`unknown size ${name}; sizes: ${Object.keys(LEARNER_SIZES).join(', ')}`);
  const config = resolvePolicyConfig({
    dModel: size.dModel,
    nLayers: size.nLayers,
    nHeads: size.nHeads,
    maxSeqLen: context + fresh,
    ropeTheta: 10000,
    normEps: 1e-5,
    qkvBias: false,
    initStd: 0.02,
    vocabSize: 260,
  });
  const model = await EngineModel.create(rt, config, 1, { precision: values.precision as 'auto', training: false });
  for (const batch of values.batches!.split(',').map(Number)) {
    const decoder = await EngineDecoder.create(model, { maxRows: batch, stepsPerSync: Number(values.sync) });
    const rng = new Rng(batch);
    const make = () =>
      Array.from({ length: batch }, (_, b) => ({
        context: Array.from({ length: context }, () => rng.int(256)),
        maxNewTokens: fresh,
        rng: new Rng(b),
      }));
    await decoder.generate(make(), { temperature: 1, stopTokens: [] }); // warm-up: kernels, allocation
    const t0 = performance.now();
    const out = await decoder.generate(make(), { temperature: 1, stopTokens: [] });
    const sec = (performance.now() - t0) / 1000;
    const generated = out.reduce((a, r) => a + r.tokens.length, 0);
    decoder.dispose();
    results.push({ name, batch, context, newTokens: fresh, sec, tokensPerSec: generated / sec, matmuls: model.matmulPath });
    rows.push(
      `| ${name} | ${batch} | ${context} + ${fresh} | ${model.matmulPath} | ${sec.toFixed(3)} | ${Math.round(generated / sec).toLocaleString('en-US')} |`,
    );
    console.log(rows.at(-1));
  }
  model.dispose();
}
console.log('');
console.log('| size | batch | context + new | matmuls | s | tokens / s |');
console.log('|---|---|---|---|---|---|');
for (const r of rows) console.log(r);
if (values.json) writeFileSync(values.json, JSON.stringify({ adapter: device.caps.adapter, results }, null, 2));
process.exit(0);
