import { describe, expect, it } from 'vitest';
import { Arena, type DType, type Runtime, type Tensor } from '../../../models/engine/runtime.js';
import {
  addBias,
  addInto,
  buildTokenIndex,
  columnSum,
  columnSumScratchSize,
  embeddingBackward,
  embeddingForward,
  rmsNormBackward,
  rmsNormForward,
  rmsNormScratchSize,
  sampleTokens,
  scaleInPlace,
  swigluBackward,
  swigluForward,
  tokenLogProbs,
  tokenLogProbsBackward,
} from '../../../models/engine/kernels/layers.js';
import { maxRelativeError, randomArray, requireRuntime } from './helpers.js';

const rt = await requireRuntime();

const NS = [1, 3, 17, 130];
const DS = [1, 5, 64, 96];

/** An arena with upload helpers; `done()` frees it. */
function workspace(runtime: Runtime, bytes = 32 << 20) {
  const arena = new Arena(runtime.engine, 'layers-test', bytes);
  let counter = 0;
  const put = (data: Float32Array | Int32Array, dtype: DType = data instanceof Int32Array ? 'i32' : 'f32'): Tensor => {
    const t = arena.alloc(`t${counter++}`, [Math.max(1, data.length)], dtype);
    runtime.write(t, data);
    return t;
  };
  const empty = (size: number, dtype: DType = 'f32'): Tensor => arena.alloc(`t${counter++}`, [Math.max(1, size)], dtype);
  const done = (): void => {
    runtime.forgetBuffer(arena.id);
    arena.destroy();
  };
  return { arena, put, empty, done };
}

function randomInts(n: number, seed: number, lo: number, hi: number): Int32Array {
  const r = randomArray(n, seed, 0, 1);
  return Int32Array.from(r, (v) => lo + Math.floor(v * (hi - lo)));
}

/** Gaussian-ish numbers (sum of 4 uniforms) scaled by `scale`. */
function bumpy(n: number, seed: number, scale: number): Float32Array {
  const parts = [0, 1, 2, 3].map((k) => randomArray(n, seed * 7 + k, -1, 1));
  return Float32Array.from({ length: n }, (_, k) => (scale * (parts[0][k] + parts[1][k] + parts[2][k] + parts[3][k])) / 2);
}

// ---------------------------------------------------------------------------------------------
// float64 references

function rmsRef(x: ArrayLike<number>, gain: ArrayLike<number>, n: number, d: number, eps: number) {
  const out = new Float64Array(n * d);
  const rstd = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    let ss = 0;
    for (let c = 0; c < d; c++) ss += x[r * d + c] ** 2;
    rstd[r] = 1 / Math.sqrt(ss / d + eps);
    for (let c = 0; c < d; c++) out[r * d + c] = x[r * d + c] * rstd[r] * gain[c];
  }
  return { out, rstd };
}

function rmsBackRef(x: ArrayLike<number>, gain: ArrayLike<number>, dy: ArrayLike<number>, n: number, d: number, eps: number) {
  const { rstd } = rmsRef(x, gain, n, d, eps);
  const dx = new Float64Array(n * d);
  /** |ρ g dy| + |x ρ³ s / d|: the size of the two terms whose difference dx is. */
  const dxScale = new Float64Array(n * d);
  const dGain = new Float64Array(d);
  for (let r = 0; r < n; r++) {
    let s = 0;
    for (let c = 0; c < d; c++) s += x[r * d + c] * gain[c] * dy[r * d + c];
    const rho = rstd[r];
    for (let c = 0; c < d; c++) {
      dx[r * d + c] = rho * gain[c] * dy[r * d + c] - (x[r * d + c] * rho ** 3 * s) / d;
      dxScale[r * d + c] = Math.abs(rho * gain[c] * dy[r * d + c]) + Math.abs((x[r * d + c] * rho ** 3 * s) / d);
      dGain[c] += dy[r * d + c] * x[r * d + c] * rho;
    }
  }
  return { dx, dxScale, dGain };
}

/** Largest |a − b| / (|b| + scale_k): the error relative to the terms that produced b. */
function maxScaledError(actual: ArrayLike<number>, expected: ArrayLike<number>, scale: ArrayLike<number>): number {
  let worst = 0;
  for (let k = 0; k < expected.length; k++) {
    const err = Math.abs(actual[k] - expected[k]) / (Math.abs(expected[k]) + scale[k] + 1e-30);
    worst = Number.isNaN(err) ? Infinity : Math.max(worst, err);
  }
  return worst;
}

