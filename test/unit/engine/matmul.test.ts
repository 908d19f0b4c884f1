/**
 * matmul against a float64 CPU reference, C = α·op(A)·op(B) (+ C), for every transpose layout and path.
 *
 * Tolerances:
 *   'f32'    |got − ref| ≤ 1e-4 · (|ref| + 0.1·rms(ref)) per element. f32 accumulation over k terms
 *            errs by ~√k·2⁻²⁴·|partial sums|, ~1e-6 relative here; the rms term keeps entries that
 *            cancel to ≈0 from turning that absolute error into a large relative one.
 *   'f16'    a rigorous per-element bound. Each operand is rounded to f16 (either neighbour allowed,
 *   and      |fl16(x) − x| ≤ 2⁻¹⁰|x|, plus 2⁻²⁴ below f16's normal range — inputs here are far above it),
 *   f16-     so |fl16(a)fl16(b) − ab| ≤ (2⁻⁹ + 2⁻²⁰)|a||b|; the f32 sum of k products adds ≤ k·2⁻²³·Σ|ab|;
 *   matrix   hence |got − ref_ij| ≤ |α|·(2⁻⁹ + 2⁻²⁰ + (k+2)·2⁻²³)·Σ_p|a_ip||b_pj| + 2⁻²²|ref_ij|.
 *            A wrong element errs by O(Σ|ab|), ~500× the bound.
 */
import { describe, expect, it } from 'vitest';
import type { EngineCapabilities } from '../../../models/engine/device.js';
import { matmul, matmulKernelSpecs, pickMatmulPath, type MatmulPath, type MatmulTile } from '../../../models/engine/kernels/matmul.js';
import { Arena, type Runtime, type Tensor } from '../../../models/engine/runtime.js';
import { randomArray, requireRuntime } from './helpers.js';

const rt = await requireRuntime();

interface Case {
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  accumulate: boolean;
  alpha: number;
  tile: MatmulTile;
  seed: number;
}

/** f64 reference of the case on the given inputs: C and Σ_p|a_ip||b_pj| (for the f16 bound). */
function reference(c: Case, a: Float32Array, b: Float32Array, c0: Float32Array): { out: Float64Array; absSum: Float64Array } {
  const out = new Float64Array(c.m * c.n);
  const absSum = new Float64Array(c.m * c.n);
  for (let i = 0; i < c.m; i++) {
    for (let j = 0; j < c.n; j++) {
      let s = 0;
      let sa = 0;
      for (let p = 0; p < c.k; p++) {
        const av = c.transA ? a[p * c.m + i] : a[i * c.k + p];
        const bv = c.transB ? b[j * c.k + p] : b[p * c.n + j];
        s += av * bv;
        sa += Math.abs(av * bv);
      }
      out[i * c.n + j] = c.alpha * s + (c.accumulate ? c0[i * c.n + j] : 0);
      absSum[i * c.n + j] = sa;
    }
  }
  return { out, absSum };
}

/** Worst ratio error/bound over the elements (≤ 1 passes), and the worst plain relative error for the log. */
function worstError(path: MatmulPath, c: Case, got: Float32Array, ref: Float64Array, absSum: Float64Array): { ratio: number; rel: number } {
  let rms = 0;
  for (const v of ref) rms += v * v;
  rms = Math.sqrt(rms / ref.length);
  let ratio = 0;
  let rel = 0;
  for (let e = 0; e < ref.length; e++) {
    const err = Math.abs(got[e] - ref[e]);
    const bound =
      path === 'f32'
        ? 1e-4 * (Math.abs(ref[e]) + 0.1 * rms)
        : Math.abs(c.alpha) * (2 ** -9 + 2 ** -20 + (c.k + 2) * 2 ** -23) * absSum[e] + 2 ** -22 * Math.abs(ref[e]) + 1e-30;
    const r = err / bound;
    if (!(r <= ratio)) ratio = Number.isNaN(r) ? Number.POSITIVE_INFINITY : r;
    rel = Math.max(rel, err / (Math.abs(ref[e]) + 0.1 * rms));
  }
  return { ratio, rel };
}

