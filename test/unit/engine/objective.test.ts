/**
 * The GPU objectives against the tfjs reference itself: `loopLoss` (trainer/algorithms/loop.ts) run inside
 * `tf.variableGrads` on the cpu backend gives the loss, the 8 statistics and ∂L/∂newLogProbs; the engine's
 * `surrogateLoss` must reproduce all of them (the gradient × the loss scale) for every ratio mode, with
 * and without dual clip, importance weights, a KL reference (with and without the penalty), row weights,
 * empty rows, clamped log-ratios and −∞ log-probs off the output tokens. Likewise `nllLoss` vs `sftLoss`.
 */
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import '../../../models/gradients.js';
import { Rng } from '../../../core/rng.js';
import { nllLoss, nllScratchSize, surrogateLoss, surrogateScratchSize, SURROGATE_STATS } from '../../../models/engine/kernels/objective.js';
import { Arena, type Runtime, type Tensor } from '../../../models/engine/runtime.js';
import { loopLoss, type LoopLossInputs, type LoopLossStats, type RatioMode } from '../../../trainer/algorithms/loop.js';
import { sftLoss } from '../../../trainer/algorithms/sft.js';
import { requireRuntime } from './helpers.js';

const rt = await requireRuntime();
await tf.setBackend('cpu');

interface Case {
  B: number;
  T: number;
  ratio: RatioMode;
  seed: number;
  dual?: number;
  iw?: boolean;
  ref?: boolean;
  klCoef?: number;
  rowWeights?: boolean;
  /** Make row 1 (or the only row) have no output token. */
  emptyRow?: boolean;
  /** Put a few log-ratios beyond the ±20 clamp. */
  extreme?: boolean;
  lossScale?: number;
  /** Turn ids: 'runs' (a new turn after each environment gap) or 'random' (interleaved, one output token per turn pattern). */
  turns?: 'runs' | 'random';
}

interface Generated {
  inputs: Omit<LoopLossInputs, 'newLogProbs'>;
  newLogProbs: Float32Array;
  tokenWeights: Float32Array;
  turnSlots: Int32Array;
  maxTurnSlots: number;
  outputTokenCount: number;
  activeRowCount: number;
}

