/**
 * The GPU optimizer step: sumSquares against a float64 sum, stepDecision's loss-scale bookkeeping for
 * finite / infinite / NaN norms, and AdamW (with loss scaling and active clipping) against the tfjs
 * `AdamW` class and `clipGlobalNorm` of trainer/optim/adamw.ts on the cpu backend.
 */
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { adamw, stepDecision, sumSquares, sumSquaresScratchSize } from '../../../models/engine/kernels/optim.js';
import { Arena, type Runtime, type Tensor } from '../../../models/engine/runtime.js';
import { AdamW, clipGlobalNorm, type AdamWOptions } from '../../../trainer/optim/adamw.js';
import { maxRelativeError, randomArray, requireRuntime } from './helpers.js';

const rt = await requireRuntime();
await tf.setBackend('cpu');

function upload(runtime: Runtime, arena: Arena, label: string, data: Float32Array): Tensor {
  const t = arena.alloc(label, [data.length]);
  runtime.write(t, data);
  return t;
}

function sumSquares64(chunks: Float32Array[], counts: number[]): number {
  let s = 0;
  chunks.forEach((x, k) => {
    for (let j = 0; j < counts[k]; j++) s += x[j] * x[j];
  });
  return s;
}

async function gpuSumSquares(runtime: Runtime, chunks: Float32Array[], counts: number[]): Promise<number> {
  const bytes = chunks.reduce((a, x) => a + x.length * 4 + 256, 0) + sumSquaresScratchSize(counts) * 4 + 1024;
  const arena = new Arena(runtime.engine, 'sumsq test', bytes);
  const x = chunks.map((c, k) => upload(runtime, arena, `x${k}`, c));
  const partial = upload(runtime, arena, 'partial', new Float32Array(sumSquaresScratchSize(counts)).fill(Number.NaN));
  const out = arena.alloc('out', [1]);
  const rec = runtime.record();
  await sumSquares(runtime, rec, { x, counts, partial, out });
  rec.submit();
  const value = (await runtime.readNumbers(out))[0];
  runtime.forgetBuffer(arena.id);
  arena.destroy();
  return value;
}

describe.skipIf(!rt)('engine sumSquares', () => {
  it('matches a float64 sum for one chunk of odd and block-edge sizes up to ~1e6', async () => {
    for (const [k, n] of [1, 3, 17, 255, 4095, 4096, 4097, 65537, 1_000_003].entries()) {
      const x = randomArray(n, 11 + k, -3, 3);
      const got = await gpuSumSquares(rt!, [x], [n]);
      const want = sumSquares64([x], [n]);
      expect(Math.abs(got - want) / want, `n = ${n}: ${got} vs ${want}`).toBeLessThan(1e-5);
    }
  });

  it('sums several chunks, each only up to its count, deterministically', async () => {
    const counts = [5, 3 * 4096 + 1, 130, 999_999];
    // Each tensor is longer than its count; the tail (huge values) must be ignored.
    const chunks = counts.map((n, k) => {
      const x = new Float32Array(n + 7).fill(1e30);
      x.set(randomArray(n, 40 + k, -1, 1));
      return x;
    });
    const want = sumSquares64(chunks, counts);
    const a = await gpuSumSquares(rt!, chunks, counts);
    const b = await gpuSumSquares(rt!, chunks, counts);
    expect(Math.abs(a - want) / want).toBeLessThan(1e-5);
    expect(a).toBe(b);
  });

  it('is infinite / NaN when an element is', async () => {
    const x = randomArray(5000, 3);
    x[4321] = Number.POSITIVE_INFINITY;
    expect(await gpuSumSquares(rt!, [x], [5000])).toBe(Number.POSITIVE_INFINITY);
    x[4321] = Number.NaN;
    expect(await gpuSumSquares(rt!, [x], [5000])).toBeNaN();
  });

  it('refuses a partial buffer that is too small', async () => {
    const runtime = rt!;
    const arena = new Arena(runtime.engine, 'sumsq refusal', 1 << 16);
    const rec = runtime.record();
    await expect(
      sumSquares(runtime, rec, {
        x: [arena.alloc('x', [9000])],
        counts: [9000],
        partial: arena.alloc('p', [2]),
        out: arena.alloc('o', [1]),
      }),
    ).rejects.toThrow(/partial/);
    await expect(
      sumSquares(runtime, rec, { x: [arena.alloc('x', [10])], counts: [11], partial: arena.alloc('p', [2]), out: arena.alloc('o', [1]) }),
    ).rejects.toThrow(RangeError);
    rec.submit();
    arena.destroy();
  });
});

