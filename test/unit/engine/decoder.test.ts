/**
 * Decoding on the engine against the tfjs sampler (models/sampler.ts) on the same weights and random
 * streams: the same tokens, log-probs within 1e-4, the streams advanced by one draw per token; the
 * learner's recomputed log-probs equal the decoder's (what keeps PPO ratios honest); more requests than
 * slots are served as rows finish (continuous batching) with the same results.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../../core/rng.js';
import { selectBackend } from '../../../models/backend.js';
import { EngineDecoder } from '../../../models/engine/decoder.js';
import { EngineModel } from '../../../models/engine/model.js';
import { generate, type GenerationRequest } from '../../../models/sampler.js';
import { TransformerPolicy, resolvePolicyConfig } from '../../../models/transformer.js';
import { requireRuntime } from './helpers.js';

const rt = await requireRuntime();
const config = resolvePolicyConfig({
  dModel: 32,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  maxSeqLen: 96,
  ropeTheta: 10000,
  normEps: 1e-5,
  qkvBias: true,
  initStd: 0.3,
  vocabSize: 23,
});
const STOP = 5;

function requests(count: number, seed: number): GenerationRequest[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, (_, i) => ({
    context: Array.from({ length: 1 + ((i * 7) % 13) }, () => rng.int(23)),
    maxNewTokens: 3 + ((i * 5) % 17),
    rng: new Rng(1000 + i),
  }));
}

describe.skipIf(!rt)('engine decoder vs the tfjs sampler', () => {
  let policy: TransformerPolicy;
  let model: EngineModel;
  beforeAll(async () => {
    await selectBackend('wasm');
    policy = new TransformerPolicy(config, 8);
    model = await EngineModel.create(rt!, config, 8, { precision: 'f32', training: false });
  });

  it('samples the same tokens with the same log-probs and advances each stream once per token', async () => {
    const reference = requests(9, 1);
    const engine = requests(9, 1);
    const expected = await generate(policy, reference, { temperature: 0.8, stopTokens: [STOP] });
    const decoder = await EngineDecoder.create(model, { maxRows: 16, stepsPerSync: 4 });
    try {
      const actual = await decoder.generate(engine, { temperature: 0.8, stopTokens: [STOP] });
      expect(actual.map((r) => r.tokens)).toEqual(expected.map((r) => r.tokens));
      expect(actual.map((r) => r.finishReason)).toEqual(expected.map((r) => r.finishReason));
      expect(expected.some((r) => r.finishReason === 'stop') && expected.some((r) => r.finishReason === 'length')).toBe(true);
      actual.forEach((r, i) => r.logProbs.forEach((lp, t) => expect(Math.abs(lp - expected[i].logProbs[t])).toBeLessThan(1e-4)));
      engine.forEach((r, i) => expect(r.rng.state()).toEqual(reference[i].rng.state()));
    } finally {
      decoder.dispose();
    }
  });

  it("the learner's recomputed log-probs equal the decoder's", async () => {
    const reqs = requests(5, 2);
    const decoder = await EngineDecoder.create(model, { maxRows: 8 });
    try {
      const results = await decoder.generate(reqs, { temperature: 1, stopTokens: [] });
      for (let i = 0; i < reqs.length; i++) {
        const tokens = [...reqs[i].context, ...results[i].tokens];
        const lp = await model.logProbs({ tokens: Int32Array.from(tokens), batchSize: 1, seqLen: tokens.length });
        results[i].logProbs.forEach((x, t) => expect(Math.abs(lp[reqs[i].context.length + t] - x)).toBeLessThan(1e-4));
      }
    } finally {
      decoder.dispose();
    }
  });

  it('serves more requests than slots as rows finish, with the same results', async () => {
    const wide = await EngineDecoder.create(model, { maxRows: 32, stepsPerSync: 3 });
    const narrow = await EngineDecoder.create(model, { maxRows: 3, stepsPerSync: 5 });
    try {
      const a = await wide.generate(requests(11, 3), { temperature: 1, stopTokens: [STOP] });
      const b = await narrow.generate(requests(11, 3), { temperature: 1, stopTokens: [STOP] });
      expect(b.map((r) => r.tokens)).toEqual(a.map((r) => r.tokens));
      b.forEach((r, i) => r.logProbs.forEach((lp, t) => expect(Math.abs(lp - a[i].logProbs[t])).toBeLessThan(1e-5)));
    } finally {
      wide.dispose();
      narrow.dispose();
    }
  });

  it('with an untied output layer too', async () => {
    const untied = resolvePolicyConfig({ ...config, tieEmbeddings: false });
    const reference = new TransformerPolicy(untied, 9, { scope: 'untied' });
    const engineModel = await EngineModel.create(rt!, untied, 9, { precision: 'f32', training: false });
    const decoder = await EngineDecoder.create(engineModel, { maxRows: 8 });
    try {
      expect(reference.parameterNames.at(-1)).toBe('lm_head.weight');
      const expected = await generate(reference, requests(4, 7), { temperature: 1, stopTokens: [STOP] });
      const actual = await decoder.generate(requests(4, 7), { temperature: 1, stopTokens: [STOP] });
      expect(actual.map((r) => r.tokens)).toEqual(expected.map((r) => r.tokens));
    } finally {
      decoder.dispose();
      engineModel.dispose();
      reference.dispose();
    }
  });

  it('a deep model whose prefills and windows exceed one submit splits them, with the same tokens', async () => {
    // 80 layers: ~1448 dispatches per step, so one-row prefills (rows joining one by one) and a window
    // of 16 steps cannot share one recorder.
    const deep = resolvePolicyConfig({
      dModel: 8,
      nLayers: 80,
      nHeads: 2,
      maxSeqLen: 64,
      ropeTheta: 10000,
      normEps: 1e-5,
      qkvBias: false,
      initStd: 0.3,
      vocabSize: 23,
    });
    const reference = new TransformerPolicy(deep, 5, { scope: 'deep' });
    const engineModel = await EngineModel.create(rt!, deep, 5, { precision: 'f32', training: false });
    const decoder = await EngineDecoder.create(engineModel, { maxRows: 2, stepsPerSync: 16 });
    try {
      const expected = await generate(reference, requests(8, 11), { temperature: 1, stopTokens: [STOP] });
      const actual = await decoder.generate(requests(8, 11), { temperature: 1, stopTokens: [STOP] });
      expect(actual.map((r) => r.tokens)).toEqual(expected.map((r) => r.tokens));
    } finally {
      decoder.dispose();
      engineModel.dispose();
      reference.dispose();
    }
  });

  it('rejects what the tfjs sampler rejects, with its messages', async () => {
    const decoder = await EngineDecoder.create(model, { maxRows: 2 });
    try {
      await expect(
        decoder.generate([{ context: [], maxNewTokens: 2, rng: new Rng(1) }], { temperature: 1, stopTokens: [] }),
      ).rejects.toThrow(/context is empty/);
      await expect(
        decoder.generate([{ context: [99], maxNewTokens: 2, rng: new Rng(1) }], { temperature: 1, stopTokens: [] }),
      ).rejects.toThrow(/outside the vocabulary/);
      await expect(
        decoder.generate([{ context: [1, 2], maxNewTokens: 95, rng: new Rng(1) }], { temperature: 1, stopTokens: [] }),
      ).rejects.toThrow(/exceeds the model's maxSeqLen 96/);
      const none = await decoder.generate([{ context: [1], maxNewTokens: 0, rng: new Rng(1) }], { temperature: 1, stopTokens: [] });
      expect(none).toEqual([{ tokens: [], logProbs: [], finishReason: 'length' }]);
    } finally {
      decoder.dispose();
    }
  });
});
