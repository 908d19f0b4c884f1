import { describe, expect, it } from 'vitest';
import { Arena, type DType, type Tensor } from '../../../models/engine/runtime.js';
import {
  attentionBackward,
  attentionCached,
  attentionForward,
  rope,
  ropeTable,
  writeCache,
} from '../../../models/engine/kernels/attention.js';
import { maxRelativeError, randomArray, requireRuntime } from './helpers.js';

const rt = await requireRuntime();

interface Shape {
  B: number;
  T: number;
  H: number;
  Hkv: number;
  D: number;
}

// ───────────── float64 CPU references (plain loops) ─────────────

/** out [B·T, H·D], lse [B·H·T] of causal GQA attention. */
function cpuForward(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  s: Shape,
  scale: number,
): { out: Float64Array; lse: Float64Array } {
  const { B, T, H, Hkv, D } = s;
  const G = H / Hkv;
  const out = new Float64Array(B * T * H * D);
  const lse = new Float64Array(B * H * T);
  const sc = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const hk = Math.floor(h / G);
      for (let i = 0; i < T; i++) {
        let m = -Infinity;
        for (let j = 0; j <= i; j++) {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[(b * T + i) * H * D + h * D + d] * k[(b * T + j) * Hkv * D + hk * D + d];
          sc[j] = scale * dot;
          m = Math.max(m, sc[j]);
        }
        let sum = 0;
        for (let j = 0; j <= i; j++) sum += Math.exp(sc[j] - m);
        const l = m + Math.log(sum);
        lse[(b * H + h) * T + i] = l;
        for (let j = 0; j <= i; j++) {
          const p = Math.exp(sc[j] - l);
          for (let d = 0; d < D; d++) out[(b * T + i) * H * D + h * D + d] += p * v[(b * T + j) * Hkv * D + hk * D + d];
        }
      }
    }
  }
  return { out, lse };
}

/** Analytic gradients of Σ out ∘ dO with respect to q, k, v. */
function cpuBackward(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, dO: ArrayLike<number>, s: Shape, scale: number) {
  const { B, T, H, Hkv, D } = s;
  const G = H / Hkv;
  const { out, lse } = cpuForward(q, k, v, s, scale);
  const dq = new Float64Array(q.length);
  const dk = new Float64Array(k.length);
  const dv = new Float64Array(v.length);
  const qi = (b: number, t: number, h: number, d: number) => (b * T + t) * H * D + h * D + d;
  const ki = (b: number, t: number, h: number, d: number) => (b * T + t) * Hkv * D + h * D + d;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const hk = Math.floor(h / G);
      for (let i = 0; i < T; i++) {
        let Di = 0;
        for (let d = 0; d < D; d++) Di += dO[qi(b, i, h, d)] * out[qi(b, i, h, d)];
        for (let j = 0; j <= i; j++) {
          let dot = 0;
          let dp = 0;
          for (let d = 0; d < D; d++) {
            dot += q[qi(b, i, h, d)] * k[ki(b, j, hk, d)];
            dp += dO[qi(b, i, h, d)] * v[ki(b, j, hk, d)];
          }
          const p = Math.exp(scale * dot - lse[(b * H + h) * T + i]);
          const ds = p * (dp - Di);
          for (let d = 0; d < D; d++) {
            dv[ki(b, j, hk, d)] += p * dO[qi(b, i, h, d)];
            dq[qi(b, i, h, d)] += scale * ds * k[ki(b, j, hk, d)];
            dk[ki(b, j, hk, d)] += scale * ds * q[qi(b, i, h, d)];
          }
        }
      }
    }
  }
  return { dq, dk, dv };
}