function generate(c: Case): Generated {
  const { B, T } = c;
  const N = B * T;
  const rng = new Rng(c.seed);
  const uni = (lo: number, hi: number) => lo + (hi - lo) * rng.next();
  const mask = new Float32Array(N);
  const turnIds = new Int32Array(N).fill(-1);
  const oldLp = new Float32Array(N);
  const newLp = new Float32Array(N);
  const deltaScale = c.ratio === 'token' ? 1 : 0.25;
  for (let b = 0; b < B; b++) {
    let turn = -1;
    let previous = 0;
    const empty = c.emptyRow === true && b === Math.min(1, B - 1);
    for (let t = 0; t < T; t++) {
      const i = b * T + t;
      const out = !empty && rng.next() < 0.65 ? 1 : 0;
      mask[i] = out;
      if (out) {
        if (c.turns === 'random') turn = rng.int(Math.max(1, Math.floor(T / 2)));
        else if (previous === 0) turn++;
        turnIds[i] = turn;
      } else {
        turnIds[i] = rng.int(3) - 1; // garbage off the output tokens: must be ignored
      }
      previous = out;
      oldLp[i] = uni(-4, -0.05);
      const pick = rng.next();
      const delta = pick < 0.7 ? uni(-0.15, 0.15) : pick < 0.9 ? uni(-0.6, 0.6) : uni(-2.5, 2.5);
      newLp[i] = oldLp[i] + delta * deltaScale;
      if (!out && rng.next() < 0.15) newLp[i] = -Infinity;
    }
  }
  if (c.extreme) {
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        const i = b * T + t;
        if (mask[i] > 0) {
          newLp[i] = oldLp[i] + (b % 2 === 0 ? 25 : -25);
          break;
        }
      }
    }
  }
  const advantages = Float32Array.from({ length: B }, (_, b) => (b === 2 ? 0 : uni(-1, 1)));
  const importanceWeights = c.iw ? Float32Array.from(mask, (m) => (m > 0 ? uni(0.3, 2) : 1)) : undefined;
  let refLogProbs: Float32Array | undefined;
  if (c.ref) {
    refLogProbs = Float32Array.from(newLp, (x, i) => (mask[i] > 0 ? x + uni(-1, 1) : uni(-5, 0)));
    if (c.extreme) {
      const i = mask.findIndex((m) => m > 0);
      if (i >= 0) refLogProbs[i] = newLp[i] + 30;
    }
  }
  const rowWeights = c.rowWeights ? Float32Array.from({ length: B }, () => uni(0.01, 0.2)) : undefined;
  const divisor = B + 1;

  // The same constants prepareLossInputs derives (the engine receives them precomputed).
  const tokenWeights = new Float32Array(N);
  const turnSlots = new Int32Array(N).fill(-1);
  let outputTokenCount = 0;
  let activeRowCount = 0;
  let maxTurnSlots = 1;
  for (let b = 0; b < B; b++) {
    let count = 0;
    const slots = new Map<number, number>();
    for (let t = 0; t < T; t++) {
      const i = b * T + t;
      if (!(mask[i] > 0)) continue;
      count++;
      let slot = slots.get(turnIds[i]);
      if (slot === undefined) {
        slot = slots.size;
        slots.set(turnIds[i], slot);
      }
      turnSlots[i] = slot;
    }
    maxTurnSlots = Math.max(maxTurnSlots, slots.size);
    if (count === 0) continue;
    outputTokenCount += count;
    activeRowCount++;
    const weight = rowWeights ? rowWeights[b] : 1 / (divisor * count);
    for (let t = 0; t < T; t++) if (mask[b * T + t] > 0) tokenWeights[b * T + t] = weight;
  }
  // Garbage slots off the output tokens must be ignored too.
  for (let i = 0; i < N; i++) if (!(mask[i] > 0) && i % 3 === 0) turnSlots[i] = 0;
  return {
    inputs: {
      oldLogProbs: oldLp,
      mask,
      turnIds,
      advantages,
      divisor,
      rowWeights,
      dualClip: c.dual,
      clipLow: 0.8,
      clipHigh: 1.2,
      ratio: c.ratio,
      refLogProbs,
      klCoef: c.klCoef,
      importanceWeights,
    },
    newLogProbs: newLp,
    tokenWeights,
    turnSlots,
    maxTurnSlots,
    outputTokenCount,
    activeRowCount,
  };
}

interface Outcome {
  stats: number[];
  grad: Float32Array;
}

function reference(g: Generated, B: number, T: number): Outcome {
  const variable = tf.variable(tf.tensor2d(g.newLogProbs, [B, T]));
  let stats: LoopLossStats | undefined;
  const { value, grads } = tf.variableGrads(() => {
    const out = loopLoss({ ...g.inputs, newLogProbs: variable as unknown as tf.Tensor2D });
    stats = out.stats;
    return out.loss;
  }, [variable]);
  const names = SURROGATE_STATS as readonly (keyof LoopLossStats)[];
  const outcome: Outcome = {
    stats: names.map((name) => stats![name].dataSync()[0]),
    grad: new Float32Array(grads[variable.name].dataSync()),
  };
  expect(outcome.stats[0]).toBe(value.dataSync()[0]);
  tf.dispose([value, ...Object.values(grads), ...Object.values(stats!), variable]);
  return outcome;
}

function alloc(arena: Arena, label: string, data: Float32Array | Int32Array): Tensor {
  const t = arena.alloc(label, [data.length], data instanceof Int32Array ? 'i32' : 'f32');
  rt!.write(t, data);
  return t;
}