/** z = logits/τ in float64; lse, log-softmax, entropy per row. */
function softmaxRef(logits: ArrayLike<number>, rows: number, vocab: number, temperature: number) {
  const lse = new Float64Array(rows);
  const logp = new Float64Array(rows * vocab);
  const entropy = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let j = 0; j < vocab; j++) m = Math.max(m, logits[r * vocab + j] / temperature);
    let s = 0;
    for (let j = 0; j < vocab; j++) s += Math.exp(logits[r * vocab + j] / temperature - m);
    lse[r] = m + Math.log(s);
    let h = 0;
    for (let j = 0; j < vocab; j++) {
      const lp = logits[r * vocab + j] / temperature - lse[r];
      logp[r * vocab + j] = lp;
      h -= Math.exp(lp) * lp;
    }
    entropy[r] = h;
  }
  return { lse, logp, entropy };
}

/** The CPU sampler of models/sampler.ts (inverse CDF over exp(logProbs), ascending ids). */
function cpuSampleToken(logProbs: Float32Array, u: number): number {
  let cumulative = 0;
  let lastPossible = -1;
  for (let id = 0; id < logProbs.length; id++) {
    const p = Math.exp(logProbs[id]);
    if (p > 0) lastPossible = id;
    cumulative += p;
    if (u < cumulative) return id;
  }
  return lastPossible;
}

/** The top-p nucleus in float64: ids kept (ties by lower id) and the margin of the boundary decision. */
function nucleusRef(p: Float64Array, topP: number): { kept: Set<number>; margin: number } {
  const order = Array.from(p.keys()).sort((a, b) => p[b] - p[a] || a - b);
  const total = p.reduce((a, b) => a + b, 0);
  const kept = new Set<number>();
  let mass = 0;
  let margin = Infinity;
  for (const id of order) {
    kept.add(id);
    const before = mass;
    mass += p[id];
    if (mass >= topP * total) {
      margin = Math.min(mass - topP * total, topP * total - before) / total;
      break;
    }
  }
  return { kept, margin };
}