/** Attention over a cache: query t of row b sees slots ks_b … ke_b + t (none: 0). */
function cpuCached(
  q: ArrayLike<number>,
  kc: ArrayLike<number>,
  vc: ArrayLike<number>,
  ks: ArrayLike<number>,
  ke: ArrayLike<number>,
  c: { B: number; Tq: number; S: number; H: number; Hkv: number; D: number },
  scale: number,
): Float64Array {
  const { B, Tq, S, H, Hkv, D } = c;
  const out = new Float64Array(B * Tq * H * D);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const hk = Math.floor(h / (H / Hkv));
      for (let t = 0; t < Tq; t++) {
        const lo = Math.max(0, ks[b]);
        const hi = Math.min(S - 1, ke[b] + t);
        if (hi < lo) continue;
        const sc: number[] = [];
        for (let j = lo; j <= hi; j++) {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[((b * Tq + t) * H + h) * D + d] * kc[((b * S + j) * Hkv + hk) * D + d];
          sc.push(scale * dot);
        }
        const m = Math.max(...sc);
        const sum = sc.reduce((a, x) => a + Math.exp(x - m), 0);
        for (let j = lo; j <= hi; j++) {
          const p = Math.exp(sc[j - lo] - m) / sum;
          for (let d = 0; d < D; d++) out[((b * Tq + t) * H + h) * D + d] += p * vc[((b * S + j) * Hkv + hk) * D + d];
        }
      }
    }
  }
  return out;
}

// ───────────── GPU plumbing ─────────────

/**
 * Error of an f32 result against the float64 reference: |a − b| / (|b| + 0.01·max(1, max|b|)), i.e.
 * relative for entries above 1% of the tensor's scale and absolute (relative to that scale) below it,
 * where cancellation leaves only f32 rounding noise (a gradient that is exactly 0 comes out as ~1e-7).
 */
function scaledError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let scale = 1;
  for (let k = 0; k < expected.length; k++) scale = Math.max(scale, Math.abs(expected[k]));
  return maxRelativeError(actual, expected, 0.01 * scale);
}

async function withArena<R>(fn: (arena: Arena) => Promise<R>, bytes = 32 << 20): Promise<R> {
  const runtime = rt!;
  const arena = new Arena(runtime.engine, 'attention-test', bytes);
  try {
    return await fn(arena);
  } finally {
    runtime.forgetBuffer(arena.id);
    arena.destroy();
  }
}

function put(arena: Arena, label: string, data: Float32Array | Int32Array, dtype: DType = 'f32'): Tensor {
  const t = arena.alloc(label, [data.length], dtype);
  rt!.write(t, data);
  return t;
}

function inputs(s: Shape, seed: number) {
  const nq = s.B * s.T * s.H * s.D;
  const nk = s.B * s.T * s.Hkv * s.D;
  return {
    q: randomArray(nq, seed, -2, 2),
    k: randomArray(nk, seed + 1, -2, 2),
    v: randomArray(nk, seed + 2, -1, 1),
    dO: randomArray(nq, seed + 3, -1, 1),
  };
}

async function gpuForward(arena: Arena, s: Shape, x: { q: Float32Array; k: Float32Array; v: Float32Array }) {
  const runtime = rt!;
  const q = put(arena, 'q', x.q);
  const k = put(arena, 'k', x.k);
  const v = put(arena, 'v', x.v);
  const out = arena.alloc('out', [s.B * s.T, s.H * s.D]);
  const lse = arena.alloc('lse', [s.B * s.H * s.T]);
  const rec = runtime.record();
  await attentionForward(runtime, rec, {
    batch: s.B,
    seqLen: s.T,
    nHeads: s.H,
    nKvHeads: s.Hkv,
    headDim: s.D,
    q,
    k,
    v,
    out,
    lse,
    scale: 1 / Math.sqrt(s.D),
  });
  rec.submit();
  return { q, k, v, out, lse, gotOut: await runtime.readNumbers(out), gotLse: await runtime.readNumbers(lse) };
}

const SHAPES: Shape[] = [
  { B: 1, T: 1, H: 1, Hkv: 1, D: 8 },
  { B: 2, T: 3, H: 2, Hkv: 2, D: 6 },
  { B: 3, T: 17, H: 4, Hkv: 2, D: 16 },
  { B: 1, T: 70, H: 4, Hkv: 1, D: 64 },
  { B: 2, T: 65, H: 2, Hkv: 2, D: 10 },
  { B: 1, T: 130, H: 2, Hkv: 1, D: 32 },
  { B: 1, T: 33, H: 2, Hkv: 2, D: 128 },
  { B: 2, T: 17, H: 4, Hkv: 1, D: 256 },
];