const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [3, 5, 7],
  [17, 33, 65],
  [130, 67, 129],
  [64, 64, 64],
];

/** All shapes, each with the automatic block; the odd large shape with both blocks; accumulate with α = −0.5. */
function cases(transA: boolean, transB: boolean): Case[] {
  const list: Case[] = [];
  let seed = 1 + (transA ? 100 : 0) + (transB ? 200 : 0);
  for (const [m, n, k] of SHAPES) list.push({ m, n, k, transA, transB, accumulate: false, alpha: 1, tile: 'auto', seed: seed++ });
  for (const tile of ['large', 'small'] as const)
    list.push({ m: 130, n: 67, k: 129, transA, transB, accumulate: false, alpha: 1, tile, seed: seed++ });
  list.push({ m: 17, n: 33, k: 65, transA, transB, accumulate: true, alpha: -0.5, tile: 'auto', seed: seed++ });
  list.push({ m: 130, n: 67, k: 129, transA, transB, accumulate: true, alpha: -0.5, tile: 'large', seed: seed++ });
  list.push({ m: 64, n: 64, k: 64, transA, transB, accumulate: true, alpha: 1, tile: 'large', seed: seed++ });
  return list;
}

/** Run every case in one step (one submit) and compare each with its reference. */
async function check(runtime: Runtime, path: MatmulPath, transA: boolean, transB: boolean): Promise<void> {
  const list = cases(transA, transB);
  const bytes = list.reduce(
    (s, c) =>
      s +
      Arena.footprint(runtime.engine, c.m * c.k, 'f32') +
      Arena.footprint(runtime.engine, c.k * c.n, 'f32') +
      Arena.footprint(runtime.engine, c.m * c.n, 'f32'),
    0,
  );
  const arena = new Arena(runtime.engine, `matmul-${path}`, bytes);
  try {
    const rec = runtime.record();
    const inputs: { c: Case; a: Float32Array; b: Float32Array; c0: Float32Array; out: Tensor }[] = [];
    for (const c of list) {
      const a = randomArray(c.m * c.k, c.seed);
      const b = randomArray(c.k * c.n, c.seed + 1000);
      const c0 = randomArray(c.m * c.n, c.seed + 2000);
      const ta = arena.alloc('a', c.transA ? [c.k, c.m] : [c.m, c.k]);
      const tb = arena.alloc('b', c.transB ? [c.n, c.k] : [c.k, c.n]);
      const tc = arena.alloc('c', [c.m, c.n]);
      runtime.write(ta, a);
      runtime.write(tb, b);
      // Without accumulate C starts as garbage-like numbers: the kernel must overwrite them.
      runtime.write(tc, c0);
      await matmul(runtime, rec, {
        a: ta,
        b: tb,
        c: tc,
        m: c.m,
        n: c.n,
        k: c.k,
        transA: c.transA,
        transB: c.transB,
        accumulate: c.accumulate,
        alpha: c.alpha,
        path,
        tile: c.tile,
      });
      inputs.push({ c, a, b, c0, out: tc });
    }
    rec.submit();
    for (const { c, a, b, c0, out } of inputs) {
      const got = await runtime.readNumbers(out);
      const { out: ref, absSum } = reference(c, a, b, c0);
      const { ratio, rel } = worstError(path, c, got, ref, absSum);
      const label = `${path} ${transA ? 'T' : 'N'}${transB ? 'T' : 'N'} ${c.m}×${c.n}×${c.k} tile=${c.tile} acc=${c.accumulate} α=${c.alpha}`;
      if (process.env.MATMUL_LOG) console.log(`${label}: error/bound ${ratio.toExponential(2)}, max relative ${rel.toExponential(2)}`);
      expect(ratio, label).toBeLessThanOrEqual(1);
    }
  } finally {
    runtime.forgetBuffer(arena.id);
    arena.destroy();
  }
}