async function engine(runtime: Runtime, g: Generated, c: Case): Promise<Outcome & { scaled: Float32Array }> {
  const { B, T } = c;
  const N = B * T;
  const scale = c.lossScale ?? 1;
  const U = c.ratio === 'turn' ? g.maxTurnSlots : 0;
  const scratchSize = surrogateScratchSize(B, T, U);
  const arena = new Arena(runtime.engine, 'objective test', 4 * (12 * N + 2 * B + scratchSize + 64) + 16 * 256);
  const inputs = g.inputs;
  const stats = arena.alloc('stats', [8]);
  const dNew = arena.alloc('dnew', [N]);
  rt!.write(dNew, new Float32Array(N).fill(Number.NaN));
  const args = {
    rows: B,
    cols: T,
    newLogProbs: alloc(arena, 'new', g.newLogProbs),
    oldLogProbs: alloc(arena, 'old', inputs.oldLogProbs),
    mask: alloc(arena, 'mask', inputs.mask),
    tokenWeights: alloc(arena, 'weights', g.tokenWeights),
    advantages: alloc(arena, 'advantages', inputs.advantages),
    importanceWeights: inputs.importanceWeights ? alloc(arena, 'iw', inputs.importanceWeights) : undefined,
    refLogProbs: inputs.refLogProbs ? alloc(arena, 'ref', inputs.refLogProbs) : undefined,
    turnSlots: c.ratio === 'turn' ? alloc(arena, 'slots', g.turnSlots) : undefined,
    maxTurnSlots: U || undefined,
    ratio: c.ratio,
    clipLow: inputs.clipLow,
    clipHigh: inputs.clipHigh,
    dualClip: inputs.dualClip,
    klCoef: inputs.klCoef,
    outputTokenCount: g.outputTokenCount,
    activeRowCount: g.activeRowCount,
    lossScale: alloc(arena, 'scale', Float32Array.from([scale, 7, 7, 7])),
    dNewLogProbs: dNew,
    stats,
    scratch: alloc(arena, 'scratch', new Float32Array(scratchSize).fill(Number.NaN)),
  };
  const rec = runtime.record();
  await surrogateLoss(runtime, rec, args);
  rec.submit();
  const scaled = await runtime.readNumbers(dNew);
  const out = { stats: Array.from(await runtime.readNumbers(stats)), grad: scaled.map((x) => x / scale), scaled };
  runtime.forgetBuffer(arena.id);
  arena.destroy();
  return out;
}

/** Compares the engine with tfjs; returns the worst relative errors (stats, gradient). */
async function compare(c: Case): Promise<{ stats: number; grad: number; want: number[] }> {
  const g = generate(c);
  const want = reference(g, c.B, c.T);
  const got = await engine(rt!, g, c);
  const label = JSON.stringify(c);
  let worstStat = 0;
  SURROGATE_STATS.forEach((name, k) => {
    const err = Math.abs(got.stats[k] - want.stats[k]) / (Math.abs(want.stats[k]) + 1e-2);
    worstStat = Math.max(worstStat, err);
    expect(err, `${name}: engine ${got.stats[k]} vs tfjs ${want.stats[k]} in ${label}`).toBeLessThan(1e-4);
  });
  let maxRef = 0;
  for (const x of want.grad) maxRef = Math.max(maxRef, Math.abs(x));
  let worstGrad = 0;
  for (let i = 0; i < want.grad.length; i++) {
    if (!(g.inputs.mask[i] > 0)) {
      expect(got.scaled[i] + 0, `gradient off the output tokens at ${i} in ${label}`).toBe(0);
      continue;
    }
    const err = Math.abs(got.grad[i] - want.grad[i]) / (Math.abs(want.grad[i]) + 1e-2 * maxRef + 1e-30);
    worstGrad = Math.max(worstGrad, err);
    expect(err, `gradient at ${i}: engine ${got.grad[i]} vs tfjs ${want.grad[i]} in ${label}`).toBeLessThan(1e-4);
  }
  return { stats: worstStat, grad: worstGrad, want: want.stats };
}

const SHAPES: [number, number][] = [1, 3, 9].flatMap((B) => [1, 5, 67].map((T) => [B, T] as [number, number]));
const MODES: RatioMode[] = ['token', 'turn', 'trajectory'];