const label = (s: Shape) => `B=${s.B} T=${s.T} H=${s.H} Hkv=${s.Hkv} d=${s.D}`;

describe('attention CPU reference', () => {
  it('analytic backward matches central finite differences', () => {
    const s: Shape = { B: 2, T: 5, H: 4, Hkv: 2, D: 6 };
    const x = inputs(s, 7);
    const scale = 0.37;
    const q = Float64Array.from(x.q);
    const k = Float64Array.from(x.k);
    const v = Float64Array.from(x.v);
    const loss = () => cpuForward(q, k, v, s, scale).out.reduce((acc, o, n) => acc + o * x.dO[n], 0);
    const grads = cpuBackward(q, k, v, x.dO, s, scale);
    const eps = 1e-6;
    let worst = 0;
    for (const [arr, grad] of [
      [q, grads.dq],
      [k, grads.dk],
      [v, grads.dv],
    ] as const) {
      for (let n = 0; n < arr.length; n += 7) {
        const keep = arr[n];
        arr[n] = keep + eps;
        const up = loss();
        arr[n] = keep - eps;
        const down = loss();
        arr[n] = keep;
        const numeric = (up - down) / (2 * eps);
        worst = Math.max(worst, Math.abs(numeric - grad[n]) / (Math.abs(numeric) + 1e-3));
      }
    }
    expect(worst).toBeLessThan(1e-6);
  });
});