const LAYOUTS: [boolean, boolean][] = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];

describe.skipIf(!rt)('engine matmul (f32 and f16 paths)', () => {
  for (const path of ['f32', 'f16'] as const) {
    for (const [transA, transB] of LAYOUTS) {
      it(`${path} ${transA ? 'T' : 'N'}${transB ? 'T' : 'N'} matches the f64 reference on odd and even shapes, with accumulate and α`, async () => {
        if (path === 'f16' && !rt!.engine.caps.shaderF16) return;
        await check(rt!, path, transA, transB);
      });
    }
  }

  it('gives bit-identical results run after run', async () => {
    const runtime = rt!;
    const arena = new Arena(runtime.engine, 'matmul-det', 1 << 20);
    const [m, n, k] = [130, 67, 129];
    const a = arena.alloc('a', [k, m]);
    const b = arena.alloc('b', [k, n]);
    const c1 = arena.alloc('c1', [m, n]);
    const c2 = arena.alloc('c2', [m, n]);
    runtime.write(a, randomArray(m * k, 7));
    runtime.write(b, randomArray(k * n, 8));
    const rec = runtime.record();
    await matmul(runtime, rec, { a, b, c: c1, m, n, k, transA: true, path: 'f32' });
    await matmul(runtime, rec, { a, b, c: c2, m, n, k, transA: true, path: 'f32' });
    rec.submit();
    expect(Array.from(await runtime.readNumbers(c1))).toEqual(Array.from(await runtime.readNumbers(c2)));
    runtime.forgetBuffer(arena.id);
    arena.destroy();
  });

  it('throws RangeError when a tensor is too small for m, n, k, or the output overlaps an input', async () => {
    const runtime = rt!;
    const arena = new Arena(runtime.engine, 'matmul-shapes', 1 << 16);
    const a = arena.alloc('a', [4, 6]);
    const b = arena.alloc('b', [6, 5]);
    const c = arena.alloc('c', [4, 5]);
    const small = arena.alloc('small', [3, 5]);
    const rec = runtime.record();
    await expect(matmul(runtime, rec, { a, b, c, m: 4, n: 5, k: 7, path: 'f32' })).rejects.toThrow(RangeError);
    await expect(matmul(runtime, rec, { a, b, c, m: 4, n: 5, k: 7, path: 'f32' })).rejects.toThrow(
      /A \[m=4, k=7\] needs 28 elements, 'a' \[4, 6\] has 24/,
    );
    await expect(matmul(runtime, rec, { a, b, c: small, m: 4, n: 5, k: 6, path: 'f32' })).rejects.toThrow(
      /C \[m=4, n=5\] needs 20 elements, 'small' \[3, 5\] has 15/,
    );
    await expect(matmul(runtime, rec, { a, b, c, m: 4, n: 6, k: 6, transB: true, path: 'f32' })).rejects.toThrow(/B \[n=6, k=6\] needs 36/);
    await expect(matmul(runtime, rec, { a, b, c, m: 4, n: 0, k: 6, path: 'f32' })).rejects.toThrow(/n must be a positive integer/);
    await expect(matmul(runtime, rec, { a, b, c: a, m: 4, n: 5, k: 6, path: 'f32' })).rejects.toThrow(/overlaps the input 'a'/);
    expect(rec.dispatches).toBe(0);
    rec.submit();
    arena.destroy();
  });

  it('compiles every f32 and f16 kernel variant', async () => {
    for (const spec of matmulKernelSpecs()) {
      if (spec.name.includes('f16mx') || (spec.name.includes('_f16_') && !rt!.engine.caps.shaderF16)) continue;
      await expect(rt!.kernel(spec)).resolves.toBeDefined();
    }
  });
});