describe.skipIf(!rt)('engine surrogate objective vs loopLoss (tfjs cpu)', () => {
  for (const ratio of MODES) {
    it(`${ratio} ratio: every shape B ∈ {1,3,9} × T ∈ {1,5,67}, options varied`, async () => {
      let worst = { stats: 0, grad: 0 };
      for (const [k, [B, T]] of SHAPES.entries()) {
        const ref = k % 3 !== 0;
        const result = await compare({
          B,
          T,
          ratio,
          seed: 100 + k,
          dual: k % 2 === 0 ? 3 : undefined,
          iw: (k >> 1) % 2 === 1,
          ref,
          klCoef: ref && k % 4 < 2 ? 0.05 : undefined,
          rowWeights: k % 5 === 1,
          emptyRow: B > 1 || k === 1,
          extreme: k % 4 === 3,
          lossScale: k % 2 === 1 ? 1024 : 1,
        });
        worst = { stats: Math.max(worst.stats, result.stats), grad: Math.max(worst.grad, result.grad) };
      }
      console.log(`${ratio}: worst relative error stats ${worst.stats.toExponential(2)}, gradient ${worst.grad.toExponential(2)}`);
    });

    it(`${ratio} ratio: all 16 combinations of dual clip, importance weights, KL reference/penalty, row weights (B=3, T=67)`, async () => {
      // What the cases exercised (so the comparison cannot pass vacuously): clipped tokens, dual-clipped
      // tokens, a ratio beyond e^20 (the clamp), a KL penalty.
      const seen = { clipfrac: 0, dual: 0, ratioMax: 0, kl: 0 };
      for (let bits = 0; bits < 16; bits++) {
        const { want } = await compare({
          B: 3,
          T: 67,
          ratio,
          seed: 500 + bits,
          dual: bits & 1 ? 2.5 : undefined,
          iw: (bits & 2) !== 0,
          ref: (bits & 4) !== 0,
          klCoef: bits & 4 ? (bits & 8 ? 0.1 : 0) : undefined,
          rowWeights: (bits & 8) !== 0,
          emptyRow: bits % 3 === 0,
          extreme: bits % 5 === 2,
          lossScale: 1024,
        });
        seen.clipfrac = Math.max(seen.clipfrac, want[2]);
        seen.dual = Math.max(seen.dual, want[3]);
        seen.ratioMax = Math.max(seen.ratioMax, want[6]);
        seen.kl = Math.max(seen.kl, want[7]);
      }
      expect(seen.clipfrac).toBeGreaterThan(0);
      expect(seen.dual).toBeGreaterThan(0);
      expect(seen.ratioMax).toBeGreaterThan(Math.exp(19.9));
      expect(seen.kl).toBeGreaterThan(0);
    });
  }

  it('turn ratio with more than 256 interleaved turns per row (several slot chunks and tiles)', async () => {
    await compare({ B: 2, T: 700, ratio: 'turn', seed: 9, turns: 'random', dual: 3, ref: true, klCoef: 0.02, lossScale: 256 });
    await compare({ B: 3, T: 300, ratio: 'turn', seed: 10, turns: 'runs', iw: true, lossScale: 1 });
  });

  it('a minibatch without any output token gives zero loss, gradient and statistics like tfjs', async () => {
    for (const ratio of MODES) await compare({ B: 1, T: 5, ratio, seed: 3, emptyRow: true, ref: true, klCoef: 0.1 });
  });

  it('is deterministic (bitwise equal over runs)', async () => {
    const c: Case = { B: 9, T: 67, ratio: 'turn', seed: 77, dual: 3, iw: true, ref: true, klCoef: 0.1, lossScale: 1024 };
    const g = generate(c);
    const a = await engine(rt!, g, c);
    const b = await engine(rt!, g, c);
    expect(Array.from(a.scaled)).toEqual(Array.from(b.scaled));
    expect(a.stats).toEqual(b.stats);
  });

  it('refuses mismatched shapes and missing turn slots with RangeError', async () => {
    const runtime = rt!;
    const arena = new Arena(runtime.engine, 'objective refusals', 1 << 16);
    const t = (n: number, dtype: 'f32' | 'i32' = 'f32') => arena.alloc('t', [n], dtype);
    const base = {
      rows: 2,
      cols: 3,
      newLogProbs: t(6),
      oldLogProbs: t(6),
      mask: t(6),
      tokenWeights: t(6),
      advantages: t(2),
      ratio: 'token' as const,
      clipLow: 0.8,
      clipHigh: 1.2,
      outputTokenCount: 3,
      activeRowCount: 1,
      lossScale: t(1),
      dNewLogProbs: t(6),
      stats: t(8),
      scratch: t(surrogateScratchSize(2, 3, 4)),
    };
    const rec = runtime.record();
    await expect(surrogateLoss(runtime, rec, { ...base, mask: t(5) })).rejects.toThrow(RangeError);
    await expect(surrogateLoss(runtime, rec, { ...base, advantages: t(3) })).rejects.toThrow(/advantages/);
    await expect(surrogateLoss(runtime, rec, { ...base, ratio: 'turn' })).rejects.toThrow(/turnSlots/);
    await expect(surrogateLoss(runtime, rec, { ...base, ratio: 'turn', turnSlots: t(6, 'i32') })).rejects.toThrow(/maxTurnSlots/);
    await expect(surrogateLoss(runtime, rec, { ...base, klCoef: 0.1 })).rejects.toThrow(/refLogProbs/);
    await expect(surrogateLoss(runtime, rec, { ...base, scratch: t(4) })).rejects.toThrow(/scratch/);
    await expect(surrogateLoss(runtime, rec, { ...base, dNewLogProbs: base.newLogProbs })).rejects.toThrow(/overlaps/);
    rec.submit();
    arena.destroy();
  });
});