describe.skipIf(!rt)('engine attention', () => {
  it.each(SHAPES)('forward matches the float64 reference: $B×$T, H=$H Hkv=$Hkv d=$D', async (s) => {
    await withArena(async (arena) => {
      const x = inputs(s, 11 + s.T);
      const { gotOut, gotLse } = await gpuForward(arena, s, x);
      const ref = cpuForward(x.q, x.k, x.v, s, 1 / Math.sqrt(s.D));
      const eOut = scaledError(gotOut, ref.out);
      const eLse = maxRelativeError(gotLse, ref.lse);
      expect(eOut, label(s)).toBeLessThan(1e-4);
      expect(eLse, label(s)).toBeLessThan(1e-4);
    });
  });

  it.each(SHAPES)('backward matches the analytic reference: $B×$T, H=$H Hkv=$Hkv d=$D', async (s) => {
    await withArena(async (arena) => {
      const runtime = rt!;
      const x = inputs(s, 23 + s.T);
      const { q, k, v, out, lse } = await gpuForward(arena, s, x);
      const dOut = put(arena, 'dOut', x.dO);
      const dq = arena.alloc('dq', [q.size]);
      const dk = arena.alloc('dk', [k.size]);
      const dv = arena.alloc('dv', [v.size]);
      const scratch = arena.alloc('scratch', [s.B * s.H * s.T]);
      // Garbage in the outputs: they must be overwritten, not accumulated into.
      runtime.write(dq, new Float32Array(q.size).fill(Number.NaN));
      runtime.write(dk, new Float32Array(k.size).fill(1e6));
      const shape = { batch: s.B, seqLen: s.T, nHeads: s.H, nKvHeads: s.Hkv, headDim: s.D };
      const run = async () => {
        const rec = runtime.record();
        await attentionBackward(runtime, rec, { ...shape, q, k, v, out, dOut, lse, dq, dk, dv, scratch, scale: 1 / Math.sqrt(s.D) });
        rec.submit();
        return [await runtime.readNumbers(dq), await runtime.readNumbers(dk), await runtime.readNumbers(dv)];
      };
      const [gq, gk, gv] = await run();
      const ref = cpuBackward(x.q, x.k, x.v, x.dO, s, 1 / Math.sqrt(s.D));
      expect(scaledError(gq, ref.dq), `dq ${label(s)}`).toBeLessThan(1e-4);
      expect(scaledError(gk, ref.dk), `dk ${label(s)}`).toBeLessThan(1e-4);
      expect(scaledError(gv, ref.dv), `dv ${label(s)}`).toBeLessThan(1e-4);
      // Deterministic: the same bits again.
      const [hq, hk, hv] = await run();
      expect(Buffer.from(hq.buffer).equals(Buffer.from(gq.buffer))).toBe(true);
      expect(Buffer.from(hk.buffer).equals(Buffer.from(gk.buffer))).toBe(true);
      expect(Buffer.from(hv.buffer).equals(Buffer.from(gv.buffer))).toBe(true);
    });
  });

  it.each([
    { B: 3, Tq: 1, S: 50, H: 4, Hkv: 2, D: 64 },
    { B: 2, Tq: 4, S: 37, H: 2, Hkv: 1, D: 6 },
    { B: 3, Tq: 9, S: 41, H: 4, Hkv: 4, D: 16 },
    { B: 2, Tq: 20, S: 70, H: 4, Hkv: 1, D: 128 },
    { B: 2, Tq: 3, S: 30, H: 2, Hkv: 2, D: 256 },
    { B: 1, Tq: 1, S: 700, H: 2, Hkv: 1, D: 32 },
  ])('cached attention matches the reference with arbitrary visible ranges: B=$B Tq=$Tq S=$S d=$D', async (c) => {
    await withArena(async (arena) => {
      const runtime = rt!;
      const nq = c.B * c.Tq * c.H * c.D;
      const nk = c.B * c.S * c.Hkv * c.D;
      const qh = randomArray(nq, 5 + c.S, -2, 2);
      const kh = randomArray(nk, 6 + c.S, -2, 2);
      const vh = randomArray(nk, 7 + c.S, -1, 1);
      // Row 0: a window in the middle; row 1: starts after the first queries' ends (they see nothing); row 2: everything.
      const ks = Int32Array.from({ length: c.B }, (_, b) => [3, 6, 0][b % 3]);
      const ke = Int32Array.from({ length: c.B }, (_, b) => [Math.floor(c.S / 2), 4, c.S - c.Tq][b % 3]);
      const q = put(arena, 'q', qh);
      const kc = put(arena, 'kc', kh);
      const vc = put(arena, 'vc', vh);
      const keyStart = put(arena, 'ks', ks, 'i32');
      const keyEnd = put(arena, 'ke', ke, 'i32');
      const out = arena.alloc('out', [nq]);
      runtime.write(out, new Float32Array(nq).fill(Number.NaN));
      const rec = runtime.record();
      await attentionCached(runtime, rec, {
        batch: c.B,
        queryLen: c.Tq,
        cacheLen: c.S,
        nHeads: c.H,
        nKvHeads: c.Hkv,
        headDim: c.D,
        q,
        kCache: kc,
        vCache: vc,
        out,
        keyStart,
        keyEnd,
        scale: 1 / Math.sqrt(c.D),
      });
      rec.submit();
      const got = await runtime.readNumbers(out);
      const ref = cpuCached(qh, kh, vh, ks, ke, c, 1 / Math.sqrt(c.D));
      expect(scaledError(got, ref)).toBeLessThan(1e-4);
    });
  });

  it.each([
    { D: 16, H: 4, Hkv: 2 },
    { D: 64, H: 2, Hkv: 1 },
    { D: 6, H: 2, Hkv: 2 },
  ])('prefill chunks and decode over a left-padded cache equal attentionForward rows (d=$D)', async ({ D, H, Hkv }) => {
    await withArena(async (arena) => {
      const runtime = rt!;
      const lengths = [20, 13, 9]; // prompt lengths; prompts are left-padded to 20
      const B = lengths.length;
      const P = 20;
      const steps = 3; // decode steps after the prompt
      const S = 26;
      const L = P + steps;
      const scale = 1 / Math.sqrt(D);
      // Each row's own (unpadded) sequence of prompt + generated tokens.
      const seqs = lengths.map((len, b) => ({
        len: len + steps,
        q: randomArray((len + steps) * H * D, 100 + b, -2, 2),
        k: randomArray((len + steps) * Hkv * D, 200 + b, -2, 2),
        v: randomArray((len + steps) * Hkv * D, 300 + b, -1, 1),
      }));
      // Reference: attentionForward on each row alone.
      const refs: Float32Array[] = [];
      for (const sq of seqs) {
        const { gotOut } = await gpuForward(arena, { B: 1, T: sq.len, H, Hkv, D }, sq);
        refs.push(gotOut);
      }
      // Padded layout: row b's token n sits at slot n + (P − len_b).
      const pad = lengths.map((len) => P - len);
      const padded = (b: number, slot: number, which: 'q' | 'k' | 'v', width: number): Float32Array => {
        const n = slot - pad[b];
        if (n < 0) return new Float32Array(width).fill(which === 'q' ? 0.5 : 1e3); // padding tokens' values
        return seqs[b][which].subarray(n * width, (n + 1) * width);
      };
      const kCache = arena.alloc('kCache', [B * S, Hkv * D]);
      const vCache = arena.alloc('vCache', [B * S, Hkv * D]);
      // An unwritten cache may hold anything, NaN included; slots outside the visible ranges must not matter.
      runtime.write(kCache, new Float32Array(B * S * Hkv * D).fill(Number.NaN));
      runtime.write(vCache, new Float32Array(B * S * Hkv * D).fill(Number.NaN));
      const keyStart = put(arena, 'keyStart', Int32Array.from(pad), 'i32');
      const chunks = [12, 5, 3, 1, 1, 1]; // 12 → tiled kernel; 5, 3, 1 → decode kernel
      let slot = 0;
      let worst = 0;
      for (const Tq of chunks) {
        const chunk = (which: 'q' | 'k' | 'v', width: number) => {
          const data = new Float32Array(B * Tq * width);
          for (let b = 0; b < B; b++) for (let t = 0; t < Tq; t++) data.set(padded(b, slot + t, which, width), (b * Tq + t) * width);
          return data;
        };
        const q = put(arena, `q${slot}`, chunk('q', H * D));
        const k = put(arena, `k${slot}`, chunk('k', Hkv * D));
        const v = put(arena, `v${slot}`, chunk('v', Hkv * D));
        const keyEnd = put(arena, `keyEnd${slot}`, new Int32Array(B).fill(slot), 'i32');
        const out = arena.alloc(`out${slot}`, [B * Tq, H * D]);
        const rec = runtime.record();
        await writeCache(runtime, rec, { src: k, cache: kCache, slot: keyEnd, batch: B, queryLen: Tq, cacheLen: S, width: Hkv * D });
        await writeCache(runtime, rec, { src: v, cache: vCache, slot: keyEnd, batch: B, queryLen: Tq, cacheLen: S, width: Hkv * D });
        await attentionCached(runtime, rec, {
          batch: B,
          queryLen: Tq,
          cacheLen: S,
          nHeads: H,
          nKvHeads: Hkv,
          headDim: D,
          q,
          kCache,
          vCache,
          out,
          keyStart,
          keyEnd,
          scale,
        });
        rec.submit();
        const got = await runtime.readNumbers(out);
        for (let b = 0; b < B; b++) {
          for (let t = 0; t < Tq; t++) {
            const n = slot + t - pad[b];
            const row = got.subarray((b * Tq + t) * H * D, (b * Tq + t + 1) * H * D);
            // Padding queries see no key: zeros. Real ones: the row of the unpadded forward.
            const want = n < 0 ? new Float32Array(H * D) : refs[b].subarray(n * H * D, (n + 1) * H * D);
            worst = Math.max(worst, scaledError(row, want));
          }
        }
        slot += Tq;
      }
      expect(slot).toBe(L);
      expect(worst).toBeLessThan(1e-4);
    });
  });

  it('rope matches the rotate-half formula and its inverse restores the input', async () => {
    await withArena(async (arena) => {
      const runtime = rt!;
      for (const D of [8, 6, 64]) {
        const N = 7;
        const H = 3;
        const theta = 10000;
        const maxPos = 50;
        const x0 = randomArray(N * H * D, 31 + D);
        const pos = Int32Array.from([0, 1, 2, 49, 17, 33, 5]);
        const x = put(arena, `x${D}`, x0);
        const positions = put(arena, `pos${D}`, pos, 'i32');
        const table = put(arena, `table${D}`, ropeTable(maxPos, D, theta));
        let rec = runtime.record();
        await rope(runtime, rec, { x, positions, table, rows: N, nHeads: H, headDim: D });
        rec.submit();
        const rotated = await runtime.readNumbers(x);
        const want = new Float64Array(N * H * D);
        const half = D / 2;
        for (let n = 0; n < N; n++) {
          for (let h = 0; h < H; h++) {
            for (let i = 0; i < half; i++) {
              const angle = pos[n] * theta ** ((-2 * i) / D);
              const a = x0[(n * H + h) * D + i];
              const b = x0[(n * H + h) * D + i + half];
              want[(n * H + h) * D + i] = a * Math.cos(angle) - b * Math.sin(angle);
              want[(n * H + h) * D + i + half] = b * Math.cos(angle) + a * Math.sin(angle);
            }
          }
        }
        expect(maxRelativeError(rotated, want), `d=${D}`).toBeLessThan(1e-4);
        rec = runtime.record();
        await rope(runtime, rec, { x, positions, table, rows: N, nHeads: H, headDim: D, inverse: true });
        rec.submit();
        expect(maxRelativeError(await runtime.readNumbers(x), x0), `d=${D}`).toBeLessThan(1e-5);
      }
    });
  });

  it('writeCache places rows at their slots and leaves the rest alone', async () => {
    await withArena(async (arena) => {
      const runtime = rt!;
      const B = 3;
      const T = 3;
      const S = 8;
      const W = 5;
      const src = randomArray(B * T * W, 3);
      const slots = Int32Array.from([1, 5, 6]); // row 2's last token would land at slot 8 ≥ S: dropped
      const cache0 = randomArray(B * S * W, 4, 10, 20);
      const srcT = put(arena, 'src', src);
      const cache = put(arena, 'cache', cache0);
      const slot = put(arena, 'slot', slots, 'i32');
      const rec = runtime.record();
      await writeCache(runtime, rec, { src: srcT, cache, slot, batch: B, queryLen: T, cacheLen: S, width: W });
      rec.submit();
      const got = await runtime.readNumbers(cache);
      const want = Float32Array.from(cache0);
      for (let b = 0; b < B; b++) {
        for (let t = 0; t < T; t++) {
          const s = slots[b] + t;
          if (s < S) want.set(src.subarray((b * T + t) * W, (b * T + t + 1) * W), (b * S + s) * W);
        }
      }
      expect(Array.from(got)).toEqual(Array.from(want));
    });
  });

  it('rejects tensors whose sizes do not match the shape', async () => {
    await withArena(async (arena) => {
      const runtime = rt!;
      const q = arena.alloc('q', [4, 16]);
      const k = arena.alloc('k', [4, 8]);
      const out = arena.alloc('out', [4, 16]);
      const lse = arena.alloc('lse', [8]);
      const rec = runtime.record();
      const shape = { batch: 1, seqLen: 4, nHeads: 2, nKvHeads: 1, headDim: 8, q, v: k, out, lse, scale: 1 };
      await expect(attentionForward(runtime, rec, { ...shape, k: arena.alloc('k2', [4, 16]) })).rejects.toThrow(RangeError);
      await expect(attentionForward(runtime, rec, { ...shape, k, nKvHeads: 3 })).rejects.toThrow(/multiple of nKvHeads/);
      await expect(attentionForward(runtime, rec, { ...shape, k, lse: arena.alloc('lse2', [8], 'i32') })).rejects.toThrow(/must be f32/);
      await attentionForward(runtime, rec, { ...shape, k });
      rec.submit();
    });
  });
});
