import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../../core/rng.js';
import { selectBackend } from '../../../models/backend.js';
import { generate, type GenerationRequest, type GenerationResult } from '../../../models/sampler.js';
import { TransformerPolicy } from '../../../models/transformer.js';
import { tinyConfig } from './reference.js';

const STOP = 3;
let policy: TransformerPolicy;

beforeAll(async () => {
  await selectBackend('wasm');
  policy = new TransformerPolicy(tinyConfig({ maxSeqLen: 40 }), 17);
});

afterAll(() => policy.dispose());

/** Contexts of lengths 1, 4, 9, 2 and 6 with different budgets; fresh Rngs from fixed seeds. */
function requests(seedBase = 100): GenerationRequest[] {
  const rng = new Rng(1);
  return [1, 4, 9, 2, 6].map((length, i) => ({
    context: Array.from({ length }, () => rng.int(11)),
    maxNewTokens: [12, 7, 15, 3, 10][i],
    rng: new Rng(seedBase + i),
  }));
}

/** policy.logProbs over context + generated tokens, for the generated positions only. */
function rescore(reqs: GenerationRequest[], results: GenerationResult[], temperature: number): number[][] {
  const sequences = reqs.map((r, i) => [...r.context, ...results[i].tokens]);
  const seqLen = Math.max(...sequences.map((s) => s.length));
  const tokens = new Int32Array(sequences.length * seqLen);
  sequences.forEach((s, b) => tokens.set(s, b * seqLen));
  const lp = policy.logProbs({ tokens, batchSize: sequences.length, seqLen }, temperature);
  const rows = lp.arraySync();
  lp.dispose();
  return rows.map((row, b) => row.slice(reqs[b].context.length, sequences[b].length));
}

describe.each(['wasm', 'cpu'] as const)('generate on %s', (backend) => {
  beforeAll(async () => {
    await selectBackend(backend);
  });

  for (const temperature of [1, 0.7]) {
    it(`returns the log-probs that policy.logProbs gives the finished sequences (temperature ${temperature})`, async () => {
      const reqs = requests();
      const before = tf.memory().numTensors;
      const results = await generate(policy, reqs, { temperature, stopTokens: [STOP] });
      expect(tf.memory().numTensors).toBe(before);
      const expected = rescore(reqs, results, temperature);
      results.forEach((result, i) => {
        expect(result.logProbs).toHaveLength(result.tokens.length);
        result.logProbs.forEach((lp, j) => expect(Math.abs(lp - expected[i][j])).toBeLessThan(1e-4));
      });
      // The batch really mixes lengths and outcomes.
      expect(results.some((r) => r.finishReason === 'stop')).toBe(true);
      expect(results.some((r) => r.finishReason === 'length')).toBe(true);
    });
  }

  it('gives identical results when the prefill is split into column chunks', async () => {
    const whole = await generate(policy, requests(), { temperature: 1, stopTokens: [STOP] });
    const chunked = await generate(policy, requests(), { temperature: 1, stopTokens: [STOP], prefillScoreBudget: 60 });
    expect(chunked.map((r) => r.tokens)).toEqual(whole.map((r) => r.tokens));
    chunked.forEach((r, i) => r.logProbs.forEach((lp, j) => expect(lp).toBeCloseTo(whole[i].logProbs[j], 5)));
  });
});

describe('generate', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it('is deterministic in the row seeds and independent of the other rows', async () => {
    const first = await generate(policy, requests(), { temperature: 1, stopTokens: [STOP] });
    const second = await generate(policy, requests(), { temperature: 1, stopTokens: [STOP] });
    expect(second).toEqual(first);
    const reseeded = await generate(policy, requests(500), { temperature: 1, stopTokens: [STOP] });
    expect(reseeded.map((r) => r.tokens)).not.toEqual(first.map((r) => r.tokens));
    // Row 2 alone, with the same seed, samples the same tokens.
    const alone = await generate(policy, [requests()[2]], { temperature: 1, stopTokens: [STOP] });
    expect(alone[0].tokens).toEqual(first[2].tokens);
  });

  it('respects maxNewTokens and ends a row at its first stop token', async () => {
    const reqs = requests();
    const results = await generate(policy, reqs, { temperature: 1, stopTokens: [STOP] });
    results.forEach((result, i) => {
      const stopAt = result.tokens.indexOf(STOP);
      if (result.finishReason === 'stop') {
        expect(stopAt).toBe(result.tokens.length - 1);
        expect(result.tokens.length).toBeLessThanOrEqual(reqs[i].maxNewTokens);
      } else {
        expect(stopAt).toBe(-1);
        expect(result.tokens).toHaveLength(reqs[i].maxNewTokens);
      }
    });
    const zero = await generate(policy, [{ context: [1], maxNewTokens: 0, rng: new Rng(1) }], { temperature: 1, stopTokens: [] });
    expect(zero).toEqual([{ tokens: [], logProbs: [], finishReason: 'length' }]);
    const everyIdStops = Array.from({ length: 11 }, (_, id) => id);
    const immediate = await generate(policy, requests(), { temperature: 1, stopTokens: everyIdStops });
    expect(immediate.every((r) => r.tokens.length === 1 && r.finishReason === 'stop')).toBe(true);
  });

  it('samples by inverse CDF with one rng draw per token (uniform model: token = ⌊u·V⌋)', async () => {
    const uniform = new TransformerPolicy(tinyConfig(), 3);
    const zeros = Object.fromEntries(
      Object.entries(uniform.getWeights()).map(([name, t]) => [name, { ...t, data: new Float32Array(t.data.length) }]),
    );
    uniform.setWeights(zeros);
    const [result] = await generate(uniform, [{ context: [0, 1], maxNewTokens: 20, rng: new Rng(77) }], {
      temperature: 0.5,
      stopTokens: [],
    });
    uniform.dispose();
    const draws = new Rng(77);
    expect(result.tokens).toEqual(Array.from({ length: 20 }, () => Math.floor(draws.next() * 11)));
    result.logProbs.forEach((lp) => expect(lp).toBeCloseTo(-Math.log(11), 5));
  });

  it('rejects contexts that do not leave room for maxNewTokens, empty contexts and bad options', async () => {
    const long = Array.from({ length: 31 }, () => 1);
    await expect(
      generate(policy, [{ context: long, maxNewTokens: 10, rng: new Rng(1) }], { temperature: 1, stopTokens: [] }),
    ).rejects.toThrow(/context of 31 tokens \+ maxNewTokens 10 exceeds the model's maxSeqLen 40; cap the context at 30 tokens/);
    await expect(
      generate(policy, [{ context: long, maxNewTokens: 10, rng: new Rng(1) }], { temperature: 1, stopTokens: [] }),
    ).rejects.toBeInstanceOf(RangeError);
    await expect(generate(policy, [{ context: [], maxNewTokens: 1, rng: new Rng(1) }], { temperature: 1, stopTokens: [] })).rejects.toThrow(
      /context is empty/,
    );
    await expect(
      generate(policy, [{ context: [11], maxNewTokens: 1, rng: new Rng(1) }], { temperature: 1, stopTokens: [] }),
    ).rejects.toThrow(/outside the vocabulary/);
    await expect(generate(policy, requests(), { temperature: 0, stopTokens: [] })).rejects.toThrow(/temperature/);
  });
});