describe.skipIf(!rt)('engine NLL vs sftLoss (tfjs cpu)', () => {
  it('matches the loss and the gradient × loss scale, zero off the mask', async () => {
    const runtime = rt!;
    for (const [k, [B, T]] of [...SHAPES, [4, 600] as [number, number]].entries()) {
      const N = B * T;
      const rng = new Rng(900 + k);
      const mask = Float32Array.from({ length: N }, () => (rng.next() < 0.6 ? 1 : 0));
      mask[0] = 1;
      const lp = Float32Array.from(mask, (m) => (m > 0 ? -5 * rng.next() : rng.next() < 0.3 ? -Infinity : -rng.next()));
      const count = mask.reduce((a, m) => a + m, 0);
      const variable = tf.variable(tf.tensor2d(lp, [B, T]));
      const { value, grads } = tf.variableGrads(() => sftLoss(variable as unknown as tf.Tensor2D, mask), [variable]);
      const wantLoss = value.dataSync()[0];
      const wantGrad = grads[variable.name].dataSync();

      const scale = k % 2 === 0 ? 1024 : 1;
      const arena = new Arena(runtime.engine, 'nll test', 4 * (4 * N + nllScratchSize(B) + 16) + 8 * 256);
      const newLogProbs = alloc(arena, 'lp', lp);
      const maskT = alloc(arena, 'mask', mask);
      const lossScale = alloc(arena, 'scale', Float32Array.from([scale]));
      const dNew = alloc(arena, 'dnew', new Float32Array(N).fill(Number.NaN));
      const stats = arena.alloc('stats', [1]);
      const scratch = arena.alloc('scratch', [nllScratchSize(B)]);
      const rec = runtime.record();
      await nllLoss(runtime, rec, {
        rows: B,
        cols: T,
        newLogProbs,
        mask: maskT,
        outputTokenCount: count,
        lossScale,
        dNewLogProbs: dNew,
        stats,
        scratch,
      });
      rec.submit();
      const gotGrad = await runtime.readNumbers(dNew);
      const gotLoss = (await runtime.readNumbers(stats))[0];
      expect(Math.abs(gotLoss - wantLoss) / Math.abs(wantLoss)).toBeLessThan(1e-5);
      for (let i = 0; i < N; i++) expect(gotGrad[i] + 0, `gradient at ${i}`).toBe(wantGrad[i] * scale + 0);
      tf.dispose([value, ...Object.values(grads), variable]);
      runtime.forgetBuffer(arena.id);
      arena.destroy();
    }
  });

  it('refuses a batch without output tokens', async () => {
    const runtime = rt!;
    const arena = new Arena(runtime.engine, 'nll refusals', 1 << 14);
    const t = (n: number) => arena.alloc('t', [n]);
    const rec = runtime.record();
    const args = {
      rows: 1,
      cols: 4,
      newLogProbs: t(4),
      mask: t(4),
      outputTokenCount: 0,
      lossScale: t(1),
      dNewLogProbs: t(4),
      stats: t(1),
      scratch: t(1),
    };
    await expect(nllLoss(runtime, rec, args)).rejects.toThrow(/outputTokenCount/);
    await expect(nllLoss(runtime, rec, { ...args, outputTokenCount: 2, mask: t(3) })).rejects.toThrow(/mask/);
    rec.submit();
    arena.destroy();
  });
});