describe.skipIf(!rt)('engine stepDecision', () => {
  /** Runs one decision on `sumSq` from `state`; returns [info, state after]. */
  async function decide(
    sumSq: number,
    state: number[],
    opts: { maxNorm: number; dynamic: boolean; growthInterval: number },
  ): Promise<[number[], number[]]> {
    const runtime = rt!;
    const arena = new Arena(runtime.engine, 'decision test', 4096);
    const s = upload(runtime, arena, 'sumsq', Float32Array.from([sumSq]));
    const st = upload(runtime, arena, 'state', Float32Array.from(state));
    const info = upload(runtime, arena, 'info', new Float32Array(4).fill(-7));
    const rec = runtime.record();
    await stepDecision(runtime, rec, { sumSq: s, state: st, info, ...opts });
    rec.submit();
    const out: [number[], number[]] = [Array.from(await runtime.readNumbers(info)), Array.from(await runtime.readNumbers(st))];
    runtime.forgetBuffer(arena.id);
    arena.destroy();
    return out;
  }
  const dyn = { maxNorm: 5, dynamic: true, growthInterval: 3 };

  it('applies a finite step: unscaled norm, no clip below maxNorm, clip = maxNorm/norm above it', async () => {
    // Σg² = (2·1024)² → ‖g/σ‖ = 2.
    expect(await decide((2 * 1024) ** 2, [1024, 0, 4, 9], dyn)).toEqual([
      [2, 1, 1, 1024],
      [1024, 1, 4, 10],
    ]);
    const [info, state] = await decide((20 * 1024) ** 2, [1024, 1, 0, 2], dyn);
    expect(info[0]).toBe(20);
    expect(info[1]).toBeCloseTo(0.25, 7);
    expect(info.slice(2)).toEqual([1, 1024]);
    expect(state).toEqual([1024, 2, 0, 3]);
    // maxNorm 0: no clipping.
    expect((await decide(400, [1, 0, 0, 0], { ...dyn, maxNorm: 0 }))[0]).toEqual([20, 1, 1, 1]);
  });

  it('grows the scale after growthInterval good steps (dynamic only, capped at 2^24)', async () => {
    expect((await decide(1, [1024, 2, 0, 5], dyn))[1]).toEqual([2048, 0, 0, 6]);
    expect((await decide(1, [2 ** 24, 2, 0, 5], dyn))[1]).toEqual([2 ** 24, 0, 0, 6]);
    expect((await decide(1, [1024, 2, 0, 5], { ...dyn, dynamic: false }))[1]).toEqual([1024, 3, 0, 6]);
  });

  it('skips a step whose norm is infinite or NaN and halves the scale (not below 1)', async () => {
    for (const bad of [Number.POSITIVE_INFINITY, Number.NaN]) {
      const [info, state] = await decide(bad, [1024, 2, 1, 7], dyn);
      expect(info.slice(1)).toEqual([1, 0, 1024]);
      expect(state).toEqual([512, 0, 2, 7]);
      expect((await decide(bad, [1, 0, 0, 0], dyn))[1]).toEqual([1, 0, 1, 0]);
    }
  });
});