const matrixCaps = rt?.engine.caps.f16Matrix;
describe.skipIf(!rt || !matrixCaps || pickMatmulPath(rt.engine.caps, 'f16-matrix').path !== 'f16-matrix')(
  'engine matmul f16-matrix (tensor cores; skipped unless the adapter offers f16 subgroup matrices, e.g. not on lavapipe)',
  () => {
    for (const [transA, transB] of LAYOUTS) {
      it(`f16-matrix ${transA ? 'T' : 'N'}${transB ? 'T' : 'N'} matches the f64 reference on odd and even shapes, with accumulate and α`, async () => {
        await check(rt!, 'f16-matrix', transA, transB);
      });
    }
    it('compiles every f16-matrix kernel variant', async () => {
      for (const spec of matmulKernelSpecs().filter((s) => s.name.includes('f16mx'))) await expect(rt!.kernel(spec)).resolves.toBeDefined();
    });
  },
);

describe('pickMatmulPath', () => {
  const base: EngineCapabilities = {
    adapter: 'fake',
    software: false,
    timestamps: false,
    shaderF16: false,
    subgroups: true,
    subgroupMinSize: 32,
    subgroupMaxSize: 32,
    maxStorageBufferBindingSize: 1 << 30,
    maxBufferSize: 1 << 30,
    maxStorageBuffersPerShaderStage: 8,
    maxComputeWorkgroupStorageSize: 32768,
    maxComputeInvocationsPerWorkgroup: 1024,
    minUniformBufferOffsetAlignment: 256,
    minStorageBufferOffsetAlignment: 256,
  };
  const f16Matrix = { componentType: 'f16', resultComponentType: 'f32', M: 16, N: 16, K: 16 };
  const tensorCores: EngineCapabilities = { ...base, shaderF16: true, f16Matrix };
  const halfOnly: EngineCapabilities = { ...base, shaderF16: true };

  it('auto takes the tensor cores when offered, else f32', () => {
    expect(pickMatmulPath(tensorCores, 'auto').path).toBe('f16-matrix');
    expect(pickMatmulPath(halfOnly, 'auto')).toEqual({
      path: 'f32',
      reason: 'auto: the device has no f16 subgroup matrices, so register-tiled f32',
    });
    expect(pickMatmulPath(base, 'auto').path).toBe('f32');
  });

  it('honours a request the device supports', () => {
    expect(pickMatmulPath(tensorCores, 'f32').path).toBe('f32');
    expect(pickMatmulPath(tensorCores, 'f16').path).toBe('f16');
    expect(pickMatmulPath(halfOnly, 'f16').path).toBe('f16');
    expect(pickMatmulPath(tensorCores, 'f16-matrix').path).toBe('f16-matrix');
  });

  it('falls back with the reason when the device lacks what was asked for', () => {
    expect(pickMatmulPath(base, 'f16')).toEqual({
      path: 'f32',
      reason: 'f16 requested but the device lacks shader-f16: falling back to f32',
    });
    const toHalf = pickMatmulPath(halfOnly, 'f16-matrix');
    expect(toHalf.path).toBe('f16');
    expect(toHalf.reason).toMatch(/^f16-matrix requested but the device has no f16 subgroup matrices: falling back to f16/);
    expect(pickMatmulPath(base, 'f16-matrix').path).toBe('f32');
    const wideSubgroups = pickMatmulPath({ ...tensorCores, subgroupMinSize: 32, subgroupMaxSize: 64 }, 'auto');
    expect(wideSubgroups.path).toBe('f32');
    expect(wideSubgroups.reason).toMatch(/subgroup size is 32\.\.64, not 32/);
  });

  it('gives one line of reason', () => {
    for (const caps of [base, halfOnly, tensorCores]) {
      for (const req of ['auto', 'f32', 'f16', 'f16-matrix'] as const) expect(pickMatmulPath(caps, req).reason).not.toMatch(/\n/);
    }
  });
});