describe.skipIf(!rt)('engine layers', () => {
  const runtime = rt!;

  it('embeddingForward gathers rows and writes zeros for ids outside the vocabulary', async () => {
    const ws = workspace(runtime);
    const rec = runtime.record();
    const cases: { out: Tensor; expected: Float32Array }[] = [];
    for (const n of NS) {
      for (const d of DS) {
        const V = n === 17 ? 7 : 260;
        const table = randomArray(V * d, 11 + n + d);
        const ids = randomInts(n, 3 + n * d, -2, V + 2);
        const expected = new Float32Array(n * d);
        for (let r = 0; r < n; r++) if (ids[r] >= 0 && ids[r] < V) expected.set(table.subarray(ids[r] * d, ids[r] * d + d), r * d);
        const out = ws.put(new Float32Array(n * d).fill(7));
        await embeddingForward(runtime, rec, { table: ws.put(table), ids: ws.put(ids), out, n, d });
        cases.push({ out, expected });
      }
    }
    rec.submit();
    for (const { out, expected } of cases) expect(Array.from(await runtime.readNumbers(out))).toEqual(Array.from(expected));
    ws.done();
  });

  it('buildTokenIndex groups rows by id in ascending order and skips ids outside the vocabulary', () => {
    const ids = Int32Array.from([4, 1, 4, -1, 0, 4, 9, 1]);
    const index = buildTokenIndex(ids, 5);
    expect(Array.from(index.uniqueIds)).toEqual([0, 1, 4]);
    expect(Array.from(index.starts)).toEqual([0, 1, 3, 6]);
    expect(Array.from(index.positions)).toEqual([4, 1, 7, 0, 2, 5]);
  });

  it('embeddingBackward accumulates repeated ids deterministically', async () => {
    const ws = workspace(runtime);
    for (const n of NS) {
      for (const d of DS) {
        const V = 7;
        const ids = randomInts(n, 5 + n + d, -1, V + 1); // repeated ids and a few outside [0, V)
        const dOut = randomArray(n * d, 17 + n * d);
        const init = randomArray(V * d, 23 + d);
        const index = buildTokenIndex(ids, V);
        const expected = Float64Array.from(init);
        for (let r = 0; r < n; r++) if (ids[r] >= 0 && ids[r] < V) for (let c = 0; c < d; c++) expected[ids[r] * d + c] += dOut[r * d + c];
        const dOutT = ws.put(dOut);
        const inputs = { uniqueIds: ws.put(index.uniqueIds), starts: ws.put(index.starts), positions: ws.put(index.positions) };
        const results: Float32Array[] = [];
        for (let rep = 0; rep < 2; rep++) {
          const dTable = ws.put(init);
          const rec = runtime.record();
          await embeddingBackward(runtime, rec, { dOut: dOutT, dTable, ...inputs, uniqueCount: index.uniqueIds.length, d });
          rec.submit();
          results.push(await runtime.readNumbers(dTable));
        }
        // Sums of up to n terms of size ~1: compared on the scale of the terms.
        expect(maxRelativeError(results[0], expected, 1)).toBeLessThan(1e-6);
        expect(Array.from(results[1])).toEqual(Array.from(results[0]));
      }
    }
    ws.done();
  });

  it('the float64 RMSNorm backward reference matches finite differences', () => {
    const n = 3;
    const d = 5;
    const eps = 1e-5;
    const x = Array.from(randomArray(n * d, 41));
    const gain = Array.from(randomArray(d, 43, 0.5, 1.5));
    const dy = Array.from(randomArray(n * d, 47));
    const loss = (xs: number[], gs: number[]): number => rmsRef(xs, gs, n, d, eps).out.reduce((a, o, k) => a + o * dy[k], 0);
    const { dx, dGain } = rmsBackRef(x, gain, dy, n, d, eps);
    const h = 1e-6;
    for (let k = 0; k < n * d; k++) {
      const plus = [...x];
      const minus = [...x];
      plus[k] += h;
      minus[k] -= h;
      expect(Math.abs((loss(plus, gain) - loss(minus, gain)) / (2 * h) - dx[k])).toBeLessThan(1e-7);
    }
    for (let c = 0; c < d; c++) {
      const plus = [...gain];
      const minus = [...gain];
      plus[c] += h;
      minus[c] -= h;
      expect(Math.abs((loss(x, plus) - loss(x, minus)) / (2 * h) - dGain[c])).toBeLessThan(1e-7);
    }
  });

  it('rmsNorm forward and backward match the float64 reference', async () => {
    const ws = workspace(runtime);
    const eps = 1e-6;
    let worst = 0;
    for (const n of [...NS, 1000]) {
      for (const d of DS) {
        const x = randomArray(n * d, 101 + n + d, -2, 2);
        const gain = randomArray(d, 103 + d, 0.5, 1.5);
        const dy = randomArray(n * d, 107 + n * d);
        const dx0 = randomArray(n * d, 109 + n);
        const dGain0 = randomArray(d, 113 + d);
        const ref = rmsRef(x, gain, n, d, eps);
        const back = rmsBackRef(x, gain, dy, n, d, eps);
        const xT = ws.put(x);
        const gT = ws.put(gain);
        const out = ws.empty(n * d);
        const rstd = ws.empty(n);
        const dxOver = ws.put(dx0);
        const dxAcc = ws.put(dx0);
        const dGain = ws.put(dGain0);
        const scratch = rmsNormScratchSize(n, d);
        const partial = scratch > 0 ? ws.empty(scratch) : undefined;
        const dyT = ws.put(dy);
        const rec = runtime.record();
        await rmsNormForward(runtime, rec, { x: xT, gain: gT, out, rstd, n, d, eps });
        const common = { x: xT, gain: gT, rstd, dOut: dyT, dGain, partial, n, d };
        await rmsNormBackward(runtime, rec, { ...common, dx: dxOver, accumulateDx: false });
        // Second call accumulates dx and adds dGain again.
        await rmsNormBackward(runtime, rec, { ...common, dx: dxAcc, accumulateDx: true });
        rec.submit();
        const errs = [
          maxRelativeError(await runtime.readNumbers(out), ref.out),
          maxRelativeError(await runtime.readNumbers(rstd), ref.rstd),
          // dx is a difference of two terms (it cancels completely for d = 1): relative to their size.
          maxScaledError(await runtime.readNumbers(dxOver), back.dx, back.dxScale),
          maxScaledError(
            await runtime.readNumbers(dxAcc),
            back.dx.map((v, k) => v + dx0[k]),
            back.dxScale.map((v, k) => v + Math.abs(dx0[k])),
          ),
          maxRelativeError(
            await runtime.readNumbers(dGain),
            back.dGain.map((v, c) => 2 * v + dGain0[c]),
          ),
        ];
        worst = Math.max(worst, ...errs);
        expect(Math.max(...errs), `n=${n} d=${d}: ${errs.join(', ')}`).toBeLessThan(1e-4);
      }
    }
    console.info(`rmsNorm worst relative error ${worst.toExponential(2)}`);
    ws.done();
  });

  it('swiglu forward and backward match the float64 reference, also for large |gate|', async () => {
    const ws = workspace(runtime);
    for (const count of [1, 3, 17, 130 * 5, 130 * 96]) {
      const gate = randomArray(count, 201 + count, -8, 8);
      for (let k = 0; k < count; k += 5) gate[k] = [100, -100, 90, -90, 30, -30][(k / 5) % 6];
      const up = randomArray(count, 203 + count);
      const dy = randomArray(count, 207 + count);
      const sig = (a: number): number => 1 / (1 + Math.exp(-a));
      const out64 = Array.from(gate, (a, k) => a * sig(a) * up[k]);
      const dGate64 = Array.from(gate, (a, k) => dy[k] * up[k] * sig(a) * (1 + a * (1 - sig(a))));
      const dUp64 = Array.from(gate, (a, k) => dy[k] * a * sig(a));
      const [g, uT, dyT, out, dGate, dUp] = [ws.put(gate), ws.put(up), ws.put(dy), ws.empty(count), ws.empty(count), ws.empty(count)];
      const rec = runtime.record();
      await swigluForward(runtime, rec, { gate: g, up: uT, out, count });
      await swigluBackward(runtime, rec, { gate: g, up: uT, dOut: dyT, dGate, dUp, count });
      rec.submit();
      const outs = await Promise.all([out, dGate, dUp].map((t) => runtime.readNumbers(t)));
      expect(outs.every((o) => o.every(Number.isFinite))).toBe(true);
      expect(maxRelativeError(outs[0], out64)).toBeLessThan(1e-4);
      expect(maxRelativeError(outs[1], dGate64)).toBeLessThan(1e-4);
      expect(maxRelativeError(outs[2], dUp64)).toBeLessThan(1e-4);
    }
    ws.done();
  });

  it('addInto, scaleInPlace, addBias and columnSum', async () => {
    const ws = workspace(runtime);
    for (const n of [...NS, 1000, 9000]) {
      for (const c of DS) {
        ws.arena.reset();
        const x = randomArray(n * c, 301 + n + c);
        const y = randomArray(n * c, 303 + n * c);
        const bias = randomArray(c, 307 + c);
        const out0 = randomArray(c, 311 + c);
        const [xT, yT, yDefault, sT, bT] = [ws.put(x), ws.put(y), ws.put(y), ws.put(x), ws.put(x)];
        const sums = [ws.put(out0), ws.put(out0)];
        const scratch = columnSumScratchSize(n, c);
        const partial = scratch > 0 ? ws.empty(scratch) : undefined;
        const rec = runtime.record();
        await addInto(runtime, rec, { x: xT, y: yT, count: n * c, alpha: -0.75 });
        await addInto(runtime, rec, { x: xT, y: yDefault, count: n * c });
        await scaleInPlace(runtime, rec, { x: sT, count: n * c, alpha: 1.5 });
        await addBias(runtime, rec, { x: bT, bias: ws.put(bias), n, c });
        await columnSum(runtime, rec, { x: xT, out: sums[0], partial, n, c, accumulate: false });
        await columnSum(runtime, rec, { x: xT, out: sums[1], partial, n, c, accumulate: true });
        rec.submit();
        const colSum = new Float64Array(c);
        for (let r = 0; r < n; r++) for (let k = 0; k < c; k++) colSum[k] += x[r * c + k];
        // Inputs lie in [−1, 1]: sums that cancel are compared on that scale.
        expect(
          maxRelativeError(
            await runtime.readNumbers(yT),
            Array.from(y, (v, k) => v - 0.75 * x[k]),
            1,
          ),
        ).toBeLessThan(1e-6);
        expect(
          maxRelativeError(
            await runtime.readNumbers(yDefault),
            Array.from(y, (v, k) => v + x[k]),
            1,
          ),
        ).toBeLessThan(1e-6);
        expect(
          maxRelativeError(
            await runtime.readNumbers(sT),
            Array.from(x, (v) => 1.5 * v),
          ),
        ).toBeLessThan(1e-6);
        expect(
          maxRelativeError(
            await runtime.readNumbers(bT),
            Array.from(x, (v, k) => v + bias[k % c]),
            1,
          ),
        ).toBeLessThan(1e-6);
        // Sums of n terms of size ~1 (cancelling): relative to √n.
        const scale = Math.sqrt(n);
        expect(maxRelativeError(await runtime.readNumbers(sums[0]), colSum, scale)).toBeLessThan(1e-5);
        expect(
          maxRelativeError(
            await runtime.readNumbers(sums[1]),
            colSum.map((v, k) => v + out0[k]),
            scale,
          ),
        ).toBeLessThan(1e-5);
      }
    }
    ws.done();
  });

  it('tokenLogProbs and its backward match float64, at temperature 0.7 with logits of ±80', async () => {
    const ws = workspace(runtime, 64 << 20);
    let worstLp = 0;
    let worstGrad = 0;
    for (const V of [2, 7, 260, 5003]) {
      for (const R of [1, 3, 17]) {
        for (const [temperature, range] of [
          [0.7, 80],
          [1, 3],
        ] as const) {
          const logits = randomArray(R * V, 401 + V + R + range, -range, range);
          const targets = randomInts(R, 409 + V + R, 0, V);
          if (R > 1) targets[1] = V; // outside: log-prob 0
          if (R > 2) targets[2] = -1;
          const dlp = randomArray(R, 419 + R);
          if (R > 1) dlp[R - 1] = 0; // a masked row: zeros
          const ref = softmaxRef(logits, R, V, temperature);
          const lpRef = Array.from(targets, (t, r) => (t >= 0 && t < V ? ref.logp[r * V + t] : 0));
          const gradRef = new Float64Array(R * V);
          for (let r = 0; r < R; r++) {
            for (let j = 0; j < V; j++)
              gradRef[r * V + j] = (dlp[r] * ((j === targets[r] ? 1 : 0) - Math.exp(ref.logp[r * V + j]))) / temperature;
          }
          const logitsT = ws.put(logits);
          const targetsT = ws.put(targets);
          const [lp, lse, lp2, lse2, entropy, dLogits] = [
            ws.empty(R),
            ws.empty(R),
            ws.empty(R),
            ws.empty(R),
            ws.empty(R),
            ws.put(new Float32Array(R * V).fill(9)),
          ];
          const rec = runtime.record();
          await tokenLogProbs(runtime, rec, { logits: logitsT, targets: targetsT, rows: R, vocab: V, temperature, logProbs: lp, lse });
          await tokenLogProbs(runtime, rec, {
            logits: logitsT,
            targets: targetsT,
            rows: R,
            vocab: V,
            temperature,
            logProbs: lp2,
            lse: lse2,
            entropy,
          });
          await tokenLogProbsBackward(runtime, rec, {
            logits: logitsT,
            targets: targetsT,
            lse,
            dLogProbs: ws.put(dlp),
            dLogits,
            rows: R,
            vocab: V,
            temperature,
          });
          rec.submit();
          // z is rounded to f32 (|z| ≤ 115): compare on the scale of 1 nat.
          const errs = [
            maxRelativeError(await runtime.readNumbers(lp), lpRef, 1),
            maxRelativeError(await runtime.readNumbers(lp2), lpRef, 1),
            maxRelativeError(await runtime.readNumbers(lse), ref.lse, 1),
            maxRelativeError(await runtime.readNumbers(lse2), ref.lse, 1),
            maxRelativeError(await runtime.readNumbers(entropy), ref.entropy, 1),
          ];
          const dl = await runtime.readNumbers(dLogits);
          // With |z| up to 115, z itself carries an f32 rounding of ~1e-5 nats: compare dLogits on the scale of |dlp|/τ.
          const gradErr = maxRelativeError(dl, gradRef, range > 10 ? 1 : 1e-3);
          worstLp = Math.max(worstLp, ...errs);
          worstGrad = Math.max(worstGrad, gradErr);
          expect(Math.max(...errs), `V=${V} R=${R} T=${temperature}: ${errs.join(', ')}`).toBeLessThan(1e-5);
          expect(gradErr, `V=${V} R=${R} T=${temperature}`).toBeLessThan(1e-4);
          expect(dl.every(Number.isFinite)).toBe(true);
          if (R > 1) expect(Array.from(dl.subarray((R - 1) * V, R * V)).every((v) => v === 0)).toBe(true);
        }
      }
    }
    console.info(`tokenLogProbs worst error ${worstLp.toExponential(2)} (scale 1), backward ${worstGrad.toExponential(2)} (scale 1e-3)`);
    ws.done();
  });

  it('sampleTokens with topP = 1 picks the CPU inverse-CDF token for many u', async () => {
    const ws = workspace(runtime, 64 << 20);
    const temperature = 0.7;
    let draws = 0;
    let boundary = 0;
    // V = 70001 > 256² makes the last step walk several ids serially.
    for (const V of [2, 7, 260, 5003, 70001]) {
      const R = V > 10000 ? 32 : 96;
      // Half the rows share one row of logits (u sweeping [0, 1)), half have their own.
      const shared = bumpy(V, 501 + V, 3);
      const logits = new Float32Array(R * V);
      for (let r = 0; r < R; r++) logits.set(r < R / 2 ? shared : bumpy(V, 503 + V + r, 3), r * V);
      const uniforms = Float32Array.from({ length: R }, (_, r) =>
        r < R / 2 ? (r + 0.37) / (R / 2) : randomArray(1, 509 + r + V, 0, 1)[0],
      );
      const ref = softmaxRef(logits, R, V, temperature);
      const [tokens, lp, lse] = [ws.empty(R, 'i32'), ws.empty(R), ws.empty(R)];
      const rec = runtime.record();
      await sampleTokens(runtime, rec, {
        logits: ws.put(logits),
        rows: R,
        vocab: V,
        temperature,
        topP: 1,
        uniforms: ws.put(uniforms),
        tokens,
        logProbs: lp,
        lse,
      });
      rec.submit();
      const got = await runtime.readNumbers(tokens);
      const gotLp = await runtime.readNumbers(lp);
      const gotLse = await runtime.readNumbers(lse);
      for (let r = 0; r < R; r++) {
        const rowLogp = Float32Array.from(ref.logp.subarray(r * V, (r + 1) * V));
        const want = cpuSampleToken(rowLogp, uniforms[r]);
        draws++;
        if (got[r] !== want) {
          // Only acceptable where u lies within float rounding of a cumulative boundary.
          let cum = 0;
          for (let j = 0; j < Math.min(got[r], want); j++) cum += Math.exp(rowLogp[j]);
          let near = Infinity;
          for (let j = Math.min(got[r], want); j <= Math.max(got[r], want); j++) {
            cum += Math.exp(rowLogp[j]);
            near = Math.min(near, Math.abs(cum - uniforms[r]));
          }
          expect(near, `V=${V} row ${r}: GPU ${got[r]} vs CPU ${want}`).toBeLessThan(1e-5);
          boundary++;
        }
        expect(Math.abs(gotLp[r] - ref.logp[r * V + got[r]])).toBeLessThan(1e-4);
        expect(Math.abs(gotLse[r] - ref.lse[r])).toBeLessThan(1e-4);
      }
      // The sweep over u visits many distinct tokens.
      // The sweep over u visits many distinct tokens of the larger vocabularies.
      if (V >= 260) expect(new Set(Array.from(got.subarray(0, R / 2))).size).toBeGreaterThan(R / 6);
    }
    expect(boundary).toBeLessThanOrEqual(2);
    console.info(`sampleTokens topP=1: ${draws - boundary}/${draws} exact, ${boundary} at a rounding boundary`);
    ws.done();
  });

  it('sampleTokens with topP = 0.5 stays in the nucleus and covers it by inverse CDF over the kept ids', async () => {
    const ws = workspace(runtime, 64 << 20);
    const temperature = 0.7;
    const R = 128;
    const rowsOfLogits: { name: string; row: Float32Array }[] = [
      { name: 'ties', row: Float32Array.from([1, 1, 1, 1, 0, 0, 0]) },
      { name: 'one token', row: Float32Array.from({ length: 260 }, (_, j) => (j === 77 ? 12 : 0)) },
      { name: 'V=7', row: bumpy(7, 601, 1) },
      { name: 'V=260', row: bumpy(260, 603, 1.5) },
      { name: 'V=5003', row: bumpy(5003, 607, 2.5) },
      { name: 'V=70001', row: bumpy(70001, 611, 2) },
      {
        name: 'V=5003 ties at the boundary',
        row: Float32Array.from({ length: 5003 }, (_, j) => (j % 97 === 5 ? 6 : j % 7 === 0 ? 2 : -40 + (j % 13))),
      },
    ];
    for (const { name, row } of rowsOfLogits) {
      const V = row.length;
      const logits = new Float32Array(R * V);
      for (let r = 0; r < R; r++) logits.set(row, r * V);
      const uniforms = Float32Array.from({ length: R }, (_, r) => (r + 0.5) / R);
      const ref = softmaxRef(row, 1, V, temperature);
      const p = ref.logp.map(Math.exp);
      // Ties of the same logit have bit-identical probabilities on both sides; otherwise keep clear of the boundary.
      const { kept, margin } = nucleusRef(p, 0.5);
      if (!name.includes('ties')) expect(margin, `${name}: the test's nucleus boundary is too close to call`).toBeGreaterThan(1e-5);
      const keptIds = [...kept].sort((a, b) => a - b);
      const keptMass = keptIds.reduce((a, j) => a + p[j], 0);
      const [tokens, lp, lse] = [ws.empty(R, 'i32'), ws.empty(R), ws.empty(R)];
      const rec = runtime.record();
      await sampleTokens(runtime, rec, {
        logits: ws.put(logits),
        rows: R,
        vocab: V,
        temperature,
        topP: 0.5,
        uniforms: ws.put(uniforms),
        tokens,
        logProbs: lp,
        lse,
      });
      rec.submit();
      const got = await runtime.readNumbers(tokens);
      const gotLp = await runtime.readNumbers(lp);
      for (let r = 0; r < R; r++) {
        expect(kept.has(got[r]), `${name}: token ${got[r]} is outside the nucleus`).toBe(true);
        // Inverse CDF over the kept ids in ascending order, renormalised.
        let cum = 0;
        let want = keptIds[keptIds.length - 1];
        let near = Infinity;
        for (const j of keptIds) {
          cum += p[j] / keptMass;
          near = Math.min(near, Math.abs(cum - uniforms[r]));
          if (uniforms[r] < cum) {
            want = j;
            break;
          }
        }
        if (got[r] !== want) expect(near, `${name} u=${uniforms[r]}: GPU ${got[r]} vs ${want}`).toBeLessThan(1e-5);
        expect(Math.abs(gotLp[r] - ref.logp[got[r]])).toBeLessThan(1e-4);
      }
      // Each kept token whose renormalised mass spans at least two of the u's is picked.
      for (const j of keptIds)
        if (p[j] / keptMass > 2 / R) expect(Array.from(got).includes(j), `${name}: kept token ${j} never picked`).toBe(true);
      if (name === 'ties') expect(keptIds).toEqual([0, 1, 2]);
      if (name === 'one token') expect(new Set(Array.from(got))).toEqual(new Set([77]));
    }
    ws.done();
  });

  it('refuses tensors smaller than the shapes and a topP outside (0, 1]', async () => {
    const ws = workspace(runtime, 1 << 20);
    const rec = runtime.record();
    const x = ws.empty(10);
    await expect(
      rmsNormForward(runtime, rec, { x, gain: ws.empty(5), out: ws.empty(10), rstd: ws.empty(2), n: 3, d: 5, eps: 1e-6 }),
    ).rejects.toThrow(/rmsNormForward: 'x' .* has 10 elements, needs at least 15/);
    await expect(
      sampleTokens(runtime, rec, {
        logits: x,
        rows: 1,
        vocab: 10,
        temperature: 1,
        topP: 0,
        uniforms: ws.empty(1),
        tokens: ws.empty(1, 'i32'),
        logProbs: ws.empty(1),
        lse: ws.empty(1),
      }),
    ).rejects.toThrow(/topP must be in \(0, 1\]/);
    await expect(embeddingForward(runtime, rec, { table: x, ids: ws.empty(2), out: ws.empty(10), n: 2, d: 5 })).rejects.toThrow(
      /'ids' must be i32/,
    );
    rec.submit();
    ws.done();
  });
});