describe.skipIf(!rt)('engine AdamW vs trainer/optim AdamW + clipGlobalNorm (tfjs cpu)', () => {
  it('matches 3 steps with loss scale 1024 (growing to 2048) and active clipping; an overflowing step changes nothing and halves the scale; the next step matches again', async () => {
    const runtime = rt!;
    const shapes = [[37, 29], [130]];
    const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
    const options: AdamWOptions = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };
    const maxNorm = 5;
    const init = sizes.map((n, k) => randomArray(n, 70 + k, -1, 1));

    // tfjs reference.
    const variables = init.map((x, k) => tf.variable(tf.tensor(x, shapes[k]), true, `w${k}`));
    const reference = new AdamW(variables, options);

    // Engine: one arena, four tensors per chunk.
    const bytes = sizes.reduce((a, n) => a + 4 * (n * 4 + 4 * 64), 0) + 64 * 1024;
    const arena = new Arena(runtime.engine, 'adamw test', bytes);
    const params = init.map((x, k) => upload(runtime, arena, `p${k}`, x));
    const grads = sizes.map((n, k) => arena.alloc(`g${k}`, [n]));
    const m = sizes.map((n, k) => upload(runtime, arena, `m${k}`, new Float32Array(n)));
    const v = sizes.map((n, k) => upload(runtime, arena, `v${k}`, new Float32Array(n)));
    const partial = arena.alloc('partial', [sumSquaresScratchSize(sizes)]);
    const sumSq = arena.alloc('sumsq', [1]);
    const info = arena.alloc('info', [4]);
    const state = upload(runtime, arena, 'state', Float32Array.from([1024, 0, 0, 0]));

    const step = async (): Promise<void> => {
      const rec = runtime.record();
      await sumSquares(runtime, rec, { x: grads, counts: sizes, partial, out: sumSq });
      await stepDecision(runtime, rec, { sumSq, state, info, maxNorm, dynamic: true, growthInterval: 2 });
      for (let k = 0; k < sizes.length; k++) {
        await adamw(runtime, rec, { params: params[k], grads: grads[k], m: m[k], v: v[k], count: sizes[k], info, state, ...options });
      }
      rec.submit();
    };
    const compareAll = async (label: string): Promise<number> => {
      let worst = 0;
      const moments = (await reference.getState()).tensors;
      for (let k = 0; k < sizes.length; k++) {
        const pairs: [Float32Array, Float32Array][] = [
          [await runtime.readNumbers(params[k]), variables[k].dataSync() as Float32Array],
          [await runtime.readNumbers(m[k]), moments[`m:w${k}`].data as Float32Array],
          [await runtime.readNumbers(v[k]), moments[`v:w${k}`].data as Float32Array],
        ];
        for (const [got, want] of pairs) {
          const maxAbs = want.reduce((a, x) => Math.max(a, Math.abs(x)), 0);
          const err = maxRelativeError(got, want, 1e-2 * maxAbs);
          worst = Math.max(worst, err);
          expect(err, `${label}, chunk ${k}`).toBeLessThan(1e-5);
        }
      }
      return worst;
    };

    let worst = 0;
    const normsSeen: number[] = [];
    const referenceStep = async (trueGrads: Float32Array[]): Promise<number> => {
      const g = Object.fromEntries(trueGrads.map((x, k) => [`w${k}`, tf.tensor(x, shapes[k])]));
      const { grads: clipped, norm } = await clipGlobalNorm(g, maxNorm);
      reference.step(clipped);
      tf.dispose([...Object.values(g), ...Object.values(clipped)]);
      return norm;
    };
    for (let s = 1; s <= 3; s++) {
      const scale = (await runtime.readNumbers(state))[0];
      expect(scale).toBe(s === 3 ? 2048 : 1024);
      const trueGrads = sizes.map((n, k) => randomArray(n, 1000 * s + k, -1, 1));
      trueGrads.forEach((g, k) =>
        runtime.write(
          grads[k],
          g.map((x) => x * scale),
        ),
      );
      await step();
      const norm = await referenceStep(trueGrads);
      const stepInfo = await runtime.readNumbers(info);
      expect(Math.abs(stepInfo[0] - norm) / norm).toBeLessThan(1e-6);
      expect(stepInfo[1]).toBeLessThan(1); // clipping is active
      expect(Array.from(stepInfo.slice(2))).toEqual([1, scale]);
      normsSeen.push(norm);
      worst = Math.max(worst, await compareAll(`step ${s}`));
    }
    expect(Array.from(await runtime.readNumbers(state))).toEqual([2048, 1, 0, 3]);

    // An overflowing gradient: nothing changes, the scale halves, the skip is counted.
    const before = await Promise.all([...params, ...m, ...v].map((t) => runtime.readNumbers(t)));
    const overflow = sizes.map((n, k) => randomArray(n, 77 + k, -1, 1));
    overflow[1][17] = Number.POSITIVE_INFINITY;
    overflow.forEach((g, k) => runtime.write(grads[k], g));
    await step();
    const after = await Promise.all([...params, ...m, ...v].map((t) => runtime.readNumbers(t)));
    after.forEach((x, k) => expect(Array.from(x)).toEqual(Array.from(before[k])));
    expect(Array.from(await runtime.readNumbers(state))).toEqual([1024, 0, 1, 3]);
    expect((await runtime.readNumbers(info))[2]).toBe(0);

    // The next finite step is the reference's 4th (t = appliedSteps = 4), at scale 1024.
    const trueGrads = sizes.map((n, k) => randomArray(n, 4000 + k, -1, 1));
    trueGrads.forEach((g, k) =>
      runtime.write(
        grads[k],
        g.map((x) => x * 1024),
      ),
    );
    await step();
    await referenceStep(trueGrads);
    worst = Math.max(worst, await compareAll('step 4 after the skip'));
    expect(Array.from(await runtime.readNumbers(state))).toEqual([1024, 1, 1, 4]);
    console.log(`adamw: worst relative error ${worst.toExponential(2)} (norms ${normsSeen.map((x) => x.toFixed(3)).join(', ')})`);

    reference.dispose();
    tf.dispose(variables);
    runtime.forgetBuffer(arena.id);
    arena.destroy();
  });

  it('bias correction stays accurate for large step counts and β = 0', async () => {
    // Compare one step at t = 1000 (state preset) against the closed form in float64.
    const runtime = rt!;
    const n = 33;
    const arena = new Arena(runtime.engine, 'adamw t', 1 << 16);
    const theta = randomArray(n, 5, -1, 1);
    const g = randomArray(n, 6, -1, 1);
    const m0 = randomArray(n, 7, -0.1, 0.1);
    const v0 = randomArray(n, 8, 0, 0.01);
    for (const [beta1, beta2, t] of [
      [0.9, 0.999, 1000],
      [0, 0.95, 3],
      [0.5, 0.9999, 1],
    ]) {
      const p = upload(runtime, arena, 'p', theta);
      const gr = upload(runtime, arena, 'g', g);
      const mt = upload(runtime, arena, 'm', m0);
      const vt = upload(runtime, arena, 'v', v0);
      const info = upload(runtime, arena, 'info', Float32Array.from([1, 1, 1, 1]));
      const state = upload(runtime, arena, 'state', Float32Array.from([1, 0, 0, t]));
      const rec = runtime.record();
      await adamw(runtime, rec, {
        params: p,
        grads: gr,
        m: mt,
        v: vt,
        count: n,
        info,
        state,
        lr: 0.1,
        beta1,
        beta2,
        eps: 1e-8,
        weightDecay: 0,
      });
      rec.submit();
      const got = await runtime.readNumbers(p);
      const want = Float64Array.from(theta, (x, j) => {
        const mm = beta1 * m0[j] + (1 - beta1) * g[j];
        const vv = beta2 * v0[j] + (1 - beta2) * g[j] * g[j];
        return x - (0.1 * (mm / (1 - beta1 ** t))) / (Math.sqrt(vv / (1 - beta2 ** t)) + 1e-8);
      });
      expect(maxRelativeError(got, want), `β = (${beta1}, ${beta2}), t = ${t}`).toBeLessThan(1e-5);
    }
    runtime.forgetBuffer(arena.id);
    arena.destroy();
  });
});
