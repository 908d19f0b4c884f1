/**
 * The learner's two trainers are interchangeable: a run can move between tfjs and the GPU engine through
 * a checkpoint (weights and AdamW moments in the portable layout) and continue with the same update.
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../../../core/rng.js';
import { resolveConfig } from '../../../configs/resolve.js';
import { BYTE_TOKENIZER_VOCAB_SIZE } from '../../../models/tokenizer.js';
import { resolvePolicyConfig } from '../../../models/transformer.js';
import { packRows, type TrainingRow } from '../../../trainer/batch.js';
import { createPolicyTrainer, type PolicyTrainer, type SurrogateMinibatch } from '../../../trainer/policy-trainer.js';
import { requireRuntime } from './helpers.js';

const rt = await requireRuntime();

function config(backend: 'engine' | 'wasm') {
  return resolveConfig(
    {
      name: 'compat',
      backend,
      env: { name: 'toy/guess' },
      model: { dModel: 32, nLayers: 2, nHeads: 4, nKvHeads: 2, maxSeqLen: 64, qkvBias: true },
      optim: { lr: 0.01, gradClip: 0.5, weightDecay: 0.1 },
      engine: { precision: 'f32' },
    },
    {},
  );
}

function rows(seed: number): TrainingRow[] {
  const rng = new Rng(seed);
  return Array.from({ length: 5 }, (_, r) => {
    const n = 12 + r * 3;
    const tokens = Array.from({ length: n }, () => rng.int(BYTE_TOKENIZER_VOCAB_SIZE));
    const isOutput = tokens.map((_, t) => (t > n / 2 ? 1 : 0));
    return {
      rolloutId: `r${r}`,
      segment: { tokens, isOutput, logProbs: tokens.map(() => -3), turn: isOutput.map((m) => (m ? 0 : -1)) },
      advantage: r % 2 ? 0.6 : -0.4,
      policyVersion: 0,
    } as unknown as TrainingRow;
  });
}

async function minibatch(trainer: PolicyTrainer, data: TrainingRow[]): Promise<SurrogateMinibatch> {
  const packed = packRows(
    data,
    data.map((_, i) => i),
  );
  const old = await trainer.rowLogProbs(data, 1);
  const T = packed.batch.seqLen;
  const oldLogProbs = new Float32Array(data.length * T);
  old.forEach((lp, b) =>
    oldLogProbs.set(
      lp.map((x, t) => (packed.mask[b * T + t] ? x - 0.05 : 0)),
      b * T,
    ),
  );
  return {
    packed,
    temperature: 1,
    loss: {
      oldLogProbs,
      mask: packed.mask,
      turnIds: packed.turnIds,
      advantages: packed.advantages,
      divisor: data.length,
      clipLow: 0.8,
      clipHigh: 1.2,
      ratio: 'token',
    },
  };
}

async function step(trainer: PolicyTrainer, data: TrainingRow[]): Promise<number> {
  trainer.startUpdates();
  const result = await trainer.trainMinibatch(await minibatch(trainer, data), 20);
  expect(result.aborted).toBe(false);
  expect(result.applied).toBe(true);
  return result.stats.loss;
}

function maxDiff(a: Record<string, { data: ArrayLike<number> }>, b: Record<string, { data: ArrayLike<number> }>): number {
  let worst = 0;
  for (const name of Object.keys(b)) {
    const x = a[name].data;
    const y = b[name].data;
    for (let k = 0; k < y.length; k++) worst = Math.max(worst, Math.abs(x[k] - y[k]));
  }
  return worst;
}

describe.skipIf(!rt)('tfjs and engine trainers share checkpoints', () => {
  for (const [from, to] of [
    ['wasm', 'engine'],
    ['engine', 'wasm'],
  ] as const) {
    it(`two steps on ${from}, checkpoint, a third on ${to} = three steps on ${from}`, async () => {
      const policyConfig = resolvePolicyConfig({ ...config(from).model, vocabSize: BYTE_TOKENIZER_VOCAB_SIZE });
      const log = () => {};
      const a = (await createPolicyTrainer(config(from), policyConfig, log)).trainer;
      const b = (await createPolicyTrainer(config(to), policyConfig, log)).trainer;
      try {
        expect(a.description.startsWith(from === 'engine' ? 'engine' : 'tfjs')).toBe(true);
        expect(b.description.startsWith(to === 'engine' ? 'engine' : 'tfjs')).toBe(true);
        await step(a, rows(1));
        await step(a, rows(2));
        b.setWeights(await a.getWeights());
        b.setOptimizerState(await a.getOptimizerState());
        // The moments survive the trip exactly (same names, shapes and layout).
        const state = await b.getOptimizerState();
        const original = await a.getOptimizerState();
        expect(state.step).toBe(original.step);
        for (const [key, tensor] of Object.entries(original.tensors)) expect(state.tensors[key].shape).toEqual(tensor.shape);
        expect(maxDiff(state.tensors, original.tensors)).toBe(0);
        const lossA = await step(a, rows(3));
        const lossB = await step(b, rows(3));
        expect(Math.abs(lossA - lossB)).toBeLessThan(1e-5);
        // One Adam step moves each weight by ≤ lr·(1 + ...) ≈ 0.01: the copies agree far below that.
        expect(maxDiff(await b.getWeights(), await a.getWeights())).toBeLessThan(2e-4);
      } finally {
        a.dispose();
        b.dispose();
      }
    });
  }
});

describe.skipIf(!rt)("LOOP's abort on both trainers", () => {
  for (const backend of ['wasm', 'engine'] as const) {
    it(`${backend}: a KL above the limit stops the update and the rest of the iteration, until the next one`, async () => {
      const policyConfig = resolvePolicyConfig({ ...config(backend).model, vocabSize: BYTE_TOKENIZER_VOCAB_SIZE });
      const trainer = (await createPolicyTrainer(config(backend), policyConfig, () => {})).trainer;
      try {
        const before = await trainer.getWeights();
        const state = await trainer.getOptimizerState();
        trainer.startUpdates();
        // approx_kl is ≥ 0 up to rounding here, so a limit of −1 always aborts.
        const stopped = await trainer.trainMinibatch(await minibatch(trainer, rows(4)), -1);
        expect(stopped.aborted).toBe(true);
        expect(stopped.applied).toBe(false);
        if (backend === 'engine') {
          // Sticky within the iteration: a later minibatch with a generous limit is not applied either.
          const later = await trainer.trainMinibatch(await minibatch(trainer, rows(5)), 1e9);
          expect(later.aborted).toBe(true);
        }
        expect(maxDiff(await trainer.getWeights(), before)).toBe(0);
        expect((await trainer.getOptimizerState()).step).toBe(state.step);
        trainer.startUpdates();
        const next = await trainer.trainMinibatch(await minibatch(trainer, rows(6)), 1e9);
        expect(next.aborted).toBe(false);
        expect(next.applied).toBe(true);
        expect((await trainer.getOptimizerState()).step).toBe(state.step + 1);
        expect(maxDiff(await trainer.getWeights(), before)).toBeGreaterThan(0);
      } finally {
        trainer.dispose();
      }
    });
  }
});
